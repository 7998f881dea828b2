//! The cgroup v1 driver: one hierarchy per controller under ROOT/<controller>,
//! and the v1 spelling of each control file (memory.limit_in_bytes,
//! memory.oom_control, freezer.state, cpuset.cpus, ...).

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::files as cgfs;

/// The v1 controllers a container joins. `devices` is joined too, although no
/// rule is written yet, so that device access can be restricted later without
/// moving processes.
pub const CONTROLLERS: &[&str] = &[
    "memory", "pids", "cpu", "cpuacct", "cpuset", "freezer", "blkio", "devices",
];

/// How long freeze/thaw wait for the freezer to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Makes `ROOT/<ctrl>/<parent>/<id>` in every mounted controller of
/// [`CONTROLLERS`], recording each directory in `made` as soon as it exists
/// (so the caller can undo a half-done create). Controllers that are not
/// mounted are skipped. Co-mounted controllers (`cpu,cpuacct` with `cpu` and
/// `cpuacct` as symlinks) resolve to the same directory.
pub fn create(root: &Path, parent: &str, id: &str, made: &mut BTreeMap<String, PathBuf>) -> Result<()> {
    for &ctrl in CONTROLLERS {
        let mount = root.join(ctrl);
        if !mount.join("cgroup.procs").is_file() {
            continue;
        }
        let mount = fs::canonicalize(&mount).with_context(|| format!("resolve {}", mount.display()))?;
        let parent_dir = mount.join(parent);
        let leaf = parent_dir.join(id);
        cgfs::mkdir(&parent_dir)?;
        if ctrl == "cpuset" {
            init_cpuset(&parent_dir)?;
        }
        cgfs::mkdir(&leaf)?;
        made.insert(ctrl.to_owned(), leaf.clone());
        if ctrl == "cpuset" {
            init_cpuset(&leaf)?;
        }
    }
    Ok(())
}

/// A new v1 cpuset cgroup starts with empty cpuset.cpus and cpuset.mems and
/// refuses tasks (ENOSPC) until both are set; copy them from the parent.
fn init_cpuset(dir: &Path) -> Result<()> {
    let parent = dir
        .parent()
        .with_context(|| format!("cpuset cgroup {} has no parent", dir.display()))?;
    for file in ["cpuset.cpus", "cpuset.mems"] {
        let current = cgfs::read_opt(&dir.join(file))?.unwrap_or_default();
        if !current.trim().is_empty() {
            continue;
        }
        let inherited = cgfs::read(&parent.join(file))?;
        let inherited = inherited.trim();
        if inherited.is_empty() {
            bail!(
                "{} is empty: cannot give {} any {file}",
                parent.join(file).display(),
                dir.display()
            );
        }
        cgfs::write_creating(&dir.join(file), inherited)?;
    }
    Ok(())
}

/// memory.limit_in_bytes, and memory.memsw.limit_in_bytes (memory + swap) to the
/// same value when swap accounting is on, so the limit cannot be escaped into
/// swap. The kernel insists on limit <= memsw at every moment, so the order of
/// the two writes depends on whether the memsw limit goes up or down.
pub fn set_memory_limit(dir: &Path, bytes: u64) -> Result<()> {
    let limit = dir.join("memory.limit_in_bytes");
    if !limit.is_file() {
        bail!(
            "cgroup {} has no memory controller ({} is missing)",
            dir.display(),
            limit.display()
        );
    }
    let memsw = dir.join("memory.memsw.limit_in_bytes");
    let value = bytes.to_string();
    match cgfs::read_opt(&memsw)? {
        None => cgfs::write(&limit, &value),
        Some(current) => {
            let current: u64 = current
                .trim()
                .parse()
                .with_context(|| format!("bad value {:?} in {}", current.trim(), memsw.display()))?;
            if bytes > current {
                cgfs::write(&memsw, &value)?;
                cgfs::write(&limit, &value)
            } else {
                cgfs::write(&limit, &value)?;
                cgfs::write(&memsw, &value)
            }
        }
    }
}

