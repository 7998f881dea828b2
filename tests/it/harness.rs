//! Tests of the harness itself (tests/it/common): the parts that do not need
//! any casco verb, so they pass before the verbs exist.

use std::collections::BTreeMap;
use std::fs;
use std::io::Read;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;

use crate::common::*;

#[test]
fn casco_bin_is_executable_by_everyone() {
    let bin = casco_bin();
    let meta = fs::metadata(bin).unwrap();
    assert_eq!(meta.permissions().mode() & 0o777, 0o755, "{}", bin.display());
    // Every directory on the way must be searchable by others.
    let mut dir = bin.parent();
    while let Some(d) = dir {
        let mode = fs::metadata(d).unwrap().permissions().mode();
        assert!(
            mode & 0o001 != 0,
            "{} is not searchable by others (mode {mode:o})",
            d.display()
        );
        dir = d.parent();
    }
    // The copy is the binary cargo built (or the one CASCO_IT_BINARY names).
    let built = fs::read(casco_source()).unwrap();
    assert!(
        fs::read(bin).unwrap() == built,
        "{} differs from the built binary",
        bin.display()
    );
}

#[test]
fn casco_version_runs_as_root() {
    let env = TestEnv::root();
    let out = env.casco(["--version"]).run().success();
    assert!(
        out.stdout.starts_with("casco "),
        "{}",
        out.report("expected `casco VERSION`")
    );
}

#[test]
fn casco_version_runs_as_the_test_user() {
    let env = TestEnv::rootless();
    let out = env.casco(["--version"]).run().success();
    assert!(
        out.stdout.starts_with("casco "),
        "{}",
        out.report("expected `casco VERSION`")
    );
}

/// Every entry of the busybox tarball, by path: (type, mode, uid, gid, link target).
fn tar_index() -> BTreeMap<String, (tar::EntryType, u32, u64, u64, Option<String>)> {
    let file = fs::File::open(busybox_tar()).unwrap();
    let mut archive = tar::Archive::new(file);
    let mut index = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        let link = entry.link_name().unwrap().map(|l| l.to_string_lossy().into_owned());
        let old = index.insert(
            path.clone(),
            (
                h.entry_type(),
                h.mode().unwrap(),
                h.uid().unwrap(),
                h.gid().unwrap(),
                link,
            ),
        );
        assert!(old.is_none(), "{path} appears twice in the tarball");
    }
    index
}

#[test]
fn busybox_tar_has_the_promised_layout() {
    let tar = busybox_tar();
    assert_eq!(fs::metadata(tar).unwrap().permissions().mode() & 0o777, 0o644);
    let index = tar_index();
    let (kind, mode, uid, gid, _) = &index["bin/busybox"];
    assert!(kind.is_file());
    assert_eq!((*mode, *uid, *gid), (0o755, 0, 0));
    for applet in ["sh", "ls", "cat", "id", "sleep", "env", "stty", "tty", "ps", "hostname"] {
        let (kind, _, _, _, link) = &index[&format!("bin/{applet}")];
        assert!(kind.is_symlink(), "bin/{applet} is not a symlink");
        assert_eq!(link.as_deref(), Some("busybox"), "bin/{applet}");
    }
    let dir = |p: &str| {
        let (kind, mode, uid, gid, _) = &index[p];
        assert!(kind.is_dir(), "{p} is not a directory");
        (*mode, *uid, *gid)
    };
    assert_eq!(dir("tmp/"), (0o1777, 0, 0));
    assert_eq!(dir("root/"), (0o700, 0, 0));
    assert_eq!(dir("home/tester/"), (0o755, 1000, 1000));
    for d in ["bin/", "etc/", "home/", "proc/", "sys/", "dev/"] {
        assert_eq!(dir(d), (0o755, 0, 0), "{d}");
    }
    // Only home/tester belongs to anyone but root.
    for (path, (_, _, uid, gid, _)) in &index {
        if path != "home/tester/" {
            assert_eq!((*uid, *gid), (0, 0), "{path}");
        }
    }
}

