//! Tests of the cgroup manager: on fake trees in temp directories for all
//! three layouts, and on the real /sys/fs/cgroup (those need root and fail,
//! not skip, without it).

use std::fs;
use std::io::Write as _;
use std::os::unix::fs::symlink;
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};

use super::*;

/// A fake v1 hierarchy root for each controller, with the files the kernel
/// has at a hierarchy's root.
fn fake_v1(root: &Path, controllers: &[&str]) {
    for ctrl in controllers {
        let m = root.join(ctrl);
        fs::create_dir_all(&m).unwrap();
        fs::write(m.join("cgroup.procs"), "1\n").unwrap();
        if ctrl.contains("cpuset") {
            fs::write(m.join("cpuset.cpus"), "0-3\n").unwrap();
            fs::write(m.join("cpuset.mems"), "0\n").unwrap();
        }
    }
}

fn fake_v2(dir: &Path, controllers: &str) {
    fs::create_dir_all(dir).unwrap();
    fs::write(dir.join("cgroup.controllers"), controllers).unwrap();
    fs::write(dir.join("cgroup.subtree_control"), "").unwrap();
    fs::write(dir.join("cgroup.procs"), "1\n").unwrap();
}

fn read(p: &Path) -> String {
    fs::read_to_string(p).unwrap_or_else(|e| panic!("read {}: {e}", p.display()))
}

#[test]
fn ids_must_be_one_path_component() {
    for bad in ["", ".", "..", "a/b", "/abs", "../up", "nul\0", &"x".repeat(201)] {
        assert!(validate_id(bad).is_err(), "{bad:?} accepted");
    }
    for good in ["abc", "a..b", &crate::util::ids::random_id()] {
        validate_id(good).unwrap();
    }
}

#[test]
fn bad_ids_make_nothing() {
    let dir = tempfile::tempdir().unwrap();
    fake_v1(dir.path(), &["memory"]);
    let m = Manager::new(dir.path(), Layout::Legacy);
    for bad in ["..", "a/b", ""] {
        assert!(m.create(bad, false, true).is_err());
    }
    assert_eq!(fs::read_dir(dir.path().join("memory")).unwrap().count(), 1);
}

#[test]
fn version_names_follow_podman() {
    assert_eq!(version_name(Layout::Unified), "v2");
    assert_eq!(version_name(Layout::Hybrid), "v1");
    assert_eq!(version_name(Layout::Legacy), "v1");
}

/// The layout /proc/self/mountinfo describes for /sys/fs/cgroup.
fn layout_from_mountinfo() -> Layout {
    let info = read(Path::new("/proc/self/mountinfo"));
    let fstype = |mount_point: &str| {
        info.lines().rev().find_map(|l| {
            let fields: Vec<&str> = l.split(' ').collect();
            let sep = fields.iter().position(|f| *f == "-")?;
            (fields.get(4) == Some(&mount_point)).then(|| fields[sep + 1].to_owned())
        })
    };
    match fstype(DEFAULT_ROOT).as_deref() {
        Some("cgroup2") => Layout::Unified,
        Some("tmpfs") if fstype("/sys/fs/cgroup/unified").as_deref() == Some("cgroup2") => Layout::Hybrid,
        _ => Layout::Legacy,
    }
}

#[test]
fn detect_matches_the_mount_table() {
    assert_eq!(detect(Path::new(DEFAULT_ROOT)).unwrap(), layout_from_mountinfo());
    let dir = tempfile::tempdir().unwrap();
    fs::create_dir(dir.path().join("unified")).unwrap();
    assert_eq!(detect(dir.path()).unwrap(), Layout::Legacy);
    assert!(detect(&dir.path().join("missing")).is_err());
}

