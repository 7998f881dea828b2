//! The cgroup v2 driver: one unified hierarchy, controllers switched on per
//! level through cgroup.subtree_control, and the v2 spelling of each control
//! file (memory.max, memory.events, cgroup.freeze, cgroup.kill, ...). Also
//! decides where a rootless container's cgroup may go.

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::files as cgfs;

/// The controllers casco enables for its containers when the parent offers them.
pub const CONTROLLERS: &[&str] = &["cpu", "memory", "pids", "io"];

/// How long freeze/thaw wait for cgroup.events to report the new state.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(2);

/// Makes `HIER/<parent>/<id>` and returns it. Controllers are enabled in
/// cgroup.subtree_control of HIER and of HIER/<parent>, so the leaf gets them;
/// only the leaf ever holds processes, which keeps the "no internal processes"
/// rule (a non-root cgroup with controllers enabled for its children may not
/// hold processes itself). HIER itself is included because its
/// subtree_control decides what HIER/<parent> can offer; on systemd hosts the
/// root has them all on already and nothing is written there.
pub fn create(hier: &Path, parent: &str, id: &str) -> Result<PathBuf> {
    let parent_dir = hier.join(parent);
    enable_controllers(hier);
    cgfs::mkdir(&parent_dir)?;
    enable_controllers(&parent_dir);
    let leaf = parent_dir.join(id);
    cgfs::mkdir(&leaf)?;
    Ok(leaf)
}

/// Enables in `dir`'s cgroup.subtree_control those of [`CONTROLLERS`] that its
/// cgroup.controllers offers and that are not on yet. Best effort: a controller
/// that cannot be enabled (EBUSY in a cgroup that holds processes, EINVAL for
/// cpu next to realtime tasks) is left off, and setting one of its limits
/// later fails with an error naming the missing controller.
fn enable_controllers(dir: &Path) {
    let read_words = |f: &str| cgfs::read_opt(&dir.join(f)).ok().flatten().map(|s| cgfs::words(&s));
    let available = read_words("cgroup.controllers").unwrap_or_default();
    let enabled = read_words("cgroup.subtree_control").unwrap_or_default();
    let wanted: Vec<&str> = CONTROLLERS
        .iter()
        .copied()
        .filter(|c| available.iter().any(|a| a == c) && !enabled.iter().any(|e| e == c))
        .collect();
    if wanted.is_empty() {
        return;
    }
    let file = dir.join("cgroup.subtree_control");
    let all = wanted.iter().map(|c| format!("+{c}")).collect::<Vec<_>>().join(" ");
    if cgfs::write(&file, &all).is_err() {
        // One refusal fails the whole write: retry one by one to keep the rest.
        for c in wanted {
            let _ = cgfs::write(&file, &format!("+{c}"));
        }
    }
}

/// Where a rootless container's cgroup goes, given the content of
/// /proc/self/cgroup and the effective uid: next to our own cgroup when its
/// parent is delegated to us (owned by `uid`, as systemd does for
/// user@UID.service and its children), else inside our own cgroup when that
/// one is delegated, else nowhere (`Ok(None)`). The directory is named
/// `casco-<id>` because it sits among the user's other units. Returns the leaf
/// directory and its path relative to the hierarchy root.
///
/// Moving a process between cgroups needs write access to cgroup.procs of
/// their common ancestor, which is what "delegated" checks.
pub fn create_rootless(root: &Path, self_cgroup: &str, uid: u32, id: &str) -> Result<Option<(PathBuf, String)>> {
    let Some(own) = unified_path(self_cgroup) else {
        return Ok(None);
    };
    let own_rel = Path::new(own.trim_start_matches('/'));
    // A path outside our cgroup namespace shows as "/../.."; the root cgroup
    // belongs to root.
    if own_rel.as_os_str().is_empty() || !own_rel.components().all(|c| matches!(c, Component::Normal(_))) {
        return Ok(None);
    }
    let name = format!("casco-{id}");
    let candidates = [own_rel.parent().filter(|p| !p.as_os_str().is_empty()), Some(own_rel)];
    for rel in candidates.into_iter().flatten() {
        let dir = root.join(rel);
        if !is_delegated(&dir, uid) {
            continue;
        }
        enable_controllers(&dir);
        let leaf = dir.join(&name);
        cgfs::mkdir(&leaf)?;
        return Ok(Some((leaf, format!("/{}/{name}", rel.display()))));
    }
    Ok(None)
}