#[test]
fn busybox_tar_has_passwd_and_group() {
    let file = fs::File::open(busybox_tar()).unwrap();
    let mut archive = tar::Archive::new(file);
    let mut files = BTreeMap::new();
    for entry in archive.entries().unwrap() {
        let mut entry = entry.unwrap();
        let path = entry.path().unwrap().to_string_lossy().into_owned();
        if path.starts_with("etc/") && entry.header().entry_type().is_file() {
            let mut s = String::new();
            entry.read_to_string(&mut s).unwrap();
            files.insert(path, s);
        }
    }
    let passwd = &files["etc/passwd"];
    assert!(passwd.lines().any(|l| l == "root:x:0:0:root:/root:/bin/sh"), "{passwd}");
    assert!(
        passwd.lines().any(|l| l.starts_with("nobody:x:65534:65534:")),
        "{passwd}"
    );
    assert!(
        passwd.lines().any(|l| l == "tester:x:1000:1000::/home/tester:/bin/sh"),
        "{passwd}"
    );
    let group = &files["etc/group"];
    for g in ["root:x:0:", "wheel:x:10:tester", "tester:x:1000:", "nogroup:x:65534:"] {
        assert!(group.lines().any(|l| l == g), "{g} missing from etc/group:\n{group}");
    }
    assert!(
        !files.contains_key("etc/hostname"),
        "the image must not bring its own etc/hostname"
    );
}

#[test]
fn busybox_tar_is_the_same_every_time() {
    // Fixed mtimes and order: the layer digest of an import is predictable.
    let digest = sha256_file(busybox_tar());
    let tmp = tempfile::tempdir().unwrap();
    let again = tmp.path().join("again.tar");
    build_busybox_tar(&again);
    assert_eq!(sha256_file(&again), digest);
    assert!(digest.starts_with("sha256:") && is_hex(&digest[7..], 64), "{digest}");
}

#[test]
fn busybox_from_the_tarball_runs_a_shell() {
    // The extracted busybox must be static and its sh applet reachable by name.
    let tmp = tempfile::tempdir().unwrap();
    let mut archive = tar::Archive::new(fs::File::open(busybox_tar()).unwrap());
    archive.set_preserve_ownerships(false);
    archive.unpack(tmp.path()).unwrap();
    let sh = tmp.path().join("bin/sh");
    let out = Command::new(&sh).args(["-c", "echo $((6 * 7))"]).output().unwrap();
    assert!(out.status.success(), "{}: {:?}", sh.display(), out);
    assert_eq!(String::from_utf8_lossy(&out.stdout), "42\n");
}

#[test]
fn root_commands_run_as_root_with_a_clean_environment() {
    let env = TestEnv::root();
    let out = env
        .host("sh", ["-c", "id -u; echo \"$HOME\"; pwd; env | sort"])
        .run()
        .success();
    let lines = out.lines();
    assert_eq!(lines[0], "0");
    assert_eq!(lines[1], env.home().to_str().unwrap());
    assert_eq!(lines[2], env.dir().to_str().unwrap());
    let vars: Vec<&str> = lines[3..].iter().map(|l| l.split('=').next().unwrap()).collect();
    for v in &vars {
        assert!(
            ["HOME", "LANG", "PATH", "PWD", "SHLVL", "_", "RUST_BACKTRACE", "OLDPWD"].contains(v),
            "unexpected variable {v} leaked into the environment:\n{}",
            out.stdout
        );
    }
}

#[test]
fn rootless_commands_run_as_the_test_user() {
    let env = TestEnv::rootless();
    let user = test_user().unwrap();
    let out = env
        .host(
            "sh",
            [
                "-c",
                "id -u; id -g; echo \"$HOME\"; echo \"$XDG_RUNTIME_DIR\"; echo \"${XDG_DATA_HOME-unset}\"",
            ],
        )
        .run()
        .success();
    assert_eq!(
        out.lines(),
        [
            user.uid.to_string().as_str(),
            &user.gid.to_string(),
            env.home().to_str().unwrap(),
            &format!("/run/user/{}", user.uid),
            "unset"
        ]
    );
    assert_ne!(user.uid, 0);
    // The user owns the store, the run root and the home it is given.
    for p in [env.dir().to_path_buf(), env.store_root(), env.run_root(), env.home()] {
        assert_eq!(fs::metadata(&p).unwrap().uid(), user.uid, "{}", p.display());
    }
    let made = env.mkdir("a/b");
    assert_eq!(fs::metadata(&made).unwrap().uid(), user.uid);
    assert_eq!(fs::metadata(made.parent().unwrap()).unwrap().uid(), user.uid);
    env.host("touch", [made.join("f")]).run().success();
}

#[test]
fn test_user_has_subordinate_ids() {
    // Rootless containers map 65536 IDs; newuidmap needs these ranges.
    let user = test_user().expect("rootless tests need the casco-test user: run `bash .ci/setup`");
    for file in ["/etc/subuid", "/etc/subgid"] {
        let (start, count) =
            subid_range(file, &user).unwrap_or_else(|| panic!("{file} has no range for {}", user.name));
        assert!(count >= 65536, "{file}: {}:{start}:{count} is too small", user.name);
    }
}

