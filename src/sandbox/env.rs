//! The environment of confined commands: built from nothing, never carrying secrets.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::SandboxError;

/// Searched after the parent's `PATH`, so that the usual tools are found even from a bare parent.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// Variables the sandbox sets itself, and `LANG` and `LC_ALL`, which would override or add to the
/// locale it chose.
const RESERVED: &[&str] = &[
    "PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TERM", "TMPDIR", "SHELL",
];

/// Whether a variable name looks like it holds a credential: `*_API_KEY`, `*_KEY`, `*_TOKEN`,
/// `*SECRET*`, `*PASSWORD*`, `*PASSWD*`, `*CREDENTIAL*` (any case). Such variables never reach a
/// command.
pub fn is_secret_name(name: &str) -> bool {
    let n = name.to_ascii_uppercase();
    n.ends_with("_KEY")
        || n.contains("API_KEY")
        || n.contains("APIKEY")
        || n == "TOKEN"
        || n.ends_with("_TOKEN")
        || n.contains("SECRET")
        || n.contains("PASSWORD")
        || n.contains("PASSWD")
        || n.contains("CREDENTIAL")
}

/// Names of the parent's variables a command may inherit, checked when the list is made: secrets
/// and the variables the sandbox sets itself are refused.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EnvAllowList {
    names: Vec<String>,
}

impl EnvAllowList {
    pub fn new<I, S>(names: I) -> Result<Self, SandboxError>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut out = Vec::new();
        for name in names {
            let name = name.as_ref();
            let valid = name
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(SandboxError::InvalidVariableName {
                    name: name.to_string(),
                });
            }
            if is_secret_name(name) {
                return Err(SandboxError::SecretVariable {
                    name: name.to_string(),
                });
            }
            if RESERVED.contains(&name) {
                return Err(SandboxError::ReservedVariable {
                    name: name.to_string(),
                });
            }
            if !out.iter().any(|n| n == name) {
                out.push(name.to_string());
            }
        }
        Ok(EnvAllowList { names: out })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }
}

/// `env_clear()`, then `PATH`, `HOME=home`, `TMPDIR=home`, `LC_CTYPE=C.UTF-8`, `TERM=dumb`,
/// `SHELL=/bin/sh` and nothing else. (Without `SHELL`, every bash that starts looks the user up
/// in the password database to fill it in.)
///
/// UTF-8 text through `LC_CTYPE` alone, the C locale for the rest: `LANG=C.UTF-8` would make
/// every program that calls `setlocale` (bash, coreutils) open and map all twelve of the locale's
/// category files, about 0.1–0.15 ms of CPU per process start here, three of them per cell of a
/// matrix; C.UTF-8 differs from C in its character set only (its collation is code point order,
/// which is C's byte order for UTF-8).
pub fn clean_env(cmd: &mut tokio::process::Command, home: &Path) {
    clean_env_with(cmd, home, home, &EnvAllowList::default());
}

/// Like [`clean_env`], with a separate `TMPDIR` and the allow-listed variables the parent has.
pub fn clean_env_with(
    cmd: &mut tokio::process::Command,
    home: &Path,
    tmpdir: &Path,
    allow: &EnvAllowList,
) {
    cmd.env_clear().envs(clean_vars(home, tmpdir, allow));
}

/// The whole environment [`clean_env_with`] gives a command.
pub fn clean_vars(home: &Path, tmpdir: &Path, allow: &EnvAllowList) -> Vec<(OsString, OsString)> {
    let mut vars: Vec<(OsString, OsString)> = vec![
        ("PATH".into(), sane_path(std::env::var_os("PATH"))),
        ("HOME".into(), home.into()),
        ("TMPDIR".into(), tmpdir.into()),
        ("LC_CTYPE".into(), "C.UTF-8".into()),
        ("TERM".into(), "dumb".into()),
        ("SHELL".into(), "/bin/sh".into()),
    ];
    for name in allow.names() {
        // Checked when the list was made; checked again because a leak is expensive.
        if is_secret_name(name) {
            continue;
        }
        if let Some(v) = std::env::var_os(name) {
            vars.push((name.into(), v));
        }
    }
    vars
}

