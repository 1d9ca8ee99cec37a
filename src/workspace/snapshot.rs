//! Commits of the workspace's files, cheaply enough to take one per transition.
//!
//! `git add -A` through libgit2 walks the tree twice, looks up attributes (and resolves real
//! paths) for every file and rehashes every file written since the index was last saved. A run
//! knows more than git does: it is the only writer of its repository's objects and it commits
//! again and again. So a [`Snapshot`] keeps, per path, the stat it saw and the blob it wrote, and a
//! commit is one walk with one `lstat` per entry (a folder's names are read again only when the
//! folder's own stat changed): only files whose stat changed, or whose stat is
//! too recent to be trusted, are read and hashed, only new blobs and the trees above them are
//! written, and ignore rules are asked about new paths only. Like git, a path once recorded stays
//! recorded even if an ignore rule later matches it. Each folder's `.gitignore` is compiled when
//! it changes, before the folder's other names are looked at.
//!
//! The on-disk index is not touched per commit: [`Snapshot::write_index`] writes it through
//! libgit2, with the stat data seen, when the run ends, so `git status` in a finished workspace
//! is clean and fast.

use std::collections::{BTreeMap, HashSet};
use std::ffi::{OsStr, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use git2::{FileMode, Index, IndexEntry, IndexTime, ObjectType, Oid, Repository};

use super::folder::{self, Folder, Kind};
use super::ignore_rules::{self, Rules};
use super::objects::{Objects, TreeEntry, object_id};
use super::refs::Branch;
use super::stream_pack::{self, STREAM_FROM};
use super::{WorkspaceError, io};

/// On file systems that keep whole seconds only, a file changed within this long before a walk
/// may change again without its stat changing, so its content is hashed again next time.
const RACY_COARSE: Duration = Duration::from_secs(2);

/// What a path held at the last commit.
#[derive(Default)]
pub struct Snapshot {
    root: Dir,
    /// The repository's object store, the branch HEAD names and the repository-wide ignore
    /// rules, found at the first commit.
    store: Option<Store>,
}

struct Store {
    objects: Objects,
    branch: Branch,
    ignore: Vec<Rules>,
}

#[derive(Default)]
struct Dir {
    files: BTreeMap<OsString, File>,
    dirs: BTreeMap<OsString, Dir>,
    /// Names in this folder an ignore rule excluded (asked once; forgotten when a `.gitignore`
    /// changes).
    ignored: HashSet<OsString>,
    /// The tree last written for this folder; `None` when something below it changed.
    tree: Option<Oid>,
    /// This folder's `.gitignore`, as last compiled.
    gitignore: Option<IgnoreFile>,
    /// The folder's names as last read, with the folder's stat then.
    listing: Option<Listing>,
}

/// What a folder held when it was last read. Adding, removing or renaming a name changes the
/// folder's own mtime, so while its stat is unchanged (and was settled when read) the names are
/// the same and reading the folder again can be skipped, as git's untracked cache does. Changes
/// to the files themselves are seen by their own stat.
struct Listing {
    stat: Stat,
    trusted: bool,
    entries: Vec<(OsString, Kind)>,
}

/// A folder's `.gitignore` and the rules compiled from it.
struct IgnoreFile {
    stat: Stat,
    trusted: bool,
    text: Vec<u8>,
    rules: Option<Rules>,
}

struct File {
    stat: Stat,
    /// Whether the stat is old enough that an unchanged stat means unchanged content.
    trusted: bool,
    oid: Oid,
    mode: FileMode,
}

#[derive(Clone, Copy, PartialEq, Eq)]
struct Stat {
    size: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
    ino: u64,
    dev: u64,
    mode: u32,
    uid: u32,
    gid: u32,
}

impl Stat {
    // The kernel's stat fields differ in width between architectures.
    #[allow(clippy::unnecessary_cast)]
    fn of(m: &folder::Stat) -> Stat {
        Stat {
            size: m.st_size as u64,
            mtime: (m.st_mtime as i64, m.st_mtime_nsec as i64),
            ctime: (m.st_ctime as i64, m.st_ctime_nsec as i64),
            ino: m.st_ino as u64,
            dev: m.st_dev as u64,
            mode: m.st_mode as u32,
            uid: m.st_uid as u32,
            gid: m.st_gid as u32,
        }
    }

    fn kind(&self) -> Kind {
        Kind::of_mode(self.mode)
    }

    /// Whether the file was last changed early enough to trust its stat: before `tick`, the
    /// kernel's coarse clock when the walk started. The kernel stamps changes from that clock
    /// (never below it), so a later change cannot carry the stat seen now; a file changed in the
    /// current tick might, and is hashed again next time.
    fn settled(&self, tick: SystemTime, now: SystemTime) -> bool {
        let (secs, nanos) = self.mtime.max(self.ctime);
        let (Ok(secs), Ok(nanos)) = (u64::try_from(secs), u32::try_from(nanos)) else {
            return false;
        };
        let changed = UNIX_EPOCH + Duration::new(secs, nanos);
        if nanos == 0 {
            return now
                .duration_since(changed)
                .is_ok_and(|age| age > RACY_COARSE);
        }
        changed < tick
    }
}

/// One walk's context.
struct Walk<'a> {
    objects: &'a mut Objects,
    /// The repository-wide ignore rules, asked after every `.gitignore`.
    ignore: &'a [Rules],
    /// The `.gitignore` rules of the folder being walked and those above it, outermost first,
    /// each with its folder's path in the work tree.
    rules: Vec<(PathBuf, Rules)>,
    /// The coarse clock and the precise one when the walk started.
    tick: SystemTime,
    now: SystemTime,
    /// A `.gitignore` changed: cached ignore decisions are stale after this walk.
    ignore_rules_changed: bool,
}