#[test]
fn exit_status_and_output_are_captured() {
    let env = TestEnv::root();
    let out = env.host("sh", ["-c", "echo out; echo err >&2; exit 3"]).run().code(3);
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
    // Death by signal N reads as 128+N, as in a shell.
    env.host("sh", ["-c", "kill -9 $$"]).run().code(137);
    let out = env.host("cat", Vec::<&str>::new()).stdin("piped in").run().success();
    assert_eq!(out.stdout, "piped in");
    let out = env
        .host("sh", ["-c", "echo \"$GREETING\""])
        .env("GREETING", "hi")
        .run()
        .success();
    assert_eq!(out.stdout_trim(), "hi");
}

#[test]
fn success_panics_with_a_report() {
    let env = TestEnv::root();
    let failed = std::panic::catch_unwind(|| env.host("sh", ["-c", "echo why >&2; exit 1"]).run().success())
        .expect_err("success() must panic on exit status 1");
    let msg = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(msg.contains("expected exit status 0"), "{msg}");
    assert!(msg.contains("exit status: 1"), "{msg}");
    assert!(msg.contains("command: sh -c"), "{msg}");
    assert!(msg.contains("--- stderr ---\nwhy"), "{msg}");
    assert!(msg.contains(&env.dir().display().to_string()), "{msg}");
}

#[test]
fn timeout_kills_the_whole_process_group() {
    let env = TestEnv::root();
    let pidfile = env.path("bg.pid");
    let script = format!("sleep 100 & echo $! > {}; wait", pidfile.display());
    let start = Instant::now();
    let err = env
        .host("sh", ["-c", &script])
        .timeout(Duration::from_secs(2))
        .try_run()
        .expect_err("a command past its timeout must fail");
    assert!(err.contains("timed out after"), "{err}");
    assert!(start.elapsed() < Duration::from_secs(10), "took {:?}", start.elapsed());
    let pid = fs::read_to_string(&pidfile).unwrap().trim().to_string();
    wait_until("the background sleep to be killed", Duration::from_secs(5), || {
        // Gone, or a zombie waiting for init to reap it.
        fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| s.split(") ").nth(1).is_some_and(|rest| rest.starts_with('Z')))
            .unwrap_or(true)
    });
}

#[test]
fn output_left_open_by_a_detached_process_is_reported() {
    // The shell exits at once but the process it detached keeps stdout open.
    let env = TestEnv::root();
    let pidfile = env.path("detached.pid");
    let script = format!("setsid sleep 30 & echo $! > {}; exit 0", pidfile.display());
    let err = env
        .host("sh", ["-c", &script])
        .timeout(Duration::from_secs(3))
        .try_run()
        .expect_err("a pipe kept open after exit must be reported");
    assert!(err.contains("stdout/stderr stayed open"), "{err}");
    let pid: i32 = fs::read_to_string(&pidfile).unwrap().trim().parse().unwrap();
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
}

#[test]
fn spawn_runs_in_the_background() {
    let env = TestEnv::root();
    let mut child = env.host("sh", ["-c", "echo started; exec sleep 100"]).spawn();
    wait_until("the child to print", Duration::from_secs(10), || {
        child.stdout_so_far() == "started\n"
    });
    assert_eq!(child.try_status(), None);
    child.signal(Signal::SIGTERM);
    let out = child.wait();
    assert_eq!(out.status, 128 + 15);
    assert_eq!(out.stdout, "started\n");
}

#[test]
fn wait_until_returns_once_true() {
    let mut n = 0;
    wait_until("three polls", Duration::from_secs(5), || {
        n += 1;
        n == 3
    });
    assert_eq!(n, 3);
}

#[test]
#[should_panic(expected = "waiting for the impossible")]
fn wait_until_panics_on_timeout() {
    wait_until("the impossible", Duration::from_millis(100), || false);
}

#[test]
fn stray_mounts_are_found() {
    let env = TestEnv::root();
    let target = env.mkdir("mnt with space");
    assert!(stray_mounts(env.dir()).is_empty());
    nix::mount::mount(
        Some("tmpfs"),
        &target,
        Some("tmpfs"),
        nix::mount::MsFlags::empty(),
        None::<&str>,
    )
    .unwrap();
    let found = stray_mounts(env.dir());
    nix::mount::umount2(&target, nix::mount::MntFlags::MNT_DETACH).unwrap();
    assert_eq!(found, [target]);
    assert!(stray_mounts(env.dir()).is_empty());
}

