//! Security boundaries: hostile image tarballs, capabilities (`--privileged`,
//! `--cap-add`, `--cap-drop`), descriptor and directory leaks into the
//! container, the `/proc/self/exe` overwrite (CVE-2019-5736), and
//! `--userns=keep-id`.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::*;

/// casco's default capability set (deliberate; see run.rs `DEFAULT_CAPS`).
const DEFAULT_CAPS: u64 = 0x0000_0000_8004_05fb;
const CAP_CHOWN: u64 = 1 << 0;
const CAP_NET_ADMIN: u64 = 1 << 12;

/// `KEY:\tVALUE` lines of a /proc/PID/status as a map.
fn status_fields(text: &str) -> BTreeMap<String, String> {
    text.lines()
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect()
}

/// A capability mask as /proc/PID/status prints it (16 hex digits).
fn caps_hex(mask: u64) -> String {
    format!("{mask:016x}")
}

/// `run --rm ARGS... bb cat /proc/self/status`, as a map.
#[track_caller]
fn status_with(env: &TestEnv, args: &[&str]) -> BTreeMap<String, String> {
    let mut all = vec!["run", "--rm"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["bb", "cat", "/proc/self/status"]);
    status_fields(&env.casco(&all).run().success().stdout)
}

/// Whether `test FLAG PATH` holds in running container `name` (via `exec`);
/// panics with the whole story when `exec` itself fails.
#[track_caller]
fn exec_test(env: &TestEnv, name: &str, flag: &str, path: &str) -> bool {
    let out = env.casco(["exec", name, "test", flag, path]).run();
    match out.status {
        0 => true,
        1 => false,
        _ => panic!("{}", out.report(&format!("exec into {name} failed"))),
    }
}

// --- hostile tarballs -------------------------------------------------------------

/// One entry of a hand-made tar archive.
struct RawEntry<'a> {
    /// The name bytes exactly as they go into the header (may hold "..").
    name: &'a str,
    /// ustar typeflag: b'0' file, b'1' hardlink, b'2' symlink, b'5' directory.
    kind: u8,
    link: &'a str,
    data: &'a [u8],
}

/// Writes `value` as zero-padded octal into `field`, leaving the last byte NUL.
fn octal(field: &mut [u8], value: u64) {
    let digits = field.len() - 1;
    let text = format!("{value:0digits$o}");
    field[..digits].copy_from_slice(text.as_bytes());
    field[digits] = 0;
}

/// A tar archive whose headers are written byte by byte: the tar crate
/// refuses names with "..", which is exactly what these archives need.
fn raw_tar(entries: &[RawEntry]) -> Vec<u8> {
    let mut out = Vec::new();
    for e in entries {
        assert!(e.name.len() < 100 && e.link.len() < 100, "names must fit the v7 fields");
        let mut h = [0u8; 512];
        h[..e.name.len()].copy_from_slice(e.name.as_bytes());
        octal(&mut h[100..108], if e.kind == b'5' { 0o755 } else { 0o644 });
        octal(&mut h[108..116], 0);
        octal(&mut h[116..124], 0);
        octal(&mut h[124..136], e.data.len() as u64);
        octal(&mut h[136..148], 1_700_000_000);
        h[156] = e.kind;
        h[157..157 + e.link.len()].copy_from_slice(e.link.as_bytes());
        h[257..263].copy_from_slice(b"ustar\0");
        h[263..265].copy_from_slice(b"00");
        // The checksum is computed with its own field as eight spaces.
        h[148..156].copy_from_slice(b"        ");
        let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
        h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
        out.extend_from_slice(&h);
        out.extend_from_slice(e.data);
        out.resize(out.len().next_multiple_of(512), 0);
    }
    out.resize(out.len() + 1024, 0);
    out
}

/// Every path under the store root except lock files (which a failed command
/// may legitimately leave), relative, sorted.
fn store_listing(env: &TestEnv) -> Vec<String> {
    fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) {
        let Ok(entries) = fs::read_dir(dir) else { return };
        for e in entries.flatten() {
            let p = e.path();
            let name = e.file_name().to_string_lossy().into_owned();
            if !name.ends_with(".lock") {
                out.push(p.strip_prefix(base).unwrap_or(&p).display().to_string());
            }
            if e.file_type().is_ok_and(|t| t.is_dir()) {
                walk(base, &p, out);
            }
        }
    }
    let root = env.store_root();
    let mut out = Vec::new();
    walk(&root, &root, &mut out);
    out.sort();
    out
}