impl Snapshot {
    /// Records every file under `root` (the work tree of `repo`) as a commit on HEAD.
    pub fn commit(
        &mut self,
        repo: &Repository,
        root: &Path,
        message: &str,
    ) -> Result<Oid, WorkspaceError> {
        let Store {
            objects,
            branch,
            ignore,
        } = match &mut self.store {
            Some(store) => store,
            None => {
                // HEAD is the worktree's; objects, branches and `info/` are shared.
                let common = repo.commondir();
                self.store.insert(Store {
                    objects: Objects::new(&common.join("objects"), auto_pack_limit(repo)?),
                    branch: Branch::of(repo.path(), common)?,
                    ignore: ignore_rules::repository_wide(common),
                })
            }
        };
        let mut walk = Walk {
            objects,
            ignore,
            rules: Vec::new(),
            tick: coarse_now(),
            now: SystemTime::now(),
            ignore_rules_changed: false,
        };
        let top = Folder::open(root).map_err(io(root))?;
        walk.dir(&mut self.root, &top, root, Path::new(""), false)?;
        if walk.ignore_rules_changed {
            self.root.forget_ignored();
        }
        let tree = match write_tree(objects, &mut self.root)? {
            Some(oid) => oid,
            None => objects.tree(&mut [])?,
        };
        let parent = branch.tip()?;
        let commit = objects.commit(tree, parent, message)?;
        // The objects first: a branch never names a commit that is not there.
        if let Err(e) = objects.flush() {
            // What was recorded names objects that never reached the disk: start over.
            self.root = Dir::default();
            return Err(e);
        }
        branch.set(commit)?;
        // After the move: the commit stands even if merging packs fails (the error still says so).
        objects.consolidate()?;
        Ok(commit)
    }

    /// Counts the packs again and merges them if there are more than the limit (the end of a
    /// run: another writer may have added packs this writer did not see).
    pub fn consolidate_packs(&mut self) -> Result<(), WorkspaceError> {
        match &mut self.store {
            Some(store) => store.objects.consolidate_counted(),
            None => Ok(()),
        }
    }

    /// Whether the object store's packs were consolidated since last asked (a reader that
    /// listed the old packs should look again).
    pub fn take_repacked(&mut self) -> bool {
        self.store
            .as_mut()
            .is_some_and(|store| store.objects.take_repacked())
    }

    /// Writes the repository's index through libgit2, from what the last commit recorded, stat
    /// data included. (Written by hand, an index of 2,000 files took 0.34–0.44 ms, through
    /// libgit2 3.4–5.1 ms: once at the end of a run, where that does not matter.)
    pub fn write_index(&self, repo: &Repository) -> Result<(), WorkspaceError> {
        // Opened by path, not through `repo`: an index of its repository would compare racy
        // entries with the work tree again, which the stats recorded here already settle.
        let mut index = Index::open(&repo.path().join("index"))?;
        index.clear()?;
        self.root.index_into(&mut index, &mut Vec::new())?;
        index.write()?;
        Ok(())
    }
}