/// pids.max; `None` lifts the limit.
pub fn set_pids_limit(dir: &Path, max: Option<u64>) -> Result<()> {
    let file = dir.join("pids.max");
    if !file.is_file() {
        bail!(
            "cgroup {} has no pids controller ({} is missing)",
            dir.display(),
            file.display()
        );
    }
    cgfs::write(&file, &max.map_or_else(|| "max".to_owned(), |n| n.to_string()))
}

/// The `oom_kill` counter of memory.oom_control (Linux 4.13+).
pub fn oom_kills(dir: &Path) -> Result<u64> {
    let file = dir.join("memory.oom_control");
    let content = cgfs::read(&file)?;
    cgfs::keyed_value(&content, "oom_kill")
        .with_context(|| format!("no oom_kill counter in {} (kernel older than 4.13?)", file.display()))
}

fn freezer_state(dir: &Path) -> Result<String> {
    Ok(cgfs::read(&dir.join("freezer.state"))?.trim().to_owned())
}

/// Writes FROZEN to freezer.state until it reads back FROZEN (it passes
/// through FREEZING while tasks are being stopped). On timeout the cgroup is
/// thawed again so it is not left half-frozen.
pub fn freeze(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    let frozen = cgfs::wait_until(FREEZE_TIMEOUT, || {
        cgfs::write(&file, "FROZEN")?;
        Ok(freezer_state(dir)? == "FROZEN")
    })?;
    if !frozen {
        let state = freezer_state(dir).unwrap_or_default();
        let _ = cgfs::write(&file, "THAWED");
        bail!(
            "cgroup {} did not freeze within {FREEZE_TIMEOUT:?} (state {state})",
            dir.display()
        );
    }
    Ok(())
}

