//! File operations on cgroup filesystems, shared by the v1 and v2 drivers:
//! control-file reads and writes that name the file in their errors, and the
//! directory walks behind `pids` and `remove`.
//!
//! Control files are opened for writing without `O_CREAT`: on cgroupfs a file
//! that does not exist means the controller is absent, and the fake trees in the
//! unit tests behave the same way only if we never create files by accident.

use std::fs::{self, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

/// Writes `data` to the existing control file `path` in one write(2).
pub fn write(path: &Path, data: &str) -> Result<()> {
    let mut f = OpenOptions::new()
        .write(true)
        .truncate(true)
        .open(path)
        .with_context(|| format!("open {}", path.display()))?;
    f.write_all(data.as_bytes())
        .with_context(|| format!("write {data:?} to {}", path.display()))
}

/// Like [`write`], but creates the file when it is missing. Only for files the
/// kernel makes itself at mkdir(2) (so `O_CREAT` is a no-op on cgroupfs) and
/// that a fake tree cannot have made in advance, such as cpuset.cpus in a new
/// v1 cgroup.
pub fn write_creating(path: &Path, data: &str) -> Result<()> {
    fs::write(path, data).with_context(|| format!("write {data:?} to {}", path.display()))
}

pub fn read(path: &Path) -> Result<String> {
    fs::read_to_string(path).with_context(|| format!("read {}", path.display()))
}

/// Like [`read`], but `Ok(None)` when the file does not exist.
pub fn read_opt(path: &Path) -> Result<Option<String>> {
    match fs::read_to_string(path) {
        Ok(s) => Ok(Some(s)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e).with_context(|| format!("read {}", path.display())),
    }
}

/// The value of `key` in a flat-keyed file ("key value" per line), such as
/// memory.events or memory.oom_control.
pub fn keyed_value(content: &str, key: &str) -> Option<u64> {
    content.lines().find_map(|line| {
        let (k, v) = line.split_once(' ')?;
        if k == key { v.trim().parse().ok() } else { None }
    })
}

/// The whitespace-separated words of a file such as cgroup.controllers.
pub fn words(content: &str) -> Vec<String> {
    content.split_whitespace().map(str::to_owned).collect()
}

/// `mkdir -p`; an existing directory is fine.
pub fn mkdir(path: &Path) -> Result<()> {
    fs::create_dir_all(path).with_context(|| format!("create cgroup {}", path.display()))
}

/// The pids in `dir`/cgroup.procs and in every descendant cgroup, sorted and
/// without duplicates. A `dir` that does not exist holds no processes.
pub fn collect_pids(dir: &Path) -> Result<Vec<i32>> {
    let mut out = Vec::new();
    collect_pids_into(dir, &mut out)?;
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

fn collect_pids_into(dir: &Path, out: &mut Vec<i32>) -> Result<()> {
    let procs = dir.join("cgroup.procs");
    let Some(content) = read_opt(&procs)? else {
        return Ok(());
    };
    for word in content.split_whitespace() {
        let pid = word
            .parse::<i32>()
            .with_context(|| format!("bad pid {word:?} in {}", procs.display()))?;
        out.push(pid);
    }
    for sub in subdirs(dir)? {
        collect_pids_into(&sub, out)?;
    }
    Ok(())
}

/// The child directories (child cgroups) of `dir`; none if `dir` is gone.
fn subdirs(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e).with_context(|| format!("list {}", dir.display())),
    };
    let mut dirs = Vec::new();
    for entry in entries {
        let entry = entry.with_context(|| format!("list {}", dir.display()))?;
        let ty = entry
            .file_type()
            .with_context(|| format!("stat {}", entry.path().display()))?;
        if ty.is_dir() {
            dirs.push(entry.path());
        }
    }
    Ok(dirs)
}

/// Removes the cgroup `dir` and any child cgroups below it (a container with
/// its own cgroup namespace may have made some), deepest first. rmdir(2) on a
/// cgroup fails with EBUSY while it still holds tasks, so EBUSY is retried until
/// `deadline`; a directory that is already gone counts as removed.
pub fn remove_tree(dir: &Path, deadline: Instant) -> Result<()> {
    for sub in subdirs(dir)? {
        remove_tree(&sub, deadline)?;
    }
    let mut pause = Duration::from_millis(5);
    loop {
        match fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_millis(100));
            }
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) => {
                let pids = collect_pids(dir).unwrap_or_default();
                bail!(
                    "remove cgroup {}: still busy (processes {pids:?}); kill them first: {e}",
                    dir.display()
                );
            }
            Err(e) => return Err(e).with_context(|| format!("remove cgroup {}", dir.display())),
        }
    }
}

/// Polls `done` with growing pauses until it is true or `timeout` has passed;
/// returns whether it became true.
pub fn wait_until(timeout: Duration, mut done: impl FnMut() -> Result<bool>) -> Result<bool> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        if done()? {
            return Ok(true);
        }
        if Instant::now() >= deadline {
            return Ok(false);
        }
        thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_needs_an_existing_file_and_replaces_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("memory.max");
        let err = write(&f, "100").unwrap_err();
        assert!(format!("{err:#}").contains("memory.max"), "{err:#}");
        assert!(!f.exists());
        fs::write(&f, "max\n").unwrap();
        write(&f, "4096").unwrap();
        assert_eq!(fs::read_to_string(&f).unwrap(), "4096");
    }

    #[test]
    fn keyed_value_finds_the_exact_key() {
        let events = "low 0\nhigh 0\nmax 12\noom 3\noom_kill 2\noom_group_kill 0\n";
        assert_eq!(keyed_value(events, "oom_kill"), Some(2));
        assert_eq!(keyed_value(events, "oom"), Some(3));
        assert_eq!(keyed_value(events, "oom_kil"), None);
        assert_eq!(keyed_value("", "oom_kill"), None);
    }

    #[test]
    fn collect_pids_walks_child_cgroups() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("c");
        fs::create_dir_all(top.join("nested/deeper")).unwrap();
        fs::write(top.join("cgroup.procs"), "10\n3\n").unwrap();
        fs::write(top.join("nested/cgroup.procs"), "").unwrap();
        fs::write(top.join("nested/deeper/cgroup.procs"), "7\n10\n").unwrap();
        assert_eq!(collect_pids(&top).unwrap(), vec![3, 7, 10]);
        assert_eq!(collect_pids(&dir.path().join("gone")).unwrap(), Vec::<i32>::new());
        fs::write(top.join("cgroup.procs"), "x\n").unwrap();
        assert!(collect_pids(&top).is_err());
    }

    #[test]
    fn remove_tree_removes_children_first_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let top = dir.path().join("c");
        fs::create_dir_all(top.join("a/b")).unwrap();
        fs::create_dir_all(top.join("d")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(1);
        remove_tree(&top, deadline).unwrap();
        assert!(!top.exists());
        remove_tree(&top, deadline).unwrap();
    }

    #[test]
    fn wait_until_reports_timeout() {
        let mut n = 0;
        assert!(
            wait_until(Duration::from_secs(1), || {
                n += 1;
                Ok(n >= 3)
            })
            .unwrap()
        );
        assert!(!wait_until(Duration::from_millis(20), || Ok(false)).unwrap());
    }
}