/// Git's `gc.autoPackLimit` for `repo` (its default, 50, when unset): past this many packs,
/// `git gc --auto` would repack, so the writer consolidates them itself.
fn auto_pack_limit(repo: &Repository) -> Result<usize, WorkspaceError> {
    match repo.config()?.get_i64("gc.autoPackLimit") {
        Ok(limit) => Ok(usize::try_from(limit).unwrap_or(0)),
        Err(e) if e.code() == git2::ErrorCode::NotFound => Ok(DEFAULT_AUTO_PACK_LIMIT),
        Err(e) => Err(e.into()),
    }
}

/// Git's default `gc.autoPackLimit`.
const DEFAULT_AUTO_PACK_LIMIT: usize = 50;

impl Walk<'_> {
    /// Brings `node` up to date with the folder `abs` (`rel` inside the work tree; `excluded`
    /// when an ignore rule matches the folder or one above it, so that nothing new in it is
    /// recorded). Returns whether anything in it changed.
    fn dir(
        &mut self,
        node: &mut Dir,
        folder: &Folder,
        abs: &Path,
        rel: &Path,
        excluded: bool,
    ) -> Result<bool, WorkspaceError> {
        // Forgotten until the walk of this folder completes: a walk cut short by an error must
        // not leave a tree that no longer matches the entries it already updated.
        let tree = node.tree.take();
        let listing = self.listing(node.listing.take(), folder, abs)?;
        // The folder's own rules decide about every other name in it, so they come first.
        let has_gitignore = listing
            .entries
            .iter()
            .any(|(name, kind)| name == ".gitignore" && *kind == Kind::File);
        self.gitignore(node, folder, abs, has_gitignore)?;
        let own_rules = node.gitignore.as_ref().and_then(|g| g.rules.clone());
        if let Some(rules) = &own_rules {
            self.rules.push((rel.to_path_buf(), rules.clone()));
        }
        let walked = self.entries(node, folder, abs, rel, excluded, &listing.entries);
        if own_rules.is_some() {
            self.rules.pop();
        }
        let changed = walked?;
        node.listing = Some(listing);
        if !changed {
            node.tree = tree;
        }
        Ok(changed)
    }

    /// The names in the folder `abs`: those `last` read if the folder's stat says nothing was
    /// added, removed or renamed since, else read now. The stat is taken before the names, so
    /// a change made while they are read shows in the next stat.
    fn listing(
        &self,
        last: Option<Listing>,
        folder: &Folder,
        abs: &Path,
    ) -> Result<Listing, WorkspaceError> {
        let stat = Stat::of(&folder.stat().map_err(io(abs))?);
        if let Some(last) = last
            && last.trusted
            && last.stat == stat
        {
            return Ok(last);
        }
        let mut entries = folder.names().map_err(io(abs))?;
        // The repository itself, and the `.git` file of a worktree or nested repository.
        entries.retain(|(name, _)| name != ".git");
        Ok(Listing {
            stat,
            trusted: stat.settled(self.tick, self.now),
            entries,
        })
    }

    /// The entries of the folder `abs`, as [`Walk::dir`] found them.
    fn entries(
        &mut self,
        node: &mut Dir,
        folder: &Folder,
        abs: &Path,
        rel: &Path,
        excluded: bool,
        entries: &[(OsString, Kind)],
    ) -> Result<bool, WorkspaceError> {
        let mut changed = false;
        let mut seen: HashSet<&OsStr> = HashSet::new();
        for (name, kind) in entries {
            let (name, kind) = (name.as_os_str(), *kind);
            // The path in the work tree, made only where an ignore rule or a folder needs it.
            let path = || rel.join(name);
            let known = node.files.contains_key(name) || node.dirs.contains_key(name);
            if !known
                && (node.ignored.contains(name)
                    || excluded
                    || self.ignored(&path(), kind == Kind::Dir))
            {
                node.ignored.insert(name.to_os_string());
                continue;
            }
            match kind {
                Kind::Dir => {
                    let sub_abs = abs.join(name);
                    let sub_folder = match folder.open_sub(name) {
                        Ok(f) => f,
                        // Gone, or no longer a folder, since it was listed: the next walk sees
                        // what took its place.
                        Err(e) if vanished(&e) => continue,
                        Err(e) => return Err(io(&sub_abs)(e)),
                    };
                    changed |= node.files.remove(name).is_some();
                    // A recorded folder an ignore rule now matches: what it holds stays
                    // recorded, nothing new in it is added.
                    let path = path();
                    let inner_excluded = excluded || (known && self.ignored(&path, true));
                    let sub = node.dirs.entry(name.to_os_string()).or_default();
                    changed |= self.dir(sub, &sub_folder, &sub_abs, &path, inner_excluded)?;
                }
                Kind::File | Kind::Symlink => {
                    changed |= node.dirs.remove(name).is_some();
                    changed |= self.file(node, folder, name, abs)?;
                }
                Kind::Other => continue, // sockets, fifos and devices are not content
            }
            seen.insert(name);
        }
        let before = node.files.len() + node.dirs.len();
        node.files.retain(|name, _| seen.contains(name.as_os_str()));
        node.dirs.retain(|name, _| seen.contains(name.as_os_str()));
        changed |= node.files.len() + node.dirs.len() != before;
        Ok(changed)
    }

    /// Compiles the folder's `.gitignore` again if its stat changed (or was too recent to
    /// trust); a change of its rules makes cached ignore decisions stale.
    fn gitignore(
        &mut self,
        node: &mut Dir,
        folder: &Folder,
        abs: &Path,
        present: bool,
    ) -> Result<(), WorkspaceError> {
        let name = OsStr::new(".gitignore");
        let stat = if present {
            folder.stat_at(name).ok().map(|s| Stat::of(&s))
        } else {
            None
        };
        let Some(stat) = stat.filter(|s| s.kind() == Kind::File) else {
            self.ignore_rules_changed |= node.gitignore.take().is_some();
            return Ok(());
        };
        if let Some(g) = &node.gitignore
            && g.trusted
            && g.stat == stat
        {
            return Ok(());
        }
        let text = match folder.read_at(name, stat.size) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(io(&abs.join(name))(e)),
        };
        if node.gitignore.as_ref().is_none_or(|g| g.text != text) {
            self.ignore_rules_changed = true;
        }
        node.gitignore = Some(IgnoreFile {
            stat,
            trusted: stat.settled(self.tick, self.now),
            rules: ignore_rules::parse(&text),
            text,
        });
        Ok(())
    }

    /// Whether git would leave out `path` (in the work tree), by the nearest rule that
    /// matches it.
    fn ignored(&self, path: &Path, is_dir: bool) -> bool {
        let folders = self
            .rules
            .iter()
            .rev()
            .filter_map(|(folder, rules)| Some((rules, path.strip_prefix(folder).ok()?)));
        let repository = self.ignore.iter().map(|rules| (rules, path));
        folders
            .chain(repository)
            .find_map(|(rules, p)| ignore_rules::verdict(rules, p, is_dir))
            .unwrap_or(false)
    }

    /// Brings the file `name` of `node` up to date. Returns whether its content or mode changed.
    fn file(
        &mut self,
        node: &mut Dir,
        folder: &Folder,
        name: &OsStr,
        abs: &Path,
    ) -> Result<bool, WorkspaceError> {
        let Ok(stat) = folder.stat_at(name).map(|s| Stat::of(&s)) else {
            return Ok(false); // vanished while walking; the next walk drops it
        };
        if let Some(f) = node.files.get(name)
            && f.trusted
            && f.stat == stat
        {
            return Ok(false);
        }
        if stat.kind() == Kind::File && stat.size >= STREAM_FROM {
            return self.big_file(node, folder, name, abs, stat);
        }
        let read = match stat.kind() {
            Kind::Symlink => folder.link_at(name).map(|target| (target, FileMode::Link)),
            Kind::File => folder.read_at(name, stat.size).map(|bytes| {
                let exec = stat.mode & 0o100 != 0;
                let mode = if exec {
                    FileMode::BlobExecutable
                } else {
                    FileMode::Blob
                };
                (bytes, mode)
            }),
            // Replaced by a folder (or something else) since it was listed: the next walk
            // sees it as what it is now.
            Kind::Dir | Kind::Other => return Ok(false),
        };
        let (bytes, mode) = match read {
            Ok(read) => read,
            Err(e) if vanished(&e) => return Ok(false),
            Err(e) => return Err(io(&abs.join(name))(e)),
        };
        let oid = object_id(ObjectType::Blob, &bytes)?;
        let trusted = stat.settled(self.tick, self.now);
        let same = node
            .files
            .get(name)
            .is_some_and(|f| f.oid == oid && f.mode == mode);
        if !same {
            self.objects.store(ObjectType::Blob, oid, &bytes)?;
        }
        node.files.insert(
            name.to_os_string(),
            File {
                stat,
                trusted,
                oid,
                mode,
            },
        );
        Ok(!same)
    }
}

