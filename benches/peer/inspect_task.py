"""The peer's side of benches/peer/run.sh: the workload as an Inspect AI task.

N samples, each solved by Inspect's react agent with its bash tool in the local sandbox (a
temporary folder per sample), against the mock model of mock.py; scored as nlah's hidden
verifier scores `write-result`: `artifacts/result.txt` exists and is not empty.
"""

from inspect_ai import Task, task
from inspect_ai.agent import react
from inspect_ai.dataset import Sample
from inspect_ai.scorer import Score, Target, accuracy, scorer
from inspect_ai.solver import TaskState
from inspect_ai.tool import bash
from inspect_ai.util import sandbox


@scorer(metrics=[accuracy()])
def result_written():
    async def score(state: TaskState, target: Target) -> Score:
        r = await sandbox().exec(["test", "-s", "artifacts/result.txt"])
        return Score(value=1.0 if r.success else 0.0)

    return score


@task
def workload(samples: int = 50):
    return Task(
        dataset=[
            Sample(
                id=i,
                input="Write the answer to `artifacts/result.txt`: any non-empty text.",
            )
            for i in range(1, samples + 1)
        ],
        solver=react(tools=[bash(timeout=30)]),
        scorer=result_written(),
        sandbox="local",
    )
