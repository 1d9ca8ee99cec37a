//! Task folders: what a run is asked to do and how its result is judged.
//!
//! A task is a folder:
//!
//! | entry | meaning |
//! | --- | --- |
//! | `TASK.md` | the instruction (`instruction.md` is accepted so Harbor / Terminal-Bench task folders load; `TASK.md` wins when both exist) |
//! | `task.toml` | optional configuration, see [`TaskConfig`]; Harbor's `task.toml` loads as is |
//! | `files/` | optional starting state; [`copy_files`] copies it into the run workspace's `repo/`; symlinks must stay inside it (and inside `tests/`), checked by [`load`] |
//! | `tests/` | optional hidden verifier; never copied into the workspace, only into a temporary folder outside it at [`verify`] time |
//! | `solution/` | Harbor's reference solution (`solution/solve.sh`); ignored by nlah: never copied, never hashed |
//! | `environment/` | Harbor's container definition; ignored by nlah |
//!
//! A task set is a folder of task folders ([`load_set`]).
//!
//! The verifier contract ([`verify`]): the command runs with `bash -c` in the repository folder,
//! with `NLAH_TESTS_DIR` (a private copy of `tests/`), `NLAH_REWARD_FILE` (write a number there
//! to report a reward) and `NLAH_LOGS_DIR` (Harbor's `/logs/verifier/`) in its environment. The
//! default command is `bash "$NLAH_TESTS_DIR/test.sh"`; a command set in `task.toml` refers to the
//! hidden files through `$NLAH_TESTS_DIR` too, since `tests/` is not in the repository.

mod config;
mod files;
mod verify;

use std::io;
use std::path::{Path, PathBuf};

use serde::Serialize;

pub use config::{AgentConfig, EnvConfig, TaskBudgets, TaskConfig, VerifierConfig};
pub use files::copy_files;
pub use verify::{DEFAULT_VERIFIER_COMMAND, Launcher, OUTPUT_CAP, Verdict, verify};

/// The instruction file names, in order of preference.
pub const INSTRUCTION_FILES: [&str; 2] = ["TASK.md", "instruction.md"];
/// The configuration file name.
pub const CONFIG_FILE: &str = "task.toml";

/// One loaded task folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Task {
    /// `id` from `task.toml`, else the folder name.
    pub id: String,
    /// The task folder (canonical path).
    pub root: PathBuf,
    /// The instruction text, verbatim.
    pub instruction: String,
    /// `TASK.md` or `instruction.md` inside `root`.
    pub instruction_path: PathBuf,
    pub config: TaskConfig,
    /// `files/`, when present.
    pub files: Option<PathBuf>,
    /// `tests/`, when present.
    pub tests: Option<PathBuf>,
}

/// Everything that can go wrong with a task folder; every variant names the file or folder.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    #[error("{}: no such task folder", path.display())]
    NotFound { path: PathBuf },
    #[error("{}: not a folder", path.display())]
    NotADirectory { path: PathBuf },
    #[error("{}: not a task folder: it has neither TASK.md nor instruction.md", dir.display())]
    NoInstruction { dir: PathBuf },
    #[error("{}: must be a folder", path.display())]
    NotAFolderEntry { path: PathBuf },
    #[error("{at}: the instruction is not valid UTF-8 (byte 0x{byte:02x}); save it as UTF-8 text")]
    NotUtf8 { at: crate::diag::Pos, byte: u8 },
    #[error("{}:{line}:{col}: {message}", path.display())]
    Config {
        path: PathBuf,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{}: invalid task id {id:?}: {reason} (set `id` in task.toml)", dir.display())]
    InvalidId {
        dir: PathBuf,
        id: String,
        reason: &'static str,
    },
    #[error("{}: no task folders in it (a task folder holds TASK.md or instruction.md)", dir.display())]
    EmptySet { dir: PathBuf },
    #[error("duplicate task id {id:?}: {} and {}", first.display(), second.display())]
    DuplicateId {
        id: String,
        first: PathBuf,
        second: PathBuf,
    },
    #[error("{}: {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        op: String,
        #[source]
        source: io::Error,
    },
    #[error("{}: {reason}", path.display())]
    Symlink { path: PathBuf, reason: String },
    #[error("{}: unsupported file type (only files, folders and symlinks are copied)", path.display())]
    UnsupportedFile { path: PathBuf },
    #[error(
        "task {id} ({}): no verifier: no tests/test.sh and no [verifier] command in task.toml",
        root.display()
    )]
    NoVerifier { id: String, root: PathBuf },
    #[error("task {id}: cannot start the verifier `{command}`: {source}")]
    Spawn {
        id: String,
        command: String,
        #[source]
        source: io::Error,
    },
}

impl TaskError {
    pub(crate) fn io(path: &Path, op: impl Into<String>, source: io::Error) -> Self {
        TaskError::Io {
            path: path.to_path_buf(),
            op: op.into(),
            source,
        }
    }
}

impl Task {
    /// SHA-256 (hex) over the instruction, `task.toml` and every file under `files/` and
    /// `tests/` (relative path, kind, bytes; sorted by path): the task's identity in ablation
    /// matrices. Independent of where the folder lives and of whether the instruction is named
    /// `TASK.md` or `instruction.md`.
    pub fn content_hash(&self) -> Result<String, TaskError> {
        files::content_hash(self)
    }