/// The parent's absolute `PATH` entries, then the defaults it lacks.
fn sane_path(parent: Option<OsString>) -> OsString {
    let mut dirs: Vec<PathBuf> = Vec::new();
    let parent = parent
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default();
    for d in parent
        .into_iter()
        .chain(std::env::split_paths(DEFAULT_PATH))
    {
        // Relative entries would resolve against the command's cwd: the workspace.
        if d.is_absolute() && !dirs.contains(&d) {
            dirs.push(d);
        }
    }
    std::env::join_paths(&dirs).unwrap_or_else(|_| OsString::from(DEFAULT_PATH))
}

/// A command's private scratch space inside the workspace: `<workspace>/.tmp/`, which ignores
/// itself in git (its `.gitignore` says `*`), with `home/` for `HOME` and `tmp/` for `TMPDIR`.
/// Inside the workspace because that is where writing is allowed; `/tmp` stays closed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scratch {
    pub root: PathBuf,
    pub home: PathBuf,
    pub tmp: PathBuf,
}

impl Scratch {
    /// The folder name beneath the workspace.
    pub const DIR: &'static str = ".tmp";

    /// Creates the folders (idempotent).
    pub fn prepare(workspace: &Path) -> Result<Scratch, SandboxError> {
        let root = workspace.join(Self::DIR);
        let s = Scratch {
            home: root.join("home"),
            tmp: root.join("tmp"),
            root,
        };
        for dir in [&s.home, &s.tmp] {
            std::fs::create_dir_all(dir).map_err(|source| SandboxError::Io {
                context: format!("cannot create {}", dir.display()),
                source,
            })?;
        }
        let ignore = s.root.join(".gitignore");
        if !ignore.exists() {
            std::fs::write(&ignore, "*\n").map_err(|source| SandboxError::Io {
                context: format!("cannot write {}", ignore.display()),
                source,
            })?;
        }
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_recognised() {
        for n in [
            "OPENAI_API_KEY",
            "anthropic_api_key",
            "GITHUB_TOKEN",
            "AWS_SECRET_ACCESS_KEY",
            "DB_PASSWORD",
            "MY_SECRET",
            "HF_TOKEN",
            "GOOGLE_APPLICATION_CREDENTIALS",
        ] {
            assert!(is_secret_name(n), "{n}");
        }
        for n in [
            "PYTHONPATH",
            "CARGO_HOME",
            "LD_LIBRARY_PATH",
            "RUST_LOG",
            "TOKENIZERS_PARALLELISM",
        ] {
            assert!(!is_secret_name(n), "{n}");
        }
    }

    #[test]
    fn allow_list_refuses_secrets_and_reserved_names() {
        assert!(matches!(
            EnvAllowList::new(["RUST_LOG", "OPENAI_API_KEY"]),
            Err(SandboxError::SecretVariable { .. })
        ));
        for name in ["PATH", "LANG", "LC_ALL", "LC_CTYPE"] {
            let e = EnvAllowList::new([name]).unwrap_err();
            assert!(matches!(e, SandboxError::ReservedVariable { .. }), "{name}");
            assert!(
                e.to_string()
                    .starts_with(&format!("environment variable {name} is reserved")),
                "{e}"
            );
        }
        assert!(matches!(
            EnvAllowList::new(["A=B"]),
            Err(SandboxError::InvalidVariableName { .. })
        ));
        assert_eq!(
            EnvAllowList::new(["A", "A"]).map(|l| l.names().len()).ok(),
            Some(1)
        );
    }

    #[test]
    fn path_keeps_parent_entries_then_defaults() {
        let p = sane_path(Some(OsString::from("/opt/x/bin:relative:/usr/bin")));
        let s = p.to_string_lossy().into_owned();
        assert!(s.starts_with("/opt/x/bin:/usr/bin:"), "{s}");
        assert!(!s.contains("relative"));
        assert!(s.contains("/bin"));
    }
}