pub fn thaw(dir: &Path) -> Result<()> {
    let file = dir.join("freezer.state");
    cgfs::write(&file, "THAWED")?;
    if !cgfs::wait_until(FREEZE_TIMEOUT, || Ok(freezer_state(dir)? == "THAWED"))? {
        bail!("cgroup {} did not thaw within {FREEZE_TIMEOUT:?}", dir.display());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A fake v1 root with the given controllers mounted (each with the files
    /// the kernel has at a hierarchy's root).
    pub fn fake_root(controllers: &[&str]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for ctrl in controllers {
            let m = dir.path().join(ctrl);
            fs::create_dir(&m).unwrap();
            fs::write(m.join("cgroup.procs"), "1\n").unwrap();
            if *ctrl == "cpuset" {
                fs::write(m.join("cpuset.cpus"), "0-1\n").unwrap();
                fs::write(m.join("cpuset.mems"), "0\n").unwrap();
            }
        }
        dir
    }

    #[test]
    fn create_skips_unmounted_controllers_and_fills_cpuset() {
        let root = fake_root(&["memory", "pids", "cpuset"]);
        let mut made = BTreeMap::new();
        create(root.path(), "casco", "abc", &mut made).unwrap();
        let canon = fs::canonicalize(root.path()).unwrap();
        assert_eq!(made.keys().collect::<Vec<_>>(), ["cpuset", "memory", "pids"]);
        assert_eq!(made["memory"], canon.join("memory/casco/abc"));
        assert!(canon.join("pids/casco/abc").is_dir());
        for level in ["cpuset/casco", "cpuset/casco/abc"] {
            assert_eq!(
                fs::read_to_string(canon.join(level).join("cpuset.cpus")).unwrap(),
                "0-1"
            );
            assert_eq!(fs::read_to_string(canon.join(level).join("cpuset.mems")).unwrap(), "0");
        }
        assert!(!canon.join("cpu").exists());
    }

    #[test]
    fn create_keeps_existing_cpuset_values_and_refuses_an_empty_parent() {
        let root = fake_root(&["cpuset"]);
        let parent = root.path().join("cpuset/casco");
        fs::create_dir(&parent).unwrap();
        fs::write(parent.join("cpuset.cpus"), "1\n").unwrap();
        fs::write(parent.join("cpuset.mems"), "0\n").unwrap();
        let mut made = BTreeMap::new();
        create(root.path(), "casco", "one", &mut made).unwrap();
        assert_eq!(fs::read_to_string(made["cpuset"].join("cpuset.cpus")).unwrap(), "1");

        // Nothing to inherit anywhere up the tree.
        fs::write(parent.join("cpuset.mems"), "\n").unwrap();
        fs::write(root.path().join("cpuset/cpuset.mems"), "\n").unwrap();
        let err = create(root.path(), "casco", "two", &mut BTreeMap::new()).unwrap_err();
        assert!(format!("{err:#}").contains("cpuset.mems is empty"), "{err:#}");
    }

    #[test]
    fn co_mounted_controllers_share_one_directory() {
        let root = fake_root(&["cpu,cpuacct"]);
        symlink("cpu,cpuacct", root.path().join("cpu")).unwrap();
        symlink("cpu,cpuacct", root.path().join("cpuacct")).unwrap();
        let mut made = BTreeMap::new();
        create(root.path(), "casco", "abc", &mut made).unwrap();
        assert_eq!(made["cpu"], made["cpuacct"]);
        assert!(made["cpu"].ends_with("cpu,cpuacct/casco/abc"));
    }

    #[test]
    fn memory_limit_orders_writes_against_memsw() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        let err = set_memory_limit(d, 1 << 20).unwrap_err();
        assert!(format!("{err:#}").contains("no memory controller"), "{err:#}");

        // Swap accounting off: only the limit.
        fs::write(d.join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
        set_memory_limit(d, 1 << 20).unwrap();
        assert_eq!(fs::read_to_string(d.join("memory.limit_in_bytes")).unwrap(), "1048576");
        assert!(!d.join("memory.memsw.limit_in_bytes").exists());

        // Lowering and raising both end with limit == memsw.
        fs::write(d.join("memory.memsw.limit_in_bytes"), "9223372036854771712\n").unwrap();
        set_memory_limit(d, 1 << 21).unwrap();
        assert_eq!(
            fs::read_to_string(d.join("memory.memsw.limit_in_bytes")).unwrap(),
            "2097152"
        );
        set_memory_limit(d, 1 << 22).unwrap();
        assert_eq!(fs::read_to_string(d.join("memory.limit_in_bytes")).unwrap(), "4194304");
        assert_eq!(
            fs::read_to_string(d.join("memory.memsw.limit_in_bytes")).unwrap(),
            "4194304"
        );

        fs::write(d.join("memory.memsw.limit_in_bytes"), "junk\n").unwrap();
        assert!(set_memory_limit(d, 1).is_err());
    }

    #[test]
    fn pids_limit_and_oom_counter() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert!(set_pids_limit(d, Some(5)).is_err());
        fs::write(d.join("pids.max"), "max\n").unwrap();
        set_pids_limit(d, Some(5)).unwrap();
        assert_eq!(fs::read_to_string(d.join("pids.max")).unwrap(), "5");
        set_pids_limit(d, None).unwrap();
        assert_eq!(fs::read_to_string(d.join("pids.max")).unwrap(), "max");

        fs::write(
            d.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 1\n",
        )
        .unwrap();
        assert_eq!(oom_kills(d).unwrap(), 1);
        fs::write(d.join("memory.oom_control"), "oom_kill_disable 0\nunder_oom 0\n").unwrap();
        assert!(oom_kills(d).is_err());
    }

    #[test]
    fn freeze_and_thaw_write_freezer_state() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("freezer.state"), "THAWED\n").unwrap();
        freeze(d).unwrap();
        assert_eq!(fs::read_to_string(d.join("freezer.state")).unwrap(), "FROZEN");
        thaw(d).unwrap();
        assert_eq!(fs::read_to_string(d.join("freezer.state")).unwrap(), "THAWED");
    }
}
