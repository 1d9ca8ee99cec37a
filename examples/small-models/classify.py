#!/usr/bin/env python3
"""Classifies how each run of run.sh ended, from its run.json and history/events.jsonl.

side:
  passed   the hidden verifier passed
  model    the model's side: it reported failure, ran out of steps or budget, wrote wrong work
  runtime  the runtime's side of the interface: an infrastructure error, a call the runtime
           could not read (arguments refused as invalid JSON, empty answers past the nudges),
           a model call that failed, or a configuration failure (context overflow)
  cut      killed by run.sh's own time limit (RUN_TIMEOUT) before nlah finished: no end to judge

Usage: classify.py OUT_DIR   (prints a Markdown table and a summary)
"""
import json
import statistics
import sys
from pathlib import Path


def events(ws):
    path = ws / "history" / "events.jsonl"
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def classify(ws):
    rec_path = ws / "run.json"
    if not rec_path.exists():
        return {"outcome": "none", "side": "runtime", "why": "no run.json (killed?)"}
    rec = json.loads(rec_path.read_text())
    ev = events(ws)
    kinds = lambda k: [e for e in ev if e["event"] == k]
    failed_calls = [e for e in kinds("model-call") if e["finish_reason"].startswith("error")]
    refused = [
        e for e in kinds("tool-call") if not e["ok"] and e.get("exit_code") is None
    ]
    unreadable = [e for e in refused if "not valid JSON" in e.get("summary", "")]
    interface = [e["kind"] for e in kinds("interface")]
    nudges = interface.count("empty-answer")
    children = kinds("child-finished")
    gave_up_empty = any(
        c["status"] == "no-response" and c["reason"] == "the model finished" for c in children
    ) and nudges > 0
    m = rec["metrics"]
    row = {
        "outcome": rec["outcome"],
        "calls": m["total"]["calls"],
        "events_calls": sum(e["usage"]["calls"] for e in kinds("model-call")),
        "prompt": m["total"]["input_tokens"],
        "nudges": m.get("empty_answers", 0),
        "repairs": m.get("repairs", 0),
        "interface": ",".join(sorted(set(interface))) or "-",
        "children": " ".join(f'{c["child"]}:{c["status"]}' for c in children),
        "wall_s": m["wall_ms"] / 1000,
        "latencies": [e["usage"]["latency_ms"] for e in kinds("model-call")],
        "inputs": [
            e["usage"]["input_tokens"]
            for e in kinds("model-call")
            if e["finish_reason"] in ("tool_calls", "stop", "length")
        ],
        "first_latency": next((e["usage"]["latency_ms"] for e in kinds("model-call")), None),
    }
    if rec["outcome"] == "running":
        row.update(side="cut", why="killed by RUN_TIMEOUT while running")
    elif rec["outcome"] == "passed":
        row.update(side="passed", why="verifier passed")
    elif rec["outcome"] == "error":
        row.update(side="runtime", why=f'infrastructure: {rec.get("error_class")}')
    elif rec.get("error_class"):
        row.update(side="runtime", why=f'configuration: {rec["error_class"]}')
    elif failed_calls:
        row.update(side="runtime", why=f"{len(failed_calls)} model call(s) failed")
    elif unreadable:
        row.update(side="runtime", why=f"{len(unreadable)} call(s) with unreadable arguments")
    elif gave_up_empty:
        row.update(side="runtime", why="empty answers past the nudges")
    else:
        row.update(side="model", why=rec["reason"][:90])
    return row


def prompt_evals(log):
    """Prompt tokens the server evaluated per request, in order (llama.cpp's perf line). The
    rest of a request's prompt came from its cache: llama-cpp-python reports no cached tokens
    in its answers, so this is where they show."""
    if not log.exists():
        return []
    evals = []
    for line in log.read_text(errors="replace").splitlines():
        if "prompt eval time" in line and "/" in line:
            try:
                evals.append(int(line.split("/")[1].split("tokens")[0].strip()))
            except ValueError:
                pass
    return evals


def attach_cache(rows, out):
    """Pairs the server's per-request prompt evaluation with the runs' model calls, in the order
    the runs were made (they ran one at a time against one server)."""
    evals = iter(prompt_evals(out / "server.log"))
    for r in rows:
        cached = prompt = 0
        first = None
        for inp in r.get("inputs", []):
            n = next(evals, None)
            if n is None:
                return
            hit = max(inp - n, 0)
            cached += hit
            prompt += inp
            if first is None:
                first = (hit, inp)
        r["cached"], r["prompt_all"], r["first"] = cached, prompt, first


def main():
    out = Path(sys.argv[1])
    times = {}
    tsv = out / "times.tsv"
    if tsv.exists():
        for line in tsv.read_text().splitlines():
            model, task, code, ms = line.split("\t")
            times[(model, task)] = (int(code), int(ms) / 1000)
    rows = []
    # In the order the runs were made (times.tsv), then any left.
    order = list(times) + [
        (ws.parent.name, ws.name)
        for ws in sorted((out / "runs").glob("*/*"))
        if ws.is_dir() and (ws.parent.name, ws.name) not in times
    ]
    for model, task in order:
        ws = out / "runs" / model / task
        r = classify(ws)
        r["model"], r["task"] = model, task
        r["exit"], r["time_s"] = times.get((model, task), (None, None))
        rows.append(r)
    attach_cache(rows, out)
    print("| model | task | outcome | side | why | calls (run.json / events) | nudges | repairs | interface | prompt tokens cached | first call: cached / prompt, s | time s |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        t = f'{r["time_s"]:.0f}' if r["time_s"] is not None else "-"
        cached = f'{r["cached"]} of {r["prompt_all"]}' if "cached" in r else "-"
        first = (
            f'{r["first"][0]} / {r["first"][1]}, {r["first_latency"] / 1000:.0f}'
            if r.get("first") and r.get("first_latency") is not None
            else "-"
        )
        print(
            f'| {r["model"]} | {r["task"]} | {r["outcome"]} | {r["side"]} | {r["why"]} | '
            f'{r.get("calls", "-")} / {r.get("events_calls", "-")} | {r.get("nudges", "-")} | '
            f'{r.get("repairs", "-")} | {r.get("interface", "-")} | {cached} | {first} | {t} |'
        )
    print()
    for model in sorted({r["model"] for r in rows}):
        mine = [r for r in rows if r["model"] == model]
        passed = sum(r["side"] == "passed" for r in mine)
        runtime = sum(r["side"] == "runtime" for r in mine)
        cut = sum(r["side"] == "cut" for r in mine)
        ts = [r["time_s"] for r in mine if r["time_s"] is not None]
        lat = [x / 1000 for r in mine for x in r.get("latencies", [])]
        spread = f"{min(ts):.0f}–{max(ts):.0f}" if ts else "-"
        med = f"{statistics.median(ts):.0f}" if ts else "-"
        lat_med = f"{statistics.median(lat):.1f}" if lat else "-"
        print(
            f"- {model}: {passed} of {len(mine)} passed; {runtime} ended on the runtime's side; "
            f"{cut} cut by RUN_TIMEOUT; "
            f"time per run median {med} s (range {spread}); model call median {lat_med} s "
            f"over {len(lat)} calls"
        )


if __name__ == "__main__":
    main()