#[test]
fn legacy_create_use_and_remove() {
    let dir = tempfile::tempdir().unwrap();
    fake_v1(dir.path(), &["memory", "pids", "freezer", "cpu,cpuacct", "cpuset"]);
    symlink("cpu,cpuacct", dir.path().join("cpu")).unwrap();
    symlink("cpu,cpuacct", dir.path().join("cpuacct")).unwrap();
    let root = fs::canonicalize(dir.path()).unwrap();
    let m = Manager::new(dir.path(), Layout::Legacy);

    assert!(
        m.create("abc", true, true).unwrap().is_none(),
        "rootless v1 gets no cgroup"
    );
    assert!(!root.join("memory/casco").exists());

    let cg = m.create("abc", false, true).unwrap().unwrap();
    assert_eq!(cg.relative_path(), "/casco/abc");
    assert_eq!(cg.paths().layout, Layout::Legacy);
    assert!(cg.paths().unified.is_none());
    let mut procs = cg.procs_files();
    procs.sort();
    let expected: Vec<_> = ["cpu,cpuacct", "cpuset", "freezer", "memory", "pids"]
        .iter()
        .map(|c| root.join(c).join("casco/abc/cgroup.procs"))
        .collect();
    assert_eq!(procs, expected, "one procs file per hierarchy");

    // Files the kernel would have made in the new cgroup.
    let leaf = |c: &str| root.join(c).join("casco/abc");
    for f in cg.procs_files() {
        fs::write(f, "").unwrap();
    }
    fs::write(leaf("memory").join("memory.limit_in_bytes"), "9223372036854771712\n").unwrap();
    fs::write(
        leaf("memory").join("memory.oom_control"),
        "oom_kill_disable 0\nunder_oom 0\noom_kill 0\n",
    )
    .unwrap();
    fs::write(leaf("pids").join("pids.max"), "max\n").unwrap();
    fs::write(leaf("freezer").join("freezer.state"), "THAWED\n").unwrap();

    cg.apply(&Resources {
        memory: Some(64 << 20),
        pids: Some(100),
    })
    .unwrap();
    assert_eq!(read(&leaf("memory").join("memory.limit_in_bytes")), "67108864");
    assert_eq!(read(&leaf("pids").join("pids.max")), "100");
    cg.set_pids_limit(-1).unwrap();
    assert_eq!(read(&leaf("pids").join("pids.max")), "max");
    assert_eq!(cg.oom_kills().unwrap(), 0);

    cg.add_pid(4242).unwrap();
    for f in cg.procs_files() {
        assert_eq!(read(&f), "4242");
    }
    fs::write(leaf("memory").join("cgroup.procs"), "999\n").unwrap();
    assert_eq!(cg.pids().unwrap(), vec![4242], "pids come from the pids hierarchy");
    fs::write(leaf("pids").join("cgroup.procs"), "").unwrap();
    cg.kill_all().unwrap();

    cg.freeze().unwrap();
    assert_eq!(read(&leaf("freezer").join("freezer.state")), "FROZEN");
    cg.thaw().unwrap();

    // A second cgroup with no files written into it can be removed (a fake
    // directory holding files cannot, unlike cgroupfs).
    let fake_dirs = tempfile::tempdir().unwrap();
    fake_v1(fake_dirs.path(), &["memory", "pids"]);
    let other = Manager::new(fake_dirs.path(), Layout::Legacy)
        .create("gone", false, true)
        .unwrap()
        .unwrap();
    other.remove().unwrap();
    for d in other.paths().controllers.values() {
        assert!(!d.exists(), "{} left behind", d.display());
    }
    other.remove().unwrap();
    assert_eq!(other.pids().unwrap(), Vec::<i32>::new());
}

#[test]
fn failed_create_removes_what_it_made() {
    let dir = tempfile::tempdir().unwrap();
    fake_v1(dir.path(), &["memory", "pids", "cpuset"]);
    fs::write(dir.path().join("cpuset/cpuset.cpus"), "\n").unwrap();
    let err = Manager::new(dir.path(), Layout::Legacy)
        .create("abc", false, true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("cpuset.cpus is empty"), "{err:#}");
    assert!(format!("{err:#}").contains("/casco/abc"), "{err:#}");
    assert!(!dir.path().join("memory/casco/abc").exists());
    assert!(!dir.path().join("pids/casco/abc").exists());
}

#[test]
fn nothing_mounted_is_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let err = Manager::new(dir.path(), Layout::Legacy)
        .create("abc", false, true)
        .unwrap_err();
    assert!(format!("{err:#}").contains("no cgroup controllers"), "{err:#}");
}