/// The path of the "0::PATH" line of /proc/self/cgroup (the unified hierarchy).
fn unified_path(self_cgroup: &str) -> Option<&str> {
    self_cgroup.lines().find_map(|l| l.strip_prefix("0::"))
}

/// Whether `uid` owns `dir` and its cgroup.procs, as a delegated subtree does.
fn is_delegated(dir: &Path, uid: u32) -> bool {
    let owned = |p: &Path| fs::metadata(p).is_ok_and(|m| m.uid() == uid);
    owned(dir) && owned(&dir.join("cgroup.procs"))
}

/// The control file `file` of `controller` in `dir`, or an error saying the
/// controller is not enabled there.
fn controller_file(dir: &Path, controller: &str, file: &str) -> Result<PathBuf> {
    let path = dir.join(file);
    if path.is_file() {
        return Ok(path);
    }
    let parent_file = dir.parent().map(|p| p.join("cgroup.subtree_control"));
    let enabled = parent_file
        .as_deref()
        .and_then(|p| cgfs::read_opt(p).ok().flatten())
        .unwrap_or_default();
    bail!(
        "the {controller} controller is not enabled for cgroup {} ({file} is missing; parent enables: {:?})",
        dir.display(),
        enabled.trim()
    )
}

/// memory.max. Swap (memory.swap.max) is left as it is.
pub fn set_memory_limit(dir: &Path, bytes: u64) -> Result<()> {
    cgfs::write(&controller_file(dir, "memory", "memory.max")?, &bytes.to_string())
}

/// pids.max; `None` lifts the limit.
pub fn set_pids_limit(dir: &Path, max: Option<u64>) -> Result<()> {
    let file = controller_file(dir, "pids", "pids.max")?;
    cgfs::write(&file, &max.map_or_else(|| "max".to_owned(), |n| n.to_string()))
}

/// The `oom_kill` counter of memory.events, which counts this cgroup and its
/// descendants. Without the memory controller there is no memory limit and no
/// counter: 0.
pub fn oom_kills(dir: &Path) -> Result<u64> {
    let file = dir.join("memory.events");
    match cgfs::read_opt(&file)? {
        Some(content) => Ok(cgfs::keyed_value(&content, "oom_kill").unwrap_or(0)),
        None if dir.is_dir() => Ok(0),
        None => bail!("cgroup {} does not exist", dir.display()),
    }
}

fn frozen(dir: &Path) -> Result<bool> {
    let content = cgfs::read(&dir.join("cgroup.events"))?;
    Ok(cgfs::keyed_value(&content, "frozen") == Some(1))
}

/// Writes 1 to cgroup.freeze and waits for cgroup.events to say `frozen 1`.
/// On timeout the cgroup is thawed again.
pub fn freeze(dir: &Path) -> Result<()> {
    let file = dir.join("cgroup.freeze");
    cgfs::write(&file, "1")?;
    if !cgfs::wait_until(FREEZE_TIMEOUT, || frozen(dir))? {
        let _ = cgfs::write(&file, "0");
        bail!("cgroup {} did not freeze within {FREEZE_TIMEOUT:?}", dir.display());
    }
    Ok(())
}

pub fn thaw(dir: &Path) -> Result<()> {
    cgfs::write(&dir.join("cgroup.freeze"), "0")?;
    if !cgfs::wait_until(FREEZE_TIMEOUT, || Ok(!frozen(dir)?))? {
        bail!("cgroup {} did not thaw within {FREEZE_TIMEOUT:?}", dir.display());
    }
    Ok(())
}