/// Names of every entry under `dir`, recursively.
fn all_names(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Ok(entries) = fs::read_dir(dir) else { return out };
    for e in entries.flatten() {
        out.push(e.path());
        if e.file_type().is_ok_and(|t| t.is_dir()) {
            out.extend(all_names(&e.path()));
        }
    }
    out
}

both! {
    /// `import` of a hostile tarball fails with 125 and a message, writes
    /// nothing outside the store, and leaves the store as it was: no image, no
    /// layer, no blob, no temp file. Three archives: an entry "../escape"; a
    /// symlink "evil" to a directory outside the store followed by
    /// "evil/passwd"; a hardlink to "../../etc/passwd". (The symlink points at a
    /// sentinel directory in the test dir, not /etc, so a broken casco cannot
    /// damage the machine; an absolute and a "../"-relative link are tried.)
    /// A good import afterwards works.
    fn import_rejects_hostile_tarballs(env) {
        let outside = env.mkdir("outside");
        let outside_abs = outside.display().to_string();
        // Enough "../" to reach / from anywhere in the store (the name field holds 99 bytes).
        let climb = format!("{}{}", "../".repeat(12), outside_abs.trim_start_matches('/'));
        let passwd_links = fs::metadata("/etc/passwd").unwrap().nlink();
        let archives: Vec<(&str, Vec<u8>)> = vec![
            (
                "dotdot",
                raw_tar(&[
                    RawEntry { name: "ok", kind: b'0', link: "", data: b"fine\n" },
                    RawEntry { name: "../escape", kind: b'0', link: "", data: b"escaped\n" },
                ]),
            ),
            (
                "deep-dotdot",
                raw_tar(&[RawEntry { name: "a/../../../escape", kind: b'0', link: "", data: b"escaped\n" }]),
            ),
            (
                "abs-symlink",
                raw_tar(&[
                    RawEntry { name: "evil", kind: b'2', link: &outside_abs, data: b"" },
                    RawEntry { name: "evil/passwd", kind: b'0', link: "", data: b"escaped\n" },
                ]),
            ),
            (
                "rel-symlink",
                raw_tar(&[
                    RawEntry { name: "evil", kind: b'2', link: &climb, data: b"" },
                    RawEntry { name: "evil/passwd", kind: b'0', link: "", data: b"escaped\n" },
                ]),
            ),
            (
                "hardlink",
                raw_tar(&[RawEntry { name: "link", kind: b'1', link: "../../etc/passwd", data: b"" }]),
            ),
        ];
        // Make the store's skeleton first, so only what the imports add shows.
        env.casco(["images", "-q"]).run().success().stdout_is("");
        let before = store_listing(&env);
        // Every archive is tried before anything is asserted, so one report
        // lists all that went wrong.
        let mut left = Vec::new();
        let mut known = before.clone();
        for (name, bytes) in &archives {
            let tar = env.write_file(&format!("{name}.tar"), bytes);
            env.casco(["import", tar.to_str().unwrap(), name]).run().code(125).says_why();
            env.casco(["import", "-", &format!("{name}-stdin")])
                .stdin(bytes.clone())
                .run()
                .code(125)
                .says_why();
            env.casco(["images", "-q"]).run().success().stdout_is("");
            let now = store_listing(&env);
            let added: Vec<String> = now.iter().filter(|p| !known.contains(p)).cloned().collect();
            if !added.is_empty() {
                left.push(format!("{name}.tar: {added:?}"));
            }
            known.extend(now);
        }
        assert!(left.is_empty(), "failed imports left in the store:\n  {}", left.join("\n  "));
        let escaped: Vec<PathBuf> = all_names(env.dir())
            .into_iter()
            .filter(|p| p.file_name().is_some_and(|n| n == "escape" || n == "passwd"))
            .collect();
        assert!(escaped.is_empty(), "hostile entries were written: {escaped:?}");
        assert_eq!(fs::read_dir(&outside).unwrap().count(), 0, "something was written through the symlink");
        assert_eq!(fs::metadata("/etc/passwd").unwrap().nlink(), passwd_links, "/etc/passwd got a new hard link");
        env.import_busybox("bb");
        env.casco(["run", "--rm", "bb", "true"]).run().success();
    }
}

// --- capabilities ---------------------------------------------------------------------

