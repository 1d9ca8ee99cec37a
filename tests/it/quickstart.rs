//! The README's main job works offline: the bundled harness on the bundled task through the
//! bundled cassette (recorded from a real model session).

use crate::support::TestEnv;

#[tokio::test(flavor = "multi_thread")]
async fn the_quickstart_replay_runs_offline() {
    // No model server: the default environment's endpoint answers nothing.
    let ran = TestEnv::new()
        .nlah_run(&[
            "basic",
            "examples/tasks/hello-greeting",
            "--model",
            "replay:examples/cassettes/basic-hello-greeting.qwen2.5-coder-0.5b.jsonl",
            "--max-steps",
            "5",
        ])
        .await;
    assert_eq!(ran.code, 0, "{}", ran.stderr);
    assert_eq!(
        std::fs::read_to_string(ran.ws.join("repo/greeting.txt"))
            .unwrap()
            .trim_end(),
        "Hello from nlah!"
    );
    let record = ran.record();
    assert_eq!(record["outcome"], "passed");
    assert_eq!(
        record["metrics"]["total"]["calls"], 5,
        "every recorded call replayed"
    );
}
