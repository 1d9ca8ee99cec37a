//! Real git repositories in a test environment's folder, with fixed commit times so that
//! output that names commits is stable; and the `nlah` binary run inside them.

use std::path::{Path, PathBuf};

use git2::{IndexAddOption, Oid, Repository, Signature, Time};

use super::env::TestEnv;

pub struct Repo {
    pub env: TestEnv,
    pub repo: Repository,
    root: PathBuf,
    commits: i64,
}

impl Repo {
    /// A repository in a fresh environment without a model.
    pub fn new() -> Repo {
        Repo::in_env(TestEnv::new())
    }

    /// A repository at `repo/` in the environment's folder.
    pub fn in_env(env: TestEnv) -> Repo {
        let root = env.root().join("repo");
        let repo = Repository::init(&root).unwrap();
        repo.config()
            .unwrap()
            .set_bool("core.autocrlf", false)
            .unwrap();
        Repo {
            env,
            repo,
            root,
            commits: 0,
        }
    }

    pub fn path(&self) -> PathBuf {
        self.root.canonicalize().unwrap()
    }

    /// Runs `nlah ARGS` at the repository's top; returns (exit code, stdout, stderr).
    pub fn nlah(&self, args: &[&str]) -> (i32, String, String) {
        self.env.run_in(&self.path(), args)
    }

    /// Copies a folder of the crate (`tests/fixtures/mini`) to `to` in the repository.
    pub fn copy(&self, from: &str, to: &str) {
        copy_dir(Path::new(from), &self.root.join(to));
    }

    pub fn write(&self, rel: &str, text: &str) {
        let p = self.root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }

    pub fn read(&self, rel: &str) -> String {
        std::fs::read_to_string(self.root.join(rel)).unwrap()
    }

    /// Replaces text in a file; the text must be there.
    pub fn edit(&self, rel: &str, from: &str, to: &str) {
        let text = self.read(rel);
        assert!(text.contains(from), "{rel} does not contain {from:?}");
        self.write(rel, &text.replacen(from, to, 1));
    }

    pub fn remove(&self, rel: &str) {
        std::fs::remove_file(self.root.join(rel)).unwrap();
    }

    /// Commits everything, one minute after the previous commit.
    pub fn commit(&mut self, message: &str) -> Oid {
        self.commits += 1;
        let mut index = self.repo.index().unwrap();
        index.add_all(["*"], IndexAddOption::DEFAULT, None).unwrap();
        index.update_all(["*"], None).unwrap();
        index.write().unwrap();
        let tree = self.repo.find_tree(index.write_tree().unwrap()).unwrap();
        let sig = Signature::new(
            "Ada Tester",
            "ada@example.com",
            &Time::new(1_700_000_000 + self.commits * 60, 0),
        )
        .unwrap();
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .unwrap()
    }
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), &target).unwrap();
        }
    }
}