both! {
    /// podman: `--privileged` gives every capability the engine has: as root,
    /// the test process's own set (this host's root lacks CAP_SYS_RESOURCE, so
    /// that is not "all 41"); rootless the same: a user namespace starts with
    /// every capability, but only within the bounding set it inherits from
    /// the user's casco, which is the host's. Masked paths are not masked:
    /// /proc/keys and /proc/timer_list have nothing mounted on them, and as
    /// root /proc/timer_list reads non-empty (rootless, the host's 0400 file
    /// is not readable from the user namespace, privileged or not).
    fn privileged_gets_every_capability(env) {
        env.import_busybox("bb");
        // The test runs as root; the rootless casco is started by setpriv,
        // which keeps root's bounding set.
        let want = status_fields(&fs::read_to_string("/proc/self/status").unwrap())["CapBnd"].clone();
        let f = status_with(&env, &["--privileged"]);
        for key in ["CapPrm", "CapEff", "CapBnd"] {
            assert_eq!(f[key], want, "{key} with --privileged");
        }
        let out = env
            .casco([
                "run", "--rm", "--privileged", "bb", "sh", "-c",
                "grep -cE ' /proc/(keys|timer_list|kcore) ' /proc/mounts; wc -c < /proc/timer_list",
            ])
            .run();
        let lines = out.lines();
        assert_eq!(lines.first().copied(), Some("0"), "{}", out.report("a masked path is mounted over"));
        if !env.is_rootless() {
            let size: u64 = lines.get(1).and_then(|s| s.trim().parse().ok()).unwrap_or(0);
            assert!(size > 0, "{}", out.report("/proc/timer_list reads empty with --privileged"));
        }
    }
}

both! {
    /// podman: `--cap-add NET_ADMIN` adds bit 12 to the default set,
    /// `--cap-drop CHOWN` removes bit 0, `--cap-drop all` leaves nothing
    /// (effective, permitted and bounding sets).
    fn cap_add_and_drop(env) {
        env.import_busybox("bb");
        let f = status_with(&env, &["--cap-add", "NET_ADMIN"]);
        assert_eq!(f["CapEff"], caps_hex(DEFAULT_CAPS | CAP_NET_ADMIN));
        assert_eq!(f["CapBnd"], caps_hex(DEFAULT_CAPS | CAP_NET_ADMIN));
        let f = status_with(&env, &["--cap-add", "CAP_NET_ADMIN"]);
        assert_eq!(f["CapEff"], caps_hex(DEFAULT_CAPS | CAP_NET_ADMIN));
        let f = status_with(&env, &["--cap-drop", "CHOWN"]);
        assert_eq!(f["CapEff"], caps_hex(DEFAULT_CAPS & !CAP_CHOWN));
        assert_eq!(f["CapBnd"], caps_hex(DEFAULT_CAPS & !CAP_CHOWN));
        let f = status_with(&env, &["--cap-drop", "all"]);
        for key in ["CapPrm", "CapEff", "CapBnd", "CapAmb"] {
            assert_eq!(f[key], caps_hex(0), "{key} with --cap-drop all");
        }
        env.casco(["run", "--rm", "--cap-add", "NOSUCHCAP", "bb", "true"]).run().code(125).says_why();
        assert_no_leftovers(&env);
    }
}

both! {
    /// podman 4: a non-root user (`-u tester`) gets the added capability in
    /// its effective, permitted and ambient sets (so it survives exec), and
    /// nothing else of the default set.
    fn cap_add_for_a_non_root_user(env) {
        env.import_busybox("bb");
        let f = status_with(&env, &["-u", "tester", "--cap-add", "NET_ADMIN"]);
        assert_eq!(f["Uid"].split_whitespace().next(), Some("1000"));
        assert_eq!(f["CapEff"], caps_hex(CAP_NET_ADMIN));
        assert_eq!(f["CapPrm"], caps_hex(CAP_NET_ADMIN));
        assert_eq!(f["CapAmb"], caps_hex(CAP_NET_ADMIN));
    }
}

// --- what leaks into the container ------------------------------------------------

/// `ls -1 /proc/self/fd` lines without carriage returns (a terminal adds them).
fn fd_list(out: &str) -> Vec<String> {
    out.lines()
        .map(|l| l.trim_end_matches('\r').to_string())
        .filter(|l| !l.is_empty())
        .collect()
}