#[test]
fn hybrid_joins_v1_and_the_unified_hierarchy() {
    let dir = tempfile::tempdir().unwrap();
    fake_v1(dir.path(), &["memory", "pids", "freezer"]);
    fake_v2(&dir.path().join("unified"), "hugetlb\n");
    let root = fs::canonicalize(dir.path()).unwrap();
    let m = Manager::new(dir.path(), Layout::Hybrid);
    assert!(
        m.create("abc", true, true).unwrap().is_none(),
        "rootless hybrid gets no cgroup"
    );

    let cg = m.create("abc", false, true).unwrap().unwrap();
    let unified = dir.path().join("unified/casco/abc");
    assert_eq!(cg.paths().unified.as_deref(), Some(unified.as_path()));
    assert!(cg.procs_files().contains(&unified.join("cgroup.procs")));
    assert_eq!(cg.procs_files().len(), 4);
    assert_eq!(read(&dir.path().join("unified/cgroup.subtree_control")), "");

    // Limits and the OOM counter are v1; cgroup.kill is used where present.
    fs::write(root.join("memory/casco/abc/memory.limit_in_bytes"), "0\n").unwrap();
    cg.set_memory_limit(1 << 20).unwrap();
    assert_eq!(read(&root.join("memory/casco/abc/memory.limit_in_bytes")), "1048576");
    assert!(
        cg.set_pids_limit(5).is_err(),
        "no pids.max in the fake: the error must surface"
    );
    fs::write(root.join("memory/casco/abc/memory.oom_control"), "oom_kill 3\n").unwrap();
    assert_eq!(cg.oom_kills().unwrap(), 3);
    fs::write(unified.join("cgroup.kill"), "").unwrap();
    cg.kill_all().unwrap();
    assert_eq!(read(&unified.join("cgroup.kill")), "1");

    // Freezing prefers the v1 freezer.
    fs::write(root.join("freezer/casco/abc/freezer.state"), "THAWED\n").unwrap();
    cg.freeze().unwrap();
    assert_eq!(read(&root.join("freezer/casco/abc/freezer.state")), "FROZEN");
}

#[test]
fn unified_create_and_open_from_record() {
    let dir = tempfile::tempdir().unwrap();
    fake_v2(dir.path(), "cpuset cpu io memory hugetlb pids\n");
    let m = Manager::new(dir.path(), Layout::Unified);
    let cg = m.create("abc", false, true).unwrap().unwrap();
    let leaf = dir.path().join("casco/abc");
    assert_eq!(cg.paths().unified.as_deref(), Some(leaf.as_path()));
    assert!(cg.paths().controllers.is_empty());
    assert_eq!(cg.procs_files(), vec![leaf.join("cgroup.procs")]);
    assert_eq!(
        read(&dir.path().join("cgroup.subtree_control")),
        "+cpu +memory +pids +io"
    );
    assert_eq!(cg.oom_kills().unwrap(), 0);

    // The record survives JSON and re-opens the same cgroup.
    let json = serde_json::to_string(cg.paths()).unwrap();
    assert!(json.contains("\"layout\":\"unified\""), "{json}");
    assert!(!json.contains("controllers"), "{json}");
    let back: CgroupPaths = serde_json::from_str(&json).unwrap();
    let reopened = m.open(&back);
    assert_eq!(reopened.paths(), cg.paths());
    assert_eq!(reopened.relative_path(), "/casco/abc");

    assert_eq!(reopened.pids().unwrap(), Vec::<i32>::new());
    reopened.remove().unwrap();
    assert!(!leaf.exists());
    assert!(dir.path().join("casco").is_dir(), "the shared parent stays");
    cg.remove().unwrap();
}