impl Walk<'_> {
    /// [`Walk::file`] for a file of [`STREAM_FROM`] bytes or more: hashed and stored in one
    /// streaming pass, never held in memory. A file that shrinks while it is read is read again
    /// (a few times, then reported).
    fn big_file(
        &mut self,
        node: &mut Dir,
        folder: &Folder,
        name: &OsStr,
        abs: &Path,
        stat: Stat,
    ) -> Result<bool, WorkspaceError> {
        let mode = if stat.mode & 0o100 != 0 {
            FileMode::BlobExecutable
        } else {
            FileMode::Blob
        };
        let had = node.files.get(name).map(|f| (f.oid, f.mode));
        let mut tries = 0;
        // Seen before: most likely unchanged, which a hash alone tells.
        if let Some((old, old_mode)) = had
            && old_mode == mode
            && let Ok((mut f, size)) = folder.open_file_at(name)
            && size == stat.size
            && stream_pack::blob_id(&mut f, size).is_ok_and(|oid| oid == old)
        {
            node.files.insert(
                name.to_os_string(),
                File {
                    stat,
                    trusted: stat.settled(self.tick, self.now),
                    oid: old,
                    mode,
                },
            );
            return Ok(false);
        }
        let oid = loop {
            let streamed = folder.open_file_at(name).and_then(|(mut f, size)| {
                self.objects
                    .store_stream(&mut f, size, |oid| had != Some((oid, mode)))
            });
            match streamed {
                Ok(oid) => break oid,
                Err(e) if vanished(&e) => return Ok(false),
                Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof && tries < 3 => {
                    tries += 1;
                }
                Err(e) => return Err(io(&abs.join(name))(e)),
            }
        };
        let same = had == Some((oid, mode));
        node.files.insert(
            name.to_os_string(),
            File {
                stat,
                // Read over a while, so never trusted at once: the next commit looks again.
                trusted: stat.settled(self.tick, self.now) && tries == 0,
                oid,
                mode,
            },
        );
        Ok(!same)
    }
}