#[test]
fn leftover_processes_are_found() {
    let env = TestEnv::root();
    let mut plain = env.host("sleep", ["100"]).spawn();
    let marker = env.path("marker");
    let mut named = env
        .host("sh", ["-c", "sleep 100; true", marker.to_str().unwrap()])
        .spawn();
    let pid = named.pid();
    wait_until(
        "the shell naming the test dir to be found",
        Duration::from_secs(5),
        || {
            leftover_processes(env.dir())
                .iter()
                .any(|p| p.starts_with(&format!("pid {pid}:")))
        },
    );
    // `sleep 100` does not mention the dir and lives in our mount namespace.
    let plain_pid = format!("pid {}:", plain.pid());
    assert!(!leftover_processes(env.dir()).iter().any(|p| p.starts_with(&plain_pid)));
    named.kill_group();
    assert_eq!(named.wait().status, 137);
    plain.signal(Signal::SIGKILL);
    plain.wait();
}

#[test]
fn tables_split_at_header_offsets() {
    // podman 4.3.1 `ps -a`: PORTS is empty, CONTAINER ID has a single space.
    let text = "\
CONTAINER ID  IMAGE                COMMAND       CREATED                 STATUS                   PORTS       NAMES
1927d57ddc00  localhost/bb:latest  sleep 1000    Less than a second ago  Up 1 second ago                      web
f4b83d808fbe  localhost/bb:latest  sh -c exit 2  Less than a second ago  Exited (2) 1 second ago              done
";
    let t = Table::parse(text).unwrap();
    assert_eq!(
        t.columns,
        [
            "CONTAINER ID",
            "IMAGE",
            "COMMAND",
            "CREATED",
            "STATUS",
            "PORTS",
            "NAMES"
        ]
    );
    assert_eq!(t.column("NAMES"), ["web", "done"]);
    assert_eq!(t.column("COMMAND"), ["sleep 1000", "sh -c exit 2"]);
    assert_eq!(t.column("STATUS"), ["Up 1 second ago", "Exited (2) 1 second ago"]);
    assert_eq!(t.column("PORTS"), ["", ""]);
    assert!(Table::parse("").is_err());
}

#[test]
fn pty_gives_a_controlling_terminal() {
    let mut cmd = Command::new("/bin/sh");
    cmd.env_clear().env("PATH", "/usr/bin:/bin").env("PS1", "$ ");
    let mut pty = Pty::spawn(&mut cmd);
    pty.set_size(33, 77);
    // The terminal echoes what we type: wait for what only the output contains.
    pty.write(b"tty; stty size; echo done-$((0 + 1))\n");
    let out = pty.read_until("done-1\r\n", Duration::from_secs(10));
    assert!(out.contains("/dev/pts/"), "{out:?}");
    assert!(out.contains("33 77\r\n"), "{out:?}");
    pty.set_size(40, 132);
    pty.write(b"stty size; echo done-$((0 + 2))\n");
    let out = pty.read_until("done-2\r\n", Duration::from_secs(10));
    assert!(out.contains("40 132\r\n"), "{out:?}");
    pty.write(b"exit 7\n");
    assert_eq!(pty.wait(), 7);
}

#[test]
fn pty_resize_sends_sigwinch() {
    let mut cmd = Command::new("/bin/sh");
    cmd.args([
        "-c",
        "trap 'echo winch; stty size' WINCH; echo ready; while :; do sleep 0.05; done",
    ]);
    let mut pty = Pty::spawn(&mut cmd);
    pty.read_until("ready", Duration::from_secs(10));
    pty.set_size(21, 42);
    let out = pty.read_until("21 42", Duration::from_secs(10));
    assert!(out.contains("winch"), "{out:?}");
    // Dropping the Pty kills the loop; the transcript is kept until then.
    assert!(pty.transcript().contains("ready"));
}

#[test]
fn pty_child_killed_by_signal() {
    let mut cmd = Command::new("/bin/sh");
    cmd.args(["-c", "echo up; kill -9 $$"]);
    let mut pty = Pty::spawn(&mut cmd);
    assert_eq!(pty.wait(), 137);
    assert!(pty.transcript().contains("up"), "{:?}", pty.transcript());
}

#[test]
fn rootless_pty_runs_as_the_test_user() {
    let env = TestEnv::rootless();
    let mut pty = env
        .host("sh", ["-c", "id -u; stat -c %u \"$(tty)\"; stty size; exit 4"])
        .pty(25, 90);
    let uid = test_user().unwrap().uid;
    // The user runs on a terminal it owns, of the size asked for.
    pty.read_until(&format!("{uid}\r\n{uid}\r\n25 90\r\n"), Duration::from_secs(10));
    assert_eq!(pty.wait(), 4);
}

#[test]
fn hex_and_digest_helpers() {
    assert!(is_hex("0123456789ab", 12));
    assert!(!is_hex("0123456789AB", 12));
    assert!(!is_hex("0123456789a", 12));
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("abc");
    fs::write(&p, "abc").unwrap();
    assert_eq!(
        sha256_file(Path::new(&p)),
        "sha256:ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