both! {
    /// Only 0, 1 and 2 are open in the container's processes (3 is the
    /// directory `ls` itself opens): no descriptor of casco or its monitor
    /// leaks in, for `run` (plain, -i, -t, --init, -d) and `exec` (plain, -i).
    /// The first process's working directory is "/" (or the -w directory).
    fn no_descriptor_or_directory_leaks(env) {
        env.import_busybox("bb");
        let want = ["0", "1", "2", "3"];
        for extra in [&[][..], &["-i"], &["-t"], &["--init"]] {
            let mut args = vec!["run", "--rm"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["bb", "ls", "-1", "/proc/self/fd"]);
            let out = env.casco(&args).stdin("").run().success();
            assert_eq!(fd_list(&out.stdout), want, "{}", out.report(&format!("fds with {extra:?}")));
        }
        env.casco(["run", "--rm", "bb", "readlink", "/proc/1/cwd"]).run().success().stdout_is("/\n");
        env.casco(["run", "--rm", "-w", "/tmp", "bb", "readlink", "/proc/1/cwd"]).run().success().stdout_is("/tmp\n");
        let script = "exec 2>/dev/null; ls -1 /proc/self/fd > /tmp/fds; exec sleep 1000";
        env.casco(["run", "-d", "--name", "e", "bb", "sh", "-c", script])
            .run()
            .success();
        wait_until("the detached container's fd list", Duration::from_secs(10), || {
            exec_test(&env, "e", "-s", "/tmp/fds")
        });
        let out = env.casco(["exec", "e", "cat", "/tmp/fds"]).run().success();
        assert_eq!(fd_list(&out.stdout), want, "{}", out.report("fds of a detached container"));
        for extra in [&[][..], &["-i"]] {
            let mut args = vec!["exec"];
            args.extend_from_slice(extra);
            args.extend_from_slice(&["e", "ls", "-1", "/proc/self/fd"]);
            let out = env.casco(&args).stdin("").run().success();
            assert_eq!(fd_list(&out.stdout), want, "{}", out.report(&format!("exec fds with {extra:?}")));
        }
        env.casco(["exec", "e", "readlink", "/proc/self/cwd"]).run().success().stdout_is("/\n");
        env.casco(["rm", "-f", "-t", "0", "e"]).run().success();
    }
}

/// A private, root-owned copy of the casco binary in the test dir, so a
/// successful overwrite damages only the copy, never the binary the other
/// tests run.
fn private_casco(env: &TestEnv) -> PathBuf {
    let dir = env.path("privbin");
    fs::create_dir(&dir).unwrap();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let bin = dir.join("casco");
    fs::copy(casco_bin(), &bin).unwrap();
    fs::set_permissions(&bin, fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// Runs the private copy with this env's store: like `env.casco`.
fn run_private<'a>(env: &'a TestEnv, bin: &Path, args: &[&str]) -> Cmd<'a> {
    let root = env.store_root();
    let run = env.run_root();
    let mut all = vec!["--root", root.to_str().unwrap(), "--runroot", run.to_str().unwrap()];
    all.extend_from_slice(args);
    env.host(bin.to_str().unwrap(), all)
}

/// Tries, until /stop exists, to append to the executable of every process it
/// can see: what a CVE-2019-5736 exploit does once the engine's binary runs in
/// the container. Prints "WROTE <pid>" for each success.
const OVERWRITE_LOOP: &str = "while [ ! -e /stop ]; do \
    for p in /proc/[0-9]*; do \
        (echo pwned >> $p/exe) 2>/dev/null && echo \"WROTE $p $(readlink $p/exe)\"; \
    done; \
done; echo done";

both! {
    /// CVE-2019-5736: a container must not get the engine's binary to run as
    /// one of its processes and then rewrite it. `exec` of a script whose
    /// interpreter is `#!/proc/self/exe` (which names the engine while it execs)
    /// exits with a clear code (126 or 127, with a message), a loop in the
    /// container that tries to append to every /proc/PID/exe it sees meanwhile
    /// writes nothing, and with `--init` (PID 1 is casco's init) /proc/1/exe
    /// cannot be opened for writing either. The binary's sha256 is the same
    /// afterwards. Run with a private copy of casco, so a failure cannot break
    /// the other tests.
    fn proc_self_exe_cannot_overwrite_casco(env) {
        env.import_busybox("bb");
        let bin = private_casco(&env);
        let before = sha256_file(&bin);
        let shared_before = sha256_file(casco_bin());
        run_private(&env, &bin, &["run", "-d", "--name", "e", "bb", "sleep", "1000"]).run().success();
        run_private(&env, &bin, &["exec", "e", "sh", "-c", "printf '#!/proc/self/exe\\n' > /x; chmod 755 /x"])
            .run()
            .success();
        let mut writer = run_private(&env, &bin, &["exec", "e", "sh", "-c", OVERWRITE_LOOP])
            .timeout(Duration::from_secs(120))
            .spawn();
        for _ in 0..5 {
            let out = run_private(&env, &bin, &["exec", "e", "/x"]).run();
            assert!(
                out.status == 126 || out.status == 127,
                "{}",
                out.report("exec of a #!/proc/self/exe script: want 126 or 127")
            );
            out.says_why();
        }
        run_private(&env, &bin, &["exec", "e", "touch", "/stop"]).run().success();
        let out = writer.wait().success();
        assert!(!out.stdout.contains("WROTE"), "{}", out.report("a container process wrote to an executable"));
        assert!(out.stdout.contains("done"), "{}", out.report("the overwrite loop did not finish"));
        let out = run_private(
            &env,
            &bin,
            &["run", "--rm", "--init", "bb", "sh", "-c", "(echo pwned >> /proc/1/exe) 2>/dev/null && echo WROTE; true"],
        )
        .run()
        .success();
        assert!(!out.stdout.contains("WROTE"), "{}", out.report("the container rewrote its init's binary"));
        run_private(&env, &bin, &["rm", "-f", "-t", "0", "e"]).run().success();
        assert_eq!(sha256_file(&bin), before, "the casco binary was modified from inside a container");
        assert_eq!(sha256_file(casco_bin()), shared_before, "the shared casco binary was modified");
    }
}