/// Whether an error says a name listed a moment ago is gone or is no longer what it was.
fn vanished(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::NotFound | std::io::ErrorKind::NotADirectory
    ) || e.raw_os_error() == Some(libc::ELOOP)
}

/// The kernel's coarse real-time clock, which stamps file changes; the epoch if unreadable (then
/// no recent stat is trusted).
fn coarse_now() -> SystemTime {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes the timespec it is given.
    let read = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    match (read, u64::try_from(ts.tv_sec), u32::try_from(ts.tv_nsec)) {
        (true, Ok(secs), Ok(nanos)) => UNIX_EPOCH + Duration::new(secs, nanos),
        _ => UNIX_EPOCH,
    }
}

/// Writes the trees of folders that changed, deepest first. `None` for a folder with no files
/// anywhere below it (git records no empty folders).
fn write_tree(objects: &mut Objects, node: &mut Dir) -> Result<Option<Oid>, WorkspaceError> {
    if let Some(oid) = node.tree {
        return Ok(Some(oid));
    }
    let mut subtrees = Vec::new();
    for (name, sub) in &mut node.dirs {
        if let Some(oid) = write_tree(objects, sub)? {
            subtrees.push((name, oid));
        }
    }
    let mut entries: Vec<TreeEntry<'_>> = node
        .files
        .iter()
        .map(|(name, f)| TreeEntry {
            name: name.as_bytes(),
            oid: f.oid,
            mode: f.mode,
        })
        .chain(subtrees.iter().map(|(name, oid)| TreeEntry {
            name: name.as_bytes(),
            oid: *oid,
            mode: FileMode::Tree,
        }))
        .collect();
    if entries.is_empty() {
        return Ok(None);
    }
    let oid = objects.tree(&mut entries)?;
    node.tree = Some(oid);
    Ok(Some(oid))
}

impl Dir {
    fn forget_ignored(&mut self) {
        self.ignored.clear();
        for sub in self.dirs.values_mut() {
            sub.forget_ignored();
        }
    }

