//! The fake Slurm of tests/fixtures/slurm/bin: `sbatch`, `squeue` and friends that record their
//! arguments in `STATE/calls.log` and run the array tasks themselves.

use std::path::Path;
use std::process::Command;

/// Puts the fake Slurm first on `cmd`'s `PATH`, keeping its state in `state` and reporting
/// `max_array` as the cluster's MaxArraySize.
pub fn use_fake_slurm(cmd: &mut Command, state: &Path, max_array: usize) {
    let bin = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/slurm/bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    std::fs::create_dir_all(state).expect("the fake Slurm's state folder");
    cmd.env("PATH", path)
        .env("FAKE_SLURM_STATE", state)
        .env("FAKE_MAX_ARRAY_SIZE", max_array.to_string());
}

/// The `sbatch` calls the fake Slurm recorded in `state`.
pub fn sbatch_calls(state: &Path) -> Vec<String> {
    std::fs::read_to_string(state.join("calls.log"))
        .unwrap_or_default()
        .lines()
        .filter(|c| c.starts_with("sbatch "))
        .map(str::to_string)
        .collect()
}
