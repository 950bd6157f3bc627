//! The spool directory and its runs: one directory per process run, locked (an exclusive
//! `flock` through `fs4`) by the process that owns it for as long as it lives. A lock the
//! operating system releases when its process dies is what tells a dead owner's run from a
//! live one's: no pid files, no clocks.

use std::fs::{self, File, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use fs4::fs_std::FileExt;

/// The suffix of a run directory's name.
pub(crate) const RUN_SUFFIX: &str = ".run";
/// The lock file inside a run directory.
pub(crate) const LOCK_FILE: &str = "lock";
/// Most runs one process adopts; the rest wait for the next process (each holds a file
/// descriptor while adopted).
pub(crate) const MAX_ADOPTED: usize = 256;

/// A run directory and the lock that makes it this process's.
#[derive(Debug)]
pub(crate) struct Run {
    /// The directory's name without [`RUN_SUFFIX`]: its start time in milliseconds (13
    /// digits, so names sort as times do), a dash, and 16 random hex digits.
    pub(crate) name: String,
    pub(crate) dir: PathBuf,
    /// Held locked while this value lives.
    lock: File,
}

impl Run {
    /// Removes the run: its files are gone already (or are left on purpose, and then the
    /// directory stays). The lock file goes before the lock is released, so that a process
    /// that opened it in the meantime locks a file no longer in any directory, and finds
    /// nothing to send.
    pub(crate) fn remove(self) {
        let _ = fs::remove_file(self.dir.join(LOCK_FILE));
        if fs::remove_dir(&self.dir).is_err() {
            // Not empty: a file was left on purpose. Keep the lock file for the next owner.
            let _ = create_lock_file(&self.dir);
        }
        drop(self.lock);
    }
}

/// Makes `dir` (0700) if it does not exist, and refuses one that others can write. Returns
/// the path to use.
pub(crate) fn prepare_dir(dir: &Path) -> Result<PathBuf, String> {
    let shown = dir.display();
    if !dir.exists() {
        let mut builder = fs::DirBuilder::new();
        builder.recursive(true);
        #[cfg(unix)]
        std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
        builder.create(dir).map_err(|e| format!("spool off: cannot create {shown}: {e}"))?;
    }
    let meta = fs::metadata(dir).map_err(|e| format!("spool off: cannot read {shown}: {e}"))?;
    if !meta.is_dir() {
        return Err(format!("spool off: {shown} is not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o777;
        if mode & 0o022 != 0 {
            return Err(format!(
                "spool off: {shown} can be written by other users (mode {mode:03o}); \
                 use a directory only its owner can write (chmod 700)"
            ));
        }
    }
    Ok(dir.to_owned())
}

/// Makes this process's run directory in `root`, locked. It is made and locked under a
/// hidden name, then renamed: no other process can see it, and adopt it, before it is locked.
pub(crate) fn create_run(root: &Path) -> io::Result<Run> {
    let millis = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let name = format!("{millis:013}-{:016x}", fastrand::u64(..));
    let hidden = root.join(format!(".new-{name}"));
    let mut builder = fs::DirBuilder::new();
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(&hidden)?;
    let lock = create_lock_file(&hidden)?;
    if !lock.try_lock_exclusive()? {
        return Err(io::Error::other("a fresh run's lock is taken"));
    }
    let dir = root.join(format!("{name}{RUN_SUFFIX}"));
    fs::rename(&hidden, &dir)?;
    Ok(Run { name, dir, lock })
}

fn create_lock_file(dir: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(dir.join(LOCK_FILE))
}

/// Removes a run directory its process never finished making (it died between making and
/// renaming it), once its lock shows the process is gone. It holds no batch.
fn remove_unborn(dir: &Path) {
    let Ok(lock) = OpenOptions::new().read(true).open(dir.join(LOCK_FILE)) else { return };
    if lock.try_lock_exclusive().unwrap_or(false) {
        let _ = fs::remove_file(dir.join(LOCK_FILE));
        let _ = fs::remove_dir(dir);
    }
}

/// Whether `name` is a run directory's name; returns the run's name.
pub(crate) fn run_name(name: &str) -> Option<&str> {
    let run = name.strip_suffix(RUN_SUFFIX)?;
    let (millis, random) = run.split_once('-')?;
    let digits = |s: &str, n: usize, hex: bool| {
        s.len() == n && s.bytes().all(|b| if hex { b.is_ascii_hexdigit() } else { b.is_ascii_digit() })
    };
    (digits(millis, 13, false) && digits(random, 16, true)).then_some(run)
}

/// Adopts every run in `root` but `own` whose lock can be taken, oldest first, up to
/// [`MAX_ADOPTED`]. Lists the directory and opens lock files; reads nothing. Also returns how
/// many entries of `root` are neither runs nor hidden (foreign names, symlinks): skipped.
pub(crate) fn adopt(root: &Path, own: &str) -> (Vec<Run>, u64) {
    let Ok(entries) = fs::read_dir(root) else { return (Vec::new(), 0) };
    let mut names = Vec::new();
    let mut foreign = 0;
    for entry in entries.flatten() {
        let file_name = entry.file_name();
        let Some(name) = file_name.to_str() else {
            foreign += 1;
            continue;
        };
        // `file_type` does not follow symlinks: a link named like a run is not one.
        let is_dir = entry.file_type().is_ok_and(|t| t.is_dir());
        match run_name(name) {
            Some(run) if is_dir && run != own => names.push(run.to_owned()),
            Some(_) if is_dir => {}
            _ if name.starts_with(".new-") && is_dir => remove_unborn(&entry.path()),
            _ if name.starts_with('.') && is_dir => {}
            _ => foreign += 1,
        }
    }
    names.sort_unstable();
    let mut adopted = Vec::new();
    for name in names {
        if adopted.len() >= MAX_ADOPTED {
            break;
        }
        let dir = root.join(format!("{name}{RUN_SUFFIX}"));
        let Ok(lock) = create_lock_file(&dir) else { continue };
        if lock.try_lock_exclusive().unwrap_or(false) {
            adopted.push(Run { name, dir, lock });
        }
    }
    (adopted, foreign)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::spool::testing::TempDir;

    #[test]
    fn a_live_run_is_never_adopted_and_a_released_one_by_one_owner() {
        let tmp = TempDir::new("adopt");
        let live = create_run(tmp.path()).unwrap();
        let dead = create_run(tmp.path()).unwrap();
        let dead_name = dead.name.clone();
        drop(dead);
        let me = create_run(tmp.path()).unwrap();
        let (first, _) = adopt(tmp.path(), &me.name);
        assert_eq!(first.iter().map(|r| &r.name).collect::<Vec<_>>(), [&dead_name], "only the dead owner's");
        let other = create_run(tmp.path()).unwrap();
        let (second, _) = adopt(tmp.path(), &other.name);
        assert!(second.is_empty(), "adopted runs and live ones stay where they are: {second:?}");
        drop(first);
        let (third, _) = adopt(tmp.path(), &other.name);
        assert_eq!(
            third.iter().map(|r| &r.name).collect::<Vec<_>>(),
            [&dead_name],
            "released, adopted again"
        );
        drop((live, me));
    }

    #[test]
    fn names_sort_as_start_times_and_foreign_entries_are_counted() {
        assert_eq!(run_name("1765090000000-0123456789abcdef.run"), Some("1765090000000-0123456789abcdef"));
        for bad in ["x.run", "1765090000000-0123.run", "1765090000000-0123456789abcdeg.run", "lock"] {
            assert_eq!(run_name(bad), None, "{bad}");
        }
        let tmp = TempDir::new("foreign");
        fs::write(tmp.path().join("notes.txt"), "x").unwrap();
        fs::create_dir(tmp.path().join("1765090000000-0123456789abcdef.run")).unwrap();
        #[cfg(unix)]
        std::os::unix::fs::symlink(
            tmp.path().join("1765090000000-0123456789abcdef.run"),
            tmp.path().join("1765090000001-0123456789abcdef.run"),
        )
        .unwrap();
        let unborn = tmp.path().join(".new-1765090000000-0123456789abcdef");
        fs::create_dir(&unborn).unwrap();
        fs::write(unborn.join(LOCK_FILE), "").unwrap();
        let (adopted, foreign) = adopt(tmp.path(), "none");
        assert_eq!(adopted.len(), 1, "the real directory, not the link to it");
        assert!(!unborn.exists(), "a run its dead process never finished making is removed");
        assert_eq!(foreign, if cfg!(unix) { 2 } else { 1 });
    }

    #[cfg(unix)]
    #[test]
    fn directories_are_owner_only_and_one_others_can_write_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new("modes");
        let fresh = tmp.path().join("a/b");
        prepare_dir(&fresh).unwrap();
        assert_eq!(fs::metadata(&fresh).unwrap().permissions().mode() & 0o777, 0o700);
        let run = create_run(&fresh).unwrap();
        assert_eq!(fs::metadata(&run.dir).unwrap().permissions().mode() & 0o777, 0o700);
        assert_eq!(fs::metadata(run.dir.join(LOCK_FILE)).unwrap().permissions().mode() & 0o777, 0o600);
        fs::set_permissions(&fresh, fs::Permissions::from_mode(0o777)).unwrap();
        let refused = prepare_dir(&fresh).unwrap_err();
        assert!(refused.contains("can be written by other users (mode 777)"), "{refused}");
        assert!(!refused.contains('\n'), "one line: {refused}");
    }

    #[test]
    fn removing_a_run_leaves_nothing_unless_a_file_was_kept() {
        let tmp = TempDir::new("remove");
        let run = create_run(tmp.path()).unwrap();
        let dir = run.dir.clone();
        run.remove();
        assert!(!dir.exists());
        let run = create_run(tmp.path()).unwrap();
        let dir = run.dir.clone();
        fs::write(dir.join("00000000000000000001.batch"), "x").unwrap();
        run.remove();
        assert!(dir.join(LOCK_FILE).exists(), "the next owner needs a lock file");
    }
}