    fn index_into(&self, index: &mut Index, prefix: &mut Vec<u8>) -> Result<(), git2::Error> {
        // The index's fields are 32 bits wide; git truncates larger values the same way.
        let time = |(secs, nanos): (i64, i64)| IndexTime::new(secs as i32, nanos as u32);
        for (name, f) in &self.files {
            let mut path = prefix.clone();
            path.extend_from_slice(name.as_bytes());
            let s = &f.stat;
            index.add(&IndexEntry {
                ctime: time(s.ctime),
                mtime: time(s.mtime),
                dev: s.dev as u32,
                ino: s.ino as u32,
                mode: u32::from(f.mode),
                uid: s.uid,
                gid: s.gid,
                file_size: s.size as u32,
                id: f.oid,
                // The name's length is filled in by git2.
                flags: 0,
                flags_extended: 0,
                path,
            })?;
        }
        for (name, sub) in &self.dirs {
            let len = prefix.len();
            prefix.extend_from_slice(name.as_bytes());
            prefix.push(b'/');
            sub.index_into(index, prefix)?;
            prefix.truncate(len);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use git2::Repository;

    fn tree_paths(repo: &Repository) -> Vec<String> {
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        let mut out = Vec::new();
        tree.walk(git2::TreeWalkMode::PreOrder, |dir, e| {
            if e.kind() == Some(ObjectType::Blob) {
                out.push(format!("{dir}{}", e.name().unwrap()));
            }
            git2::TreeWalkResult::Ok
        })
        .unwrap();
        out
    }

    #[test]
    fn records_what_git_add_all_records() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        std::fs::write(root.join(".gitignore"), ".tmp/\n*.log\n").unwrap();
        std::fs::create_dir_all(root.join("a/b")).unwrap();
        std::fs::create_dir_all(root.join(".tmp")).unwrap();
        std::fs::create_dir_all(root.join("empty")).unwrap();
        std::fs::write(root.join("a/b/c.txt"), "c").unwrap();
        std::fs::write(root.join("a/x.log"), "ignored").unwrap();
        std::fs::write(root.join(".tmp/scratch"), "ignored").unwrap();
        std::os::unix::fs::symlink("a/b/c.txt", root.join("link")).unwrap();
        let mut snap = Snapshot::default();
        let first = snap.commit(&repo, root, "one").unwrap();
        assert_eq!(tree_paths(&repo), [".gitignore", "a/b/c.txt", "link"]);

        // The same tree as libgit2's own `add_all`, byte for byte.
        let mut index = repo.index().unwrap();
        index
            .add_all(["*"], git2::IndexAddOption::DEFAULT, None)
            .unwrap();
        let theirs = index.write_tree().unwrap();
        assert_eq!(repo.find_commit(first).unwrap().tree_id(), theirs);

        // Edits, deletions and new files, with stats that may be too recent to trust.
        std::fs::write(root.join("a/b/c.txt"), "C").unwrap();
        std::fs::remove_file(root.join("link")).unwrap();
        std::fs::write(root.join("new.txt"), "n").unwrap();
        snap.commit(&repo, root, "two").unwrap();
        assert_eq!(tree_paths(&repo), [".gitignore", "a/b/c.txt", "new.txt"]);
        let blob = repo
            .head()
            .unwrap()
            .peel_to_tree()
            .unwrap()
            .get_path(Path::new("a/b/c.txt"))
            .unwrap()
            .id();
        assert_eq!(repo.find_blob(blob).unwrap().content(), b"C");

        // A new ignore rule excludes new paths; recorded ones stay recorded.
        std::fs::write(root.join(".gitignore"), ".tmp/\n*.log\n*.txt\n").unwrap();
        std::fs::write(root.join("later.txt"), "l").unwrap();
        snap.commit(&repo, root, "three").unwrap();
        assert_eq!(tree_paths(&repo), [".gitignore", "a/b/c.txt", "new.txt"]);
        crate::workspace::assert_fsck(root);
    }

    /// The tree `git add -A` would record for the work tree `root` after the commit `base`
    /// (whose files are tracked), from git itself (with an index of its own, so the
    /// repository's is left alone).
    fn git_add_all_tree(root: &Path, base: Option<Oid>) -> String {
        let index = root.join(".git/test-index");
        let git = |args: &[&str]| {
            let out = std::process::Command::new("git")
                .args(args)
                .current_dir(root)
                .env("GIT_INDEX_FILE", &index)
                .output()
                .unwrap();
            assert!(out.status.success(), "{out:?}");
            String::from_utf8(out.stdout).unwrap()
        };
        if let Some(base) = base {
            git(&["read-tree", &base.to_string()]);
        }
        git(&["add", "-A"]);
        let tree = git(&["write-tree"]).trim().to_string();
        std::fs::remove_file(&index).unwrap();
        tree
    }

    #[test]
    fn nested_ignore_files_and_info_exclude_decide_as_git_does() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let write = |rel: &str, text: &str| {
            let p = root.join(rel);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        };
        write(".gitignore", "*.log\nbuild/\n");
        write("sub/.gitignore", "!keep.log\n/local.txt\n");
        write(".git/info/exclude", "secret*\n");
        for f in [
            "a.txt",
            "x.log",
            "secret.txt",
            "build/out.o",
            "sub/keep.log",
            "sub/x.log",
            "sub/local.txt",
            "sub/deeper/local.txt",
            "sub/deeper/keep.log",
            "sub/build/y",
        ] {
            write(f, f);
        }
        let mut snap = Snapshot::default();
        let first = snap.commit(&repo, root, "one").unwrap();
        let ours = repo.find_commit(first).unwrap().tree_id().to_string();
        assert_eq!(ours, git_add_all_tree(root, None));
        assert_eq!(
            tree_paths(&repo),
            [
                ".gitignore",
                "a.txt",
                "sub/.gitignore",
                "sub/deeper/keep.log",
                "sub/deeper/local.txt",
                "sub/keep.log",
            ]
        );

        // Rules that change between commits: a new pattern and a removed one, in the nested
        // file; a recorded folder newly ignored keeps its files but takes no new ones.
        write("sub/.gitignore", "!keep.log\ndeeper/\n");
        write("sub/deeper/new.txt", "new");
        write("sub/new.log", "log");
        std::thread::sleep(Duration::from_millis(10));
        let second = snap.commit(&repo, root, "two").unwrap();
        let ours = repo.find_commit(second).unwrap().tree_id().to_string();
        assert_eq!(ours, git_add_all_tree(root, Some(first)));
        assert!(tree_paths(&repo).contains(&"sub/local.txt".to_string()));
        assert!(!tree_paths(&repo).contains(&"sub/deeper/new.txt".to_string()));
    }