#[test]
fn unified_rootless_uses_the_delegated_subtree() {
    let dir = tempfile::tempdir().unwrap();
    fake_v2(dir.path(), "cpu io memory pids\n");
    let service = dir.path().join("user.slice/user-1000.slice/user@1000.service");
    fake_v2(&service, "cpu memory pids\n");
    fake_v2(&service.join("init.scope"), "");
    let self_cgroup = dir.path().join("self-cgroup");
    fs::write(
        &self_cgroup,
        "0::/user.slice/user-1000.slice/user@1000.service/init.scope\n",
    )
    .unwrap();
    let uid = std::os::unix::fs::MetadataExt::uid(&fs::metadata(dir.path()).unwrap());

    let m = Manager::new(dir.path(), Layout::Unified).with_process(&self_cgroup, uid);
    let cg = m.create("abc", true, true).unwrap().unwrap();
    assert_eq!(
        cg.relative_path(),
        "/user.slice/user-1000.slice/user@1000.service/casco-abc"
    );
    assert!(service.join("casco-abc").is_dir());
    assert_eq!(read(&service.join("cgroup.subtree_control")), "+cpu +memory +pids");
    assert_eq!(
        read(&dir.path().join("cgroup.subtree_control")),
        "",
        "the root is not ours to change"
    );

    let stranger = Manager::new(dir.path(), Layout::Unified).with_process(&self_cgroup, uid.wrapping_add(1));
    assert!(stranger.create("def", true, true).unwrap().is_none());
    assert!(!service.join("casco-def").exists());

    let missing = Manager::new(dir.path(), Layout::Unified).with_process(&dir.path().join("nope"), uid);
    assert!(missing.create("ghi", true, true).is_err());
}

// ---- Real /sys/fs/cgroup (root only) ----

fn require_root() {
    assert!(
        crate::sys::geteuid() == 0,
        "this test needs root: it creates cgroups under /sys/fs/cgroup (run the tests as root)"
    );
}

/// Kills and reaps the child and removes the cgroup however the test ends.
struct Cleanup {
    cgroup: Option<Cgroup>,
    child: Option<Child>,
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
        if let Some(cg) = &self.cgroup {
            let _ = cg.kill_all();
            let _ = cg.remove();
        }
    }
}

fn unique_id(what: &str) -> String {
    let mut r = [0u8; 4];
    crate::sys::random_bytes(&mut r);
    format!("test-{what}-{}-{}", std::process::id(), crate::util::ids::hex(&r))
}

/// Creates a real cgroup and starts `sh -c SCRIPT` in it; the script should
/// begin with `read _` so that it does nothing before it is in the cgroup.
fn start_in_cgroup(what: &str, script: &str, resources: &Resources) -> Cleanup {
    require_root();
    let m = Manager::system().unwrap();
    let mut guard = Cleanup {
        cgroup: None,
        child: None,
    };
    guard.cgroup = Some(
        m.create(&unique_id(what), false, true)
            .unwrap()
            .expect("rootful always gets a cgroup"),
    );
    let cg = guard.cgroup.as_ref().unwrap();
    cg.apply(resources).unwrap();
    let child = Command::new("/bin/sh")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    guard.child = Some(child);
    let child = guard.child.as_mut().unwrap();
    cg.add_pid(child.id() as i32).unwrap();
    guard
}

fn release(guard: &mut Cleanup) {
    let stdin = guard.child.as_mut().unwrap().stdin.take();
    stdin.unwrap().write_all(b"go\n").unwrap();
}

#[test]
fn real_cgroup_lifecycle() {
    let mut guard = start_in_cgroup("life", "read _; exec sleep 30", &Resources::default());
    let cg = guard.cgroup.clone().unwrap();
    let pid = guard.child.as_ref().unwrap().id() as i32;
    release(&mut guard);

    assert_eq!(cg.pids().unwrap(), vec![pid]);
    for f in cg.procs_files() {
        assert_eq!(read(&f).trim(), pid.to_string(), "{}", f.display());
    }
    let proc_cgroup = read(Path::new(&format!("/proc/{pid}/cgroup")));
    assert!(proc_cgroup.contains(&cg.relative_path()), "{proc_cgroup}");

    cg.set_memory_limit(64 << 20).unwrap();
    cg.set_pids_limit(16).unwrap();
    let (mem_file, pids_file) = match &cg.paths().unified {
        Some(d) if cg.paths().layout == Layout::Unified => (d.join("memory.max"), d.join("pids.max")),
        _ => (
            cg.paths().controllers["memory"].join("memory.limit_in_bytes"),
            cg.paths().controllers["pids"].join("pids.max"),
        ),
    };
    assert_eq!(read(&mem_file).trim(), "67108864");
    assert_eq!(read(&pids_file).trim(), "16");

    cg.freeze().unwrap();
    cg.thaw().unwrap();

    cg.kill_all().unwrap();
    assert_eq!(cg.pids().unwrap(), Vec::<i32>::new());
    let status = guard.child.take().unwrap().wait().unwrap();
    assert_eq!(status.signal(), Some(9), "{status:?}");
    cg.remove().unwrap();
    for f in cg.procs_files() {
        assert!(!f.parent().unwrap().exists(), "{} left behind", f.display());
    }
    cg.remove().unwrap();
    guard.cgroup = None;
}