    /// The verifier command that [`verify`] would run, if any.
    pub fn verifier_command(&self) -> Option<String> {
        if let Some(cmd) = &self.config.verifier.command {
            return Some(cmd.clone());
        }
        let tests = self.tests.as_ref()?;
        tests
            .join("test.sh")
            .is_file()
            .then(|| DEFAULT_VERIFIER_COMMAND.to_string())
    }
}

/// The instruction file of `dir`, if `dir` is a task folder.
fn instruction_file(dir: &Path) -> Option<PathBuf> {
    INSTRUCTION_FILES
        .iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// Whether `dir` looks like a task folder (has an instruction file).
pub fn is_task_dir(dir: &Path) -> bool {
    dir.is_dir() && instruction_file(dir).is_some()
}

/// Loads one task folder.
pub fn load(path: impl AsRef<Path>) -> Result<Task, TaskError> {
    let path = path.as_ref();
    let root = canonical_dir(path)?;
    let instruction_path = instruction_file(&root).ok_or_else(|| TaskError::NoInstruction {
        dir: path.to_path_buf(),
    })?;
    let bytes = std::fs::read(&instruction_path)
        .map_err(|e| TaskError::io(&instruction_path, "cannot read the instruction", e))?;
    let instruction = String::from_utf8(bytes).map_err(|e| {
        match crate::diag::first_invalid_utf8(&instruction_path, e.as_bytes()) {
            Some((at, byte)) => TaskError::NotUtf8 { at, byte },
            // from_utf8 and first_invalid_utf8 agree; kept total without a panic.
            None => TaskError::io(
                &instruction_path,
                "cannot read the instruction",
                std::io::Error::from(std::io::ErrorKind::InvalidData),
            ),
        }
    })?;

    let config_path = root.join(CONFIG_FILE);
    let config = if config_path.is_file() {
        let text = std::fs::read_to_string(&config_path)
            .map_err(|e| TaskError::io(&config_path, "cannot read", e))?;
        TaskConfig::parse(&text, &config_path)?
    } else {
        TaskConfig::default()
    };

    let id = match &config.id {
        Some(id) => id.clone(),
        None => root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
    };
    check_id(&id).map_err(|reason| TaskError::InvalidId {
        dir: root.clone(),
        id: id.clone(),
        reason,
    })?;

    let files = optional_dir(&root, "files")?;
    let tests = optional_dir(&root, "tests")?;
    for dir in files.iter().chain(&tests) {
        files::check_links(dir)?;
    }
    Ok(Task {
        id,
        files,
        tests,
        root,
        instruction,
        instruction_path,
        config,
    })
}

/// Loads a task set: a folder that is itself a task gives one task; otherwise every immediate
/// subfolder that is a task (others, like a README folder, are skipped), sorted by id.
pub fn load_set(path: impl AsRef<Path>) -> Result<Vec<Task>, TaskError> {
    let path = path.as_ref();
    let root = canonical_dir(path)?;
    if is_task_dir(&root) {
        return Ok(vec![load(&root)?]);
    }
    let entries =
        std::fs::read_dir(&root).map_err(|e| TaskError::io(path, "cannot list the folder", e))?;
    let mut tasks = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| TaskError::io(path, "cannot list the folder", e))?;
        let dir = entry.path();
        if is_task_dir(&dir) {
            tasks.push(load(&dir)?);
        }
    }
    if tasks.is_empty() {
        return Err(TaskError::EmptySet {
            dir: path.to_path_buf(),
        });
    }
    tasks.sort_by(|a, b| a.id.cmp(&b.id).then_with(|| a.root.cmp(&b.root)));
    if let Some(pair) = tasks.windows(2).find(|w| w[0].id == w[1].id) {
        return Err(TaskError::DuplicateId {
            id: pair[0].id.clone(),
            first: pair[0].root.clone(),
            second: pair[1].root.clone(),
        });
    }
    Ok(tasks)
}

fn canonical_dir(path: &Path) -> Result<PathBuf, TaskError> {
    if !path.exists() {
        return Err(TaskError::NotFound {
            path: path.to_path_buf(),
        });
    }
    if !path.is_dir() {
        return Err(TaskError::NotADirectory {
            path: path.to_path_buf(),
        });
    }
    // Canonical so the task stays valid when the caller's working directory changes.
    std::fs::canonicalize(path).map_err(|e| TaskError::io(path, "cannot resolve", e))
}

fn optional_dir(root: &Path, name: &str) -> Result<Option<PathBuf>, TaskError> {
    let dir = root.join(name);
    match std::fs::metadata(&dir) {
        Ok(m) if m.is_dir() => Ok(Some(dir)),
        Ok(_) => Err(TaskError::NotAFolderEntry { path: dir }),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(TaskError::io(&dir, "cannot read", e)),
    }
}

/// Ids end up in workspace paths and report rows, so they stay path-safe.
fn check_id(id: &str) -> Result<(), &'static str> {
    if id.is_empty() {
        return Err("empty");
    }
    if id.len() > 128 {
        return Err("longer than 128 characters");
    }
    if id.starts_with('.') {
        return Err("starts with a dot");
    }
    if !id
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        return Err("only ASCII letters, digits, '-', '_' and '.' are allowed");
    }
    Ok(())
}