    #[test]
    fn big_files_are_streamed_and_rehashed_without_being_stored_twice() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let mut snap = Snapshot::default();
        let size = usize::try_from(STREAM_FROM).unwrap() + 3;
        let mut bytes: Vec<u8> = (0..size).map(|i| (i * 7 % 251) as u8).collect();
        let packs = || {
            std::fs::read_dir(root.join(".git/objects/pack"))
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("keep".as_ref()))
                .count()
        };
        let blob = |repo: &Repository| {
            let tree = repo.head().unwrap().peel_to_tree().unwrap();
            tree.get_name("big").unwrap().id()
        };
        std::fs::write(root.join("big"), &bytes).unwrap();
        let first = snap.commit(&repo, root, "one").unwrap();
        assert_eq!(
            blob(&repo),
            Oid::hash_object(ObjectType::Blob, &bytes).unwrap()
        );
        assert_eq!(packs(), 1);
        // Rewritten with the same bytes (a new mtime): hashed, found the same, not stored.
        std::fs::write(root.join("big"), &bytes).unwrap();
        snap.commit(&repo, root, "two").unwrap();
        assert_eq!(packs(), 1);
        // One byte changed, same size: a new blob.
        bytes[size / 2] ^= 1;
        std::fs::write(root.join("big"), &bytes).unwrap();
        snap.commit(&repo, root, "three").unwrap();
        assert_eq!(packs(), 2);
        let b = repo.find_blob(blob(&repo)).unwrap();
        assert_eq!(b.content(), &bytes[..]);
        assert_eq!(
            git_add_all_tree(root, Some(first)),
            repo.head()
                .unwrap()
                .peel_to_tree()
                .unwrap()
                .id()
                .to_string()
        );
        crate::workspace::assert_fsck(root);
    }

    #[test]
    fn a_same_size_rewrite_right_after_a_commit_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let mut snap = Snapshot::default();
        for content in ["aaaa", "bbbb", "cccc"] {
            std::fs::write(root.join("f"), content).unwrap();
            snap.commit(&repo, root, content).unwrap();
            let tree = repo.head().unwrap().peel_to_tree().unwrap();
            let blob = repo.find_blob(tree.get_name("f").unwrap().id()).unwrap();
            assert_eq!(blob.content(), content.as_bytes());
        }
    }

    #[test]
    fn a_settled_file_rewritten_with_its_old_mtime_is_seen() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let write = |content: &str| {
            std::fs::write(root.join("f"), content).unwrap();
            let f = std::fs::File::options()
                .write(true)
                .open(root.join("f"))
                .unwrap();
            f.set_modified(old).unwrap();
        };
        let mut snap = Snapshot::default();
        write("aaaa");
        // Old enough that the commit trusts the stat it records: past the clock's next tick.
        std::thread::sleep(Duration::from_millis(30));
        snap.commit(&repo, root, "one").unwrap();
        assert!(snap.root.files[OsStr::new("f")].trusted);
        // Same size, same mtime: only the change time (and content) differ.
        write("bbbb");
        snap.commit(&repo, root, "two").unwrap();
        let tree = repo.head().unwrap().peel_to_tree().unwrap();
        let blob = repo.find_blob(tree.get_name("f").unwrap().id()).unwrap();
        assert_eq!(blob.content(), b"bbbb");
    }

    #[test]
    fn a_settled_folder_is_read_again_when_its_names_change() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        let backdate = |p: &str| {
            std::fs::File::open(root.join(p))
                .unwrap()
                .set_modified(old)
                .unwrap();
        };
        std::fs::create_dir(root.join("d")).unwrap();
        std::fs::write(root.join("d/a"), "a").unwrap();
        backdate("d");
        std::thread::sleep(Duration::from_millis(30));
        let mut snap = Snapshot::default();
        snap.commit(&repo, root, "one").unwrap();
        assert!(
            snap.root.dirs[OsStr::new("d")]
                .listing
                .as_ref()
                .unwrap()
                .trusted
        );
        let names = |snap: &Snapshot| -> Vec<String> {
            let d = &snap.root.dirs[OsStr::new("d")];
            d.files.keys().map(|n| n.to_string_lossy().into()).collect()
        };

        // Nothing changed: the cached names stand, and so does the tree.
        let tree = |c: Oid| repo.find_commit(c).unwrap().tree_id();
        let first = snap.commit(&repo, root, "two").unwrap();
        assert_eq!(names(&snap), ["a"]);
        // A new name, with the folder's mtime set back to what the listing saw: its change
        // time still differs.
        std::fs::write(root.join("d/b"), "b").unwrap();
        backdate("d");
        let second = snap.commit(&repo, root, "three").unwrap();
        assert_eq!(names(&snap), ["a", "b"]);
        assert_ne!(tree(first), tree(second));
        // A rename and a removal, right after the commit (too recent to trust, read again).
        std::fs::rename(root.join("d/b"), root.join("d/c")).unwrap();
        std::fs::remove_file(root.join("d/a")).unwrap();
        snap.commit(&repo, root, "four").unwrap();
        assert_eq!(names(&snap), ["c"]);
    }

    #[test]
    fn the_index_matches_the_last_commit() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let repo = Repository::init(root).unwrap();
        std::fs::create_dir_all(root.join("d")).unwrap();
        std::fs::write(root.join("d/f"), "f").unwrap();
        std::fs::write(root.join("g"), "g").unwrap();
        // Sorts before "d/f" in the index ('.' < '/'), after it in the walk.
        std::fs::write(root.join("d.txt"), "d").unwrap();
        std::os::unix::fs::symlink("g", root.join("link")).unwrap();
        let mut snap = Snapshot::default();
        snap.commit(&repo, root, "one").unwrap();
        snap.write_index(&repo).unwrap();
        let statuses = repo.statuses(None).unwrap();
        assert_eq!(statuses.len(), 0, "git status is clean");
        // And for git itself, which also checks the file's own checksum and order.
        let git = |args: &[&str]| crate::workspace::git_cli(root, args);
        assert_eq!(git(&["status", "--porcelain"]), "");
        let listed = git(&["ls-files", "--stage"]);
        let paths: Vec<&str> = listed
            .lines()
            .map(|l| l.split('\t').nth(1).unwrap())
            .collect();
        assert_eq!(paths, ["d.txt", "d/f", "g", "link"]);
        // The stat data is kept, so git trusts the entries without reading the files.
        let debug = git(&["ls-files", "--debug", "g"]);
        let meta = std::fs::symlink_metadata(root.join("g")).unwrap();
        use std::os::unix::fs::MetadataExt;
        assert!(debug.contains(&format!("ino: {}", meta.ino())), "{debug}");
        assert!(
            debug.contains(&format!("mtime: {}:", meta.mtime())),
            "{debug}"
        );
        crate::workspace::assert_fsck(root);
    }
}