#[test]
fn real_oom_kill_is_counted() {
    // `tail` keeps a line in memory until it ends, and /dev/zero has no newline.
    let mut guard = start_in_cgroup(
        "oom",
        "read _; head -c 512M /dev/zero | tail",
        &Resources {
            memory: Some(32 << 20),
            pids: None,
        },
    );
    let cg = guard.cgroup.clone().unwrap();
    let swap = cg.paths().unified.as_ref().map(|d| d.join("memory.swap.max"));
    if let Some(swap) = swap.filter(|s| s.exists()) {
        // The limit leaves swap alone; keep the test from swapping instead of dying.
        fs::write(&swap, "0").unwrap();
    }
    assert_eq!(cg.oom_kills().unwrap(), 0);
    release(&mut guard);
    let status = guard.child.take().unwrap().wait().unwrap();
    // The OOM killer picks `tail` as a rule, but under memory pressure the kernel may also take
    // the shell: either way something in the group died of SIGKILL.
    let killed = status.code() == Some(137) || status.signal() == Some(9);
    assert!(killed, "tail or its shell should die of SIGKILL: {status:?}");
    assert!(cg.oom_kills().unwrap() >= 1);
    cg.kill_all().unwrap();
    cg.remove().unwrap();
    guard.cgroup = None;
}

#[test]
fn real_pids_limit_stops_forks() {
    let mut guard = start_in_cgroup(
        "pids",
        "read _; for i in 1 2 3 4 5 6; do sleep 5 & done; wait",
        &Resources {
            memory: None,
            pids: Some(3),
        },
    );
    let cg = guard.cgroup.clone().unwrap();
    release(&mut guard);
    let pids_dir = match (&cg.paths().unified, cg.paths().layout) {
        (Some(d), Layout::Unified) => d.clone(),
        _ => cg.paths().controllers["pids"].clone(),
    };
    let refused = files::wait_until(Duration::from_secs(5), || {
        Ok(files::keyed_value(&files::read(&pids_dir.join("pids.events"))?, "max").unwrap_or(0) > 0)
    })
    .unwrap();
    assert!(refused, "pids.events never counted a refused fork");
    assert!(cg.pids().unwrap().len() <= 3);
    cg.kill_all().unwrap();
    guard.child.take().unwrap().wait().unwrap();
    cg.remove().unwrap();
    guard.cgroup = None;
}

#[test]
fn without_controllers_hybrid_gets_only_the_unified_node_and_legacy_none() {
    let dir = tempfile::tempdir().unwrap();
    fake_v1(dir.path(), &["memory", "pids", "freezer"]);
    fake_v2(&dir.path().join("unified"), "hugetlb\n");
    let m = Manager::new(dir.path(), Layout::Hybrid);
    let cg = m.create("lean", false, false).unwrap().unwrap();
    assert!(cg.v1_procs_files().is_empty(), "no v1 hierarchy joined");
    assert!(
        cg.v2_dir().is_some_and(|d| d.ends_with("unified/casco/lean")),
        "{:?}",
        cg.v2_dir()
    );
    let legacy = tempfile::tempdir().unwrap();
    let m = Manager::new(legacy.path(), Layout::Legacy);
    assert!(m.create("lean", false, false).unwrap().is_none());
}