// --- --userns=keep-id -------------------------------------------------------------

/// podman: with `--userns=keep-id` (rootless only: it maps the caller's own
/// UID into the container, which as root means nothing) the process runs as
/// the caller's UID and GID, image files keep their owners (`/bin/busybox` is
/// 0:0), and a file the container creates in a bind-mounted host directory
/// belongs to the caller on the host.
#[test]
fn userns_keep_id_rootless() {
    let env = TestEnv::rootless();
    env.import_busybox("bb");
    let user = env.user().cloned().expect("rootless env has a user");
    let vol = env.mkdir("vol");
    let spec = format!("{}:/v", vol.display());
    let script = "id -u; id -g; stat -c '%u:%g' /bin/busybox; touch /v/made";
    let out = env
        .casco(["run", "--rm", "--userns=keep-id", "-v", &spec, "bb", "sh", "-c", script])
        .run()
        .success();
    let m = fs::metadata(vol.join("made")).unwrap();
    let got = (out.lines().join(" "), (m.uid(), m.gid()));
    let want = (format!("{} {} 0:0", user.uid, user.gid), (user.uid, user.gid));
    assert_eq!(
        got,
        want,
        "{}",
        out.report("keep-id: want (own UID, own GID, image files 0:0), and the bind-mounted file owned by the caller")
    );
}

/// A user with no ranges in /etc/subuid and /etc/subgid still runs containers
/// rootless, in a user namespace that maps only their own ID (container root),
/// and casco says so in one warning line. Image files owned by other IDs (the
/// busybox image's /home/tester, 1000:1000) cannot keep their owners there:
/// the import reports them instead of silently changing them.
#[test]
fn single_id_user_namespace_without_subordinate_ranges() {
    let env = TestEnv::rootless_as(NOSUB_USER);
    let out = env
        .casco(["import", busybox_tar().to_str().unwrap(), "bb"])
        .run()
        .success();
    assert!(
        out.stderr.contains("no subordinate ID ranges")
            && out.stderr.lines().filter(|l| l.contains("subordinate")).count() == 1,
        "{}",
        out.report("one warning about the missing ranges")
    );
    assert!(
        out.stderr.contains("home/tester"),
        "{}",
        out.report("the unrepresentable owner is reported")
    );
    let user = user_named(NOSUB_USER).unwrap();
    let out = env
        .casco([
            "run",
            "--rm",
            "bb",
            "sh",
            "-c",
            "id -u; cat /proc/self/uid_map; ls -ln /bin/busybox",
        ])
        .run()
        .success();
    let lines = out.lines();
    assert_eq!(lines[0], "0", "{}", out.stdout);
    let map: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(
        map,
        ["0", &user.uid.to_string(), "1"],
        "only the user's own ID is mapped: {}",
        out.stdout
    );
    assert_eq!(lines.len(), 3, "one map line: {}", out.stdout);
    assert!(
        lines[2].contains(" 0        0 "),
        "image files owned by root stay root's: {}",
        out.stdout
    );
    env.casco(["run", "-d", "--name", "s", "bb", "sleep", "100"])
        .run()
        .success();
    env.casco(["exec", "s", "true"]).run().success();
    env.casco(["rm", "-f", "s"]).run().success();
    assert_no_leftovers(&env);
}