/// SIGKILLs every process in `dir` and its descendants at once through
/// cgroup.kill (Linux 5.14+). Returns false when the kernel has no cgroup.kill.
pub fn kill(dir: &Path) -> Result<bool> {
    let file = dir.join("cgroup.kill");
    if !file.is_file() {
        return Ok(false);
    }
    cgfs::write(&file, "1").context("kill the cgroup's processes")?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake_root(controllers: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("cgroup.controllers"), controllers).unwrap();
        fs::write(dir.path().join("cgroup.subtree_control"), "").unwrap();
        fs::write(dir.path().join("cgroup.procs"), "1\n").unwrap();
        dir
    }

    fn owner(p: &Path) -> u32 {
        fs::metadata(p).unwrap().uid()
    }

    #[test]
    fn create_enables_offered_controllers_at_each_level() {
        let root = fake_root("cpuset cpu io memory hugetlb pids rdma\n");
        // The shared parent exists already, as after the first container.
        let parent = root.path().join("casco");
        fs::create_dir(&parent).unwrap();
        fs::write(parent.join("cgroup.controllers"), "cpu memory pids\n").unwrap();
        fs::write(parent.join("cgroup.subtree_control"), "memory\n").unwrap();

        let leaf = create(root.path(), "casco", "abc").unwrap();
        assert_eq!(leaf, parent.join("abc"));
        assert!(leaf.is_dir());
        let root_enabled = fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap();
        assert_eq!(root_enabled, "+cpu +memory +pids +io");
        let parent_enabled = fs::read_to_string(parent.join("cgroup.subtree_control")).unwrap();
        assert_eq!(parent_enabled, "+cpu +pids");
    }

    #[test]
    fn create_writes_nothing_when_nothing_is_offered() {
        // Hybrid: the unified hierarchy offers only hugetlb.
        let root = fake_root("hugetlb\n");
        let leaf = create(root.path(), "casco", "abc").unwrap();
        assert!(leaf.is_dir());
        assert_eq!(
            fs::read_to_string(root.path().join("cgroup.subtree_control")).unwrap(),
            ""
        );
    }

    /// A tree with /user.slice/user@U.service/app.slice/term.scope where we run.
    fn rootless_tree() -> (tempfile::TempDir, &'static str) {
        let root = fake_root("cpu memory pids io\n");
        let app = root.path().join("user.slice/user@1000.service/app.slice");
        fs::create_dir_all(app.join("term.scope")).unwrap();
        for d in [app.clone(), app.join("term.scope")] {
            fs::write(d.join("cgroup.procs"), "").unwrap();
            fs::write(d.join("cgroup.controllers"), "memory pids\n").unwrap();
            fs::write(d.join("cgroup.subtree_control"), "").unwrap();
        }
        (root, "0::/user.slice/user@1000.service/app.slice/term.scope\n")
    }

    #[test]
    fn rootless_goes_next_to_our_own_cgroup_when_its_parent_is_delegated() {
        let (root, self_cgroup) = rootless_tree();
        let uid = owner(root.path());
        let (leaf, rel) = create_rootless(root.path(), self_cgroup, uid, "abc").unwrap().unwrap();
        assert_eq!(rel, "/user.slice/user@1000.service/app.slice/casco-abc");
        assert_eq!(leaf, root.path().join(rel.trim_start_matches('/')));
        assert!(leaf.is_dir());
        let app = root.path().join("user.slice/user@1000.service/app.slice");
        assert_eq!(
            fs::read_to_string(app.join("cgroup.subtree_control")).unwrap(),
            "+memory +pids"
        );
    }

    #[test]
    fn rootless_without_delegation_gets_no_cgroup() {
        let (root, self_cgroup) = rootless_tree();
        let other = owner(root.path()).wrapping_add(1);
        assert!(
            create_rootless(root.path(), self_cgroup, other, "abc")
                .unwrap()
                .is_none()
        );
        assert!(
            !root
                .path()
                .join("user.slice/user@1000.service/app.slice/casco-abc")
                .exists()
        );
    }

    #[test]
    fn rootless_falls_back_to_a_child_of_our_own_cgroup() {
        let (root, self_cgroup) = rootless_tree();
        let uid = owner(root.path());
        // Our cgroup's parent is not delegated (no cgroup.procs of ours there).
        fs::remove_file(root.path().join("user.slice/user@1000.service/app.slice/cgroup.procs")).unwrap();
        let (leaf, rel) = create_rootless(root.path(), self_cgroup, uid, "abc").unwrap().unwrap();
        assert_eq!(rel, "/user.slice/user@1000.service/app.slice/term.scope/casco-abc");
        assert!(leaf.is_dir());
    }

    #[test]
    fn rootless_refuses_the_root_and_paths_outside_our_namespace() {
        let root = fake_root("memory\n");
        let uid = owner(root.path());
        for self_cgroup in ["0::/\n", "0::/../..\n", "1:memory:/x\n", ""] {
            assert!(
                create_rootless(root.path(), self_cgroup, uid, "abc").unwrap().is_none(),
                "{self_cgroup:?}"
            );
        }
        assert_eq!(fs::read_dir(root.path()).unwrap().count(), 3);
    }

    #[test]
    fn limits_need_their_controller() {
        let root = fake_root("memory pids\n");
        let leaf = create(root.path(), "casco", "abc").unwrap();
        let err = set_memory_limit(&leaf, 1 << 20).unwrap_err();
        assert!(
            format!("{err:#}").contains("memory controller is not enabled"),
            "{err:#}"
        );
        fs::write(leaf.join("memory.max"), "max\n").unwrap();
        fs::write(leaf.join("pids.max"), "max\n").unwrap();
        set_memory_limit(&leaf, 1 << 20).unwrap();
        set_pids_limit(&leaf, Some(10)).unwrap();
        assert_eq!(fs::read_to_string(leaf.join("memory.max")).unwrap(), "1048576");
        assert_eq!(fs::read_to_string(leaf.join("pids.max")).unwrap(), "10");
        set_pids_limit(&leaf, None).unwrap();
        assert_eq!(fs::read_to_string(leaf.join("pids.max")).unwrap(), "max");
    }

    #[test]
    fn oom_kills_reads_memory_events() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        assert_eq!(oom_kills(d).unwrap(), 0);
        fs::write(
            d.join("memory.events"),
            "low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(oom_kills(d).unwrap(), 2);
        assert!(oom_kills(&d.join("gone")).is_err());
    }

    #[test]
    fn freeze_waits_for_cgroup_events() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        fs::write(d.join("cgroup.freeze"), "0\n").unwrap();
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 1\n").unwrap();
        freeze(d).unwrap();
        assert_eq!(fs::read_to_string(d.join("cgroup.freeze")).unwrap(), "1");
        // The fake still says frozen: thaw must time out and say so.
        let err = thaw(d).unwrap_err();
        assert!(format!("{err:#}").contains("did not thaw"), "{err:#}");
        fs::write(d.join("cgroup.events"), "populated 1\nfrozen 0\n").unwrap();
        thaw(d).unwrap();
        assert_eq!(fs::read_to_string(d.join("cgroup.freeze")).unwrap(), "0");
    }

    #[test]
    fn kill_uses_cgroup_kill_only_when_present() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!kill(dir.path()).unwrap());
        fs::write(dir.path().join("cgroup.kill"), "").unwrap();
        assert!(kill(dir.path()).unwrap());
        assert_eq!(fs::read_to_string(dir.path().join("cgroup.kill")).unwrap(), "1");
    }
}
