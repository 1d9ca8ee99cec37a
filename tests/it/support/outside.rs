//! Parts outside the crate that some tests need (a real model server, a real Slurm, Chromium).
//! Those tests are `#[ignore]`d with the reason, so that a plain run says they did not run;
//! run anyway (`--run-ignored`, as `.ci/run` does), they fail when the part is missing rather
//! than pass without testing anything.

use std::path::Path;

/// The value of `var`; fails the test, saying what to set, when it is unset or empty.
pub fn require_env(var: &str, what: &str) -> String {
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => v,
        _ => panic!("{var} is not set: this test needs {what} (.ci/run provides it)"),
    }
}

/// Fails the test, saying what to install, when `path` does not exist.
pub fn require_file(path: &str, what: &str) {
    assert!(
        Path::new(path).exists(),
        "{path} is missing: this test needs {what} (.ci/run installs it)"
    );
}
