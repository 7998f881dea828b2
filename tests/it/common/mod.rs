//! The integration-test harness: the real `casco` binary, run as root or as the
//! unprivileged `casco-test` user against a private temporary store.
//!
//! - [`casco_bin`] and [`busybox_tar`]: a world-readable copy of the binary and a
//!   busybox root filesystem tarball, made once per test process.
//! - [`TestEnv`]: one test's temp dir (`root/`, `run/`, `home/`), the [`Cmd`]
//!   builder that runs casco (or a host program) in it, and the cleanup every test
//!   gets for free: containers removed, store reset, no mount left under the dir.
//! - [`Pty`]: drives a command on a pseudo-terminal, for `-t`.
//! - [`assert_no_leftovers`], [`wait_until`], [`Table`]: checks and parsers.
//!
//! Nothing is skipped: a test that needs root or the test user and does not have
//! it panics and says how to get it (`bash .ci/setup`, run as root).

// Test-harness diagnostics go to stderr, where the test runner captures them.
#![allow(clippy::print_stderr)]

use std::collections::BTreeMap;
use std::ffi::{OsStr, OsString};
use std::fs;
use std::io::{self, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};
use std::os::unix::fs::{PermissionsExt, chown};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, FdFlag, OFlag, fcntl};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;

/// The unprivileged user rootless tests run as (made by `.ci/setup`).
pub const TEST_USER: &str = "casco-test";

/// How long a command may run before the harness kills it and fails the test.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(60);

/// PATH given to every command; the rest of the environment is cleared.
const CLEAN_PATH: &str = "/usr/sbin:/usr/bin:/sbin:/bin";

/// mtime of every entry in the busybox tarball, so the tarball (and the layer
/// digest computed from it) is the same on every run.
const TAR_MTIME: u64 = 1_700_000_000;

/// Defines one test body and runs it twice: `NAME::root` as root and
/// `NAME::rootless` as the test user. Attributes (docs, `#[ignore]`) apply to both.
///
/// ```ignore
/// both! {
///     /// podman 4.3.1: `run IMG true` exits 0.
///     fn true_exits_zero(env) { env.import_busybox("bb"); env.casco(["run", "--rm", "bb", "true"]).run().success(); }
/// }
/// ```
macro_rules! both {
    ($(#[$attr:meta])* fn $name:ident($env:ident) $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            fn body($env: $crate::common::TestEnv) $body

            $(#[$attr])*
            #[test]
            fn root() {
                body($crate::common::TestEnv::root())
            }

            $(#[$attr])*
            #[test]
            fn rootless() {
                body($crate::common::TestEnv::rootless())
            }
        }
    };
}

// ---------------------------------------------------------------------------
// Users and per-process scratch space
// ---------------------------------------------------------------------------

/// A local account, as /etc/passwd lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// The `casco-test` account, if it exists.
pub fn test_user() -> Option<User> {
    user_named(TEST_USER)
}

/// The user without subordinate ID ranges that `.ci/setup` creates.
pub const NOSUB_USER: &str = "casco-nosub";

/// An account from /etc/passwd, if it exists.
pub fn user_named(name: &str) -> Option<User> {
    let passwd = fs::read_to_string("/etc/passwd").ok()?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() >= 4 && f[0] == name {
            return Some(User {
                name: f[0].to_string(),
                uid: f[2].parse().ok()?,
                gid: f[3].parse().ok()?,
            });
        }
    }
    None
}

/// The first subordinate ID range of `user` in `/etc/subuid` or `/etc/subgid`:
/// (start, count).
pub fn subid_range(file: &str, user: &User) -> Option<(u32, u32)> {
    let text = fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        if f.len() == 3 && (f[0] == user.name || f[0] == user.uid.to_string()) {
            Some((f[1].parse().ok()?, f[2].parse().ok()?))
        } else {
            None
        }
    })
}

fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} need root (the rootless ones switch to the {TEST_USER} user): run the tests as root, \
         after `bash .ci/setup`, as CI does"
    );
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// This process's scratch dir, `$TMPDIR/casco-it-<pid>` (mode 0755, so the test
/// user can reach what is in it). Scratch dirs of test processes that are gone are
/// removed the first time this is called.
fn scratch() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let tmp = std::env::temp_dir();
        remove_stale_scratch(&tmp);
        let dir = tmp.join(format!("casco-it-{}", std::process::id()));
        // A dir with our pid can only be a leftover of a dead process (pid reuse).
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        dir
    })
}

/// Removes what test processes that are gone left in `tmp`: their scratch dirs
/// (`casco-it-<pid>`) and the test dirs kept because a test failed
/// (`casco-test-<pid>-...`), so a kept dir lasts until the next test run. A dir
/// with a mount under it is left alone: removing it would descend into the mount.
fn remove_stale_scratch(tmp: &Path) {
    let Ok(entries) = fs::read_dir(tmp) else { return };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(rest) = name
            .to_str()
            .and_then(|n| n.strip_prefix("casco-it-").or_else(|| n.strip_prefix("casco-test-")))
        else {
            continue;
        };
        let pid = rest.split('-').next().unwrap_or_default();
        if pid.parse::<u32>().is_ok()
            && !Path::new("/proc").join(pid).exists()
            && stray_mounts(&entry.path()).is_empty()
        {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

// ---------------------------------------------------------------------------
// The casco binary and the busybox image
// ---------------------------------------------------------------------------

/// Set to a program with casco's command line to run the suite against it
/// instead of the built binary (tests/fixtures/podman-as-casco.sh checks the
/// expectations against podman).
pub const BINARY_OVERRIDE: &str = "CASCO_IT_BINARY";

/// The binary the suite runs: the one cargo built, or `$CASCO_IT_BINARY`.
pub fn casco_source() -> PathBuf {
    std::env::var_os(BINARY_OVERRIDE).map_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_casco")), PathBuf::from)
}

/// A copy of the `casco` binary that every user can execute: cargo's target dir
/// may not be traversable by the test user. Made once per test process.
pub fn casco_bin() -> &'static Path {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = casco_source();
        let src = src.as_path();
        let dir = scratch().join("bin");
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        let tmp = dir.join(".casco.tmp");
        fs::copy(src, &tmp).unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), tmp.display()));
        set_mode(&tmp, 0o755);
        let dst = dir.join("casco");
        fs::rename(&tmp, &dst).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), dst.display()));
        dst
    })
}

/// A root filesystem tarball (world-readable) built from Debian's static
/// `/bin/busybox`: `bin/busybox` plus a symlink per applet (sh included),
/// `etc/passwd` (root, nobody, tester 1000:1000), `etc/group` (root, wheel with
/// tester, tester, nogroup), `tmp` (1777), `root` (0700), `home/tester` (owned by
/// 1000:1000), and empty `proc`, `sys`, `dev`. Built once per test process.
pub fn busybox_tar() -> &'static Path {
    static TAR: OnceLock<PathBuf> = OnceLock::new();
    TAR.get_or_init(|| {
        let dst = scratch().join("busybox.tar");
        build_busybox_tar(&dst);
        dst
    })
}

/// Writes the busybox tarball (see [`busybox_tar`]) to `dst`, mode 0644,
/// atomically. The same bytes every time: fixed order, owners and mtimes.
pub fn build_busybox_tar(dst: &Path) {
    let tmp = dst.with_extension("tmp");
    let file = fs::File::create(&tmp).unwrap_or_else(|e| panic!("create {}: {e}", tmp.display()));
    write_busybox_tar(file).unwrap_or_else(|e| panic!("write {}: {e}", tmp.display()));
    set_mode(&tmp, 0o644);
    fs::rename(&tmp, dst).unwrap_or_else(|e| panic!("rename {} to {}: {e}", tmp.display(), dst.display()));
}

/// The `/etc/passwd` of the busybox image.
pub const BUSYBOX_PASSWD: &str = "root:x:0:0:root:/root:/bin/sh\n\
nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n\
tester:x:1000:1000::/home/tester:/bin/sh\n";

/// The `/etc/group` of the busybox image.
pub const BUSYBOX_GROUP: &str = "root:x:0:\nwheel:x:10:tester\ntester:x:1000:\nnogroup:x:65534:\n";

const BUSYBOX: &str = "/bin/busybox";

fn write_busybox_tar(out: fs::File) -> io::Result<()> {
    let bb = Path::new(BUSYBOX);
    if !bb.exists() {
        panic!("{BUSYBOX} is missing: run `bash .ci/setup` first (needs busybox-static)");
    }
    let binary = fs::read(bb)?;
    if has_interpreter(&binary) {
        panic!(
            "{BUSYBOX} is dynamically linked, so it cannot run in an image without libc: \
             run `bash .ci/setup` first (needs busybox-static, not busybox)"
        );
    }
    let list = Command::new(bb).arg("--list").output()?;
    assert!(list.status.success(), "{BUSYBOX} --list failed: {:?}", list.status);
    let mut applets: Vec<String> = String::from_utf8_lossy(&list.stdout)
        .lines()
        .map(str::trim)
        .filter(|a| !a.is_empty() && !a.contains('/') && *a != "busybox")
        .map(String::from)
        .collect();
    applets.sort();
    applets.dedup();
    assert!(applets.iter().any(|a| a == "sh"), "{BUSYBOX} --list has no sh applet");

    let mut b = tar::Builder::new(io::BufWriter::new(out));
    add_dir(&mut b, "bin/", 0o755, 0)?;
    add_file(&mut b, "bin/busybox", 0o755, &binary)?;
    for applet in &applets {
        let mut h = header(tar::EntryType::Symlink, 0o777, 0, 0);
        h.set_path(format!("bin/{applet}"))?;
        h.set_link_name("busybox")?;
        h.set_cksum();
        b.append(&h, io::empty())?;
    }
    add_dir(&mut b, "dev/", 0o755, 0)?;
    add_dir(&mut b, "etc/", 0o755, 0)?;
    add_file(&mut b, "etc/group", 0o644, BUSYBOX_GROUP.as_bytes())?;
    add_file(&mut b, "etc/passwd", 0o644, BUSYBOX_PASSWD.as_bytes())?;
    add_dir(&mut b, "home/", 0o755, 0)?;
    add_dir(&mut b, "home/tester/", 0o755, 1000)?;
    add_dir(&mut b, "proc/", 0o755, 0)?;
    add_dir(&mut b, "root/", 0o700, 0)?;
    add_dir(&mut b, "sys/", 0o755, 0)?;
    add_dir(&mut b, "tmp/", 0o1777, 0)?;
    b.into_inner()?.flush()
}

fn add_dir<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32, owner: u64) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, mode, owner, 0);
    h.set_path(path)?;
    h.set_cksum();
    b.append(&h, io::empty())
}

fn add_file<W: Write>(b: &mut tar::Builder<W>, path: &str, mode: u32, data: &[u8]) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, mode, 0, data.len() as u64);
    h.set_path(path)?;
    h.set_cksum();
    b.append(&h, data)
}

/// A ustar header with numeric owner `owner:owner` and the fixed mtime.
fn header(kind: tar::EntryType, mode: u32, owner: u64, size: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_entry_type(kind);
    h.set_mode(mode);
    h.set_uid(owner);
    h.set_gid(owner);
    h.set_mtime(TAR_MTIME);
    h.set_size(size);
    h
}

/// Whether an ELF64 executable asks for a dynamic loader (has a PT_INTERP
/// program header). Anything unparsable counts as "no".
fn has_interpreter(elf: &[u8]) -> bool {
    const PT_INTERP: u32 = 3;
    if elf.len() < 64 || &elf[..4] != b"\x7fELF" || elf[4] != 2 {
        return false;
    }
    let u16_at = |o: usize| elf.get(o..o + 2).map(|b| u16::from_le_bytes([b[0], b[1]]) as usize);
    let u64_at = |o: usize| {
        elf.get(o..o + 8)
            .map(|b| u64::from_le_bytes(b.try_into().unwrap_or([0; 8])) as usize)
    };
    let (Some(phoff), Some(phentsize), Some(phnum)) = (u64_at(0x20), u16_at(0x36), u16_at(0x38)) else {
        return false;
    };
    (0..phnum).any(|i| {
        let o = phoff + i * phentsize;
        elf.get(o..o + 4).map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]])) == Some(PT_INTERP)
    })
}

/// `sha256:<hex>` of a file's bytes: the OCI diff ID of an uncompressed layer.
pub fn sha256_file(path: &Path) -> String {
    use sha2::{Digest, Sha256};
    let data = fs::read(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    let digest = Sha256::digest(&data);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// Whether `s` is exactly `len` lowercase hex digits.
pub fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

// ---------------------------------------------------------------------------
// TestEnv
// ---------------------------------------------------------------------------

/// One test's world: a temp dir holding the store (`root/`), the run root
/// (`run/`) and `$HOME` (`home/`), and who commands run as.
///
/// Dropping it removes every container (`rm -af`), resets the store, checks that
/// no mount is left under the dir (panics if one is), and removes the dir, except
/// when the test is failing: then the dir is kept (until the next test run) and
/// its path printed.
pub struct TestEnv {
    dir: PathBuf,
    user: Option<User>,
    spawned: AtomicUsize,
}

impl TestEnv {
    /// Commands run as root.
    pub fn root() -> TestEnv {
        require_root("root tests");
        TestEnv::new(None)
    }

    /// Commands run as `casco-test` with a clean environment.
    pub fn rootless() -> TestEnv {
        TestEnv::rootless_as(TEST_USER)
    }

    /// Commands run as the user `name` (created by `.ci/setup`).
    pub fn rootless_as(name: &str) -> TestEnv {
        require_root("rootless tests");
        let user =
            user_named(name).unwrap_or_else(|| panic!("rootless tests need the {name} user: run `bash .ci/setup`"));
        let runtime = PathBuf::from(format!("/run/user/{}", user.uid));
        assert!(
            runtime.is_dir(),
            "rootless tests need {} (the test user's XDG_RUNTIME_DIR): run `bash .ci/setup`",
            runtime.display()
        );
        TestEnv::new(Some(user))
    }

    fn new(user: Option<User>) -> TestEnv {
        // First use in this process clears what dead test processes left.
        scratch();
        static COUNTER: AtomicUsize = AtomicUsize::new(0);
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        // Short on purpose: sockets go under the run root, and a socket path
        // must fit in 108 bytes. The test's name goes in a file instead.
        let dir = std::env::temp_dir().join(format!("casco-test-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        set_mode(&dir, 0o755);
        let name = thread::current().name().unwrap_or("unnamed test").to_string();
        let _ = fs::write(dir.join("TEST"), format!("{name}\n"));
        for sub in ["root", "run", "home"] {
            let p = dir.join(sub);
            fs::create_dir(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
            set_mode(&p, 0o700);
        }
        let env = TestEnv {
            dir,
            user,
            spawned: AtomicUsize::new(0),
        };
        for p in [env.dir.clone(), env.store_root(), env.run_root(), env.home()] {
            env.give(&p);
        }
        env
    }

    /// The test's temp dir.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A path inside the temp dir.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }

    /// What every casco invocation gets as `--root`.
    pub fn store_root(&self) -> PathBuf {
        self.dir.join("root")
    }

    /// What every casco invocation gets as `--runroot`.
    pub fn run_root(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// `$HOME` of every command.
    pub fn home(&self) -> PathBuf {
        self.dir.join("home")
    }

    pub fn is_rootless(&self) -> bool {
        self.user.is_some()
    }

    /// The test user, for rootless envs.
    pub fn user(&self) -> Option<&User> {
        self.user.as_ref()
    }

    /// Host UID commands run as.
    pub fn uid(&self) -> u32 {
        self.user.as_ref().map_or(0, |u| u.uid)
    }

    /// Host GID commands run as.
    pub fn gid(&self) -> u32 {
        self.user.as_ref().map_or(0, |u| u.gid)
    }

    /// Makes `path` belong to whoever commands run as.
    fn give(&self, path: &Path) {
        if let Some(u) = &self.user {
            chown(path, Some(u.uid), Some(u.gid)).unwrap_or_else(|e| panic!("chown {}: {e}", path.display()));
        }
    }

    /// Creates a directory (and its parents) inside the temp dir, owned by the
    /// user commands run as.
    pub fn mkdir(&self, rel: &str) -> PathBuf {
        let p = self.dir.join(rel);
        fs::create_dir_all(&p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        let mut q = p.as_path();
        while q != self.dir {
            self.give(q);
            q = q.parent().unwrap_or(&self.dir);
        }
        p
    }

    /// Writes a file inside the temp dir, owned by the user commands run as.
    pub fn write_file(&self, rel: &str, contents: impl AsRef<[u8]>) -> PathBuf {
        let p = self.dir.join(rel);
        if let Some(parent) = p.parent().and_then(|p| p.strip_prefix(&self.dir).ok())
            && !parent.as_os_str().is_empty()
        {
            self.mkdir(&parent.to_string_lossy());
        }
        fs::write(&p, contents).unwrap_or_else(|e| panic!("write {}: {e}", p.display()));
        self.give(&p);
        p
    }

    /// `casco --root <dir>/root --runroot <dir>/run ARGS...`, run as this env's user.
    pub fn casco<I, S>(&self, args: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::new(self, casco_bin().as_os_str(), true, args)
    }

    /// A host program, run as this env's user with the same clean environment.
    pub fn host<I, S>(&self, program: &str, args: I) -> Cmd<'_>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd::new(self, OsStr::new(program), false, args)
    }

    /// `casco import <busybox tarball> NAME`; asserts success and returns what it
    /// printed (stdout, trimmed: podman prints `sha256:<64 hex>`).
    #[track_caller]
    pub fn import_busybox(&self, name: &str) -> String {
        let tar = busybox_tar();
        self.casco([OsStr::new("import"), tar.as_os_str(), OsStr::new(name)])
            .run()
            .success()
            .stdout_trim()
            .to_string()
    }

    /// `container inspect NAME`, its one element; asserts success.
    #[track_caller]
    pub fn inspect_container(&self, name: &str) -> serde_json::Value {
        let out = self.casco(["container", "inspect", name]).run().success();
        let v = out.json();
        match v.as_array().map(Vec::as_slice) {
            Some([one]) => one.clone(),
            _ => panic!("{}", out.report("expected a JSON array of one container")),
        }
    }

    /// `State.Status` of a container: created, running, exited, ...
    #[track_caller]
    pub fn container_status(&self, name: &str) -> String {
        self.inspect_container(name)["State"]["Status"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    }

    /// Polls `inspect` until the container's State.Status is `status`.
    #[track_caller]
    pub fn wait_for_status(&self, name: &str, status: &str) {
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            let out = self.casco(["container", "inspect", name]).run();
            let now = if out.status == 0 {
                serde_json::from_str::<serde_json::Value>(&out.stdout)
                    .ok()
                    .and_then(|v| v[0]["State"]["Status"].as_str().map(String::from))
            } else {
                None
            };
            if now.as_deref() == Some(status) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "{}",
                    out.report(&format!("container {name} never became {status} (last: {now:?})"))
                );
            }
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Container IDs the store still has a directory for (`ROOT/containers/<id>`).
    pub fn stored_containers(&self) -> Vec<String> {
        let dir = self.store_root().join("containers");
        let Ok(entries) = fs::read_dir(&dir) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = entries
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| !n.starts_with('.'))
            .collect();
        ids.sort();
        ids
    }

    fn next_spawn(&self) -> usize {
        self.spawned.fetch_add(1, Ordering::Relaxed)
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let failing = thread::panicking();
        // Containers must not outlive the test, pass or fail. Failures are ignored:
        // the verbs may not exist yet, and the checks below catch what remains.
        let _ = self
            .casco(["rm", "-a", "-f", "-t", "0"])
            .timeout(Duration::from_secs(60))
            .try_run();
        if !failing {
            let _ = self
                .casco(["system", "reset", "-f"])
                .timeout(Duration::from_secs(60))
                .try_run();
        }
        let mounts = stray_mounts(&self.dir);
        // Leave the host clean either way (deepest first); the failure is reported below.
        for m in mounts.iter().rev() {
            let _ = nix::mount::umount2(m, nix::mount::MntFlags::MNT_DETACH);
        }
        if failing {
            eprintln!("test dir kept: {}", self.dir.display());
            return;
        }
        if !mounts.is_empty() {
            panic!(
                "stray mounts left under {} after the test (now lazily unmounted; dir kept):\n  {}",
                self.dir.display(),
                mounts
                    .iter()
                    .map(|m| m.display().to_string())
                    .collect::<Vec<_>>()
                    .join("\n  ")
            );
        }
        // Rootless stores hold files owned by subordinate IDs: only root removes them.
        let mut last = None;
        for _ in 0..10 {
            match fs::remove_dir_all(&self.dir) {
                Ok(()) => return,
                Err(e) if e.kind() == io::ErrorKind::NotFound => return,
                Err(e) => last = Some(e),
            }
            thread::sleep(Duration::from_millis(100));
        }
        if let Some(e) = last {
            panic!("remove test dir {}: {e}", self.dir.display());
        }
    }
}

// ---------------------------------------------------------------------------
// Running commands
// ---------------------------------------------------------------------------

/// A command to run in a [`TestEnv`]: built with [`TestEnv::casco`] or
/// [`TestEnv::host`], then [`Cmd::run`] (wait, capture) or [`Cmd::spawn`]
/// (background).
pub struct Cmd<'a> {
    env: &'a TestEnv,
    program: OsString,
    casco: bool,
    args: Vec<OsString>,
    stdin: Option<Vec<u8>>,
    envs: Vec<(OsString, OsString)>,
    timeout: Duration,
}

impl<'a> Cmd<'a> {
    fn new<I, S>(env: &'a TestEnv, program: &OsStr, casco: bool, args: I) -> Cmd<'a>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<OsStr>,
    {
        Cmd {
            env,
            program: program.to_os_string(),
            casco,
            args: args.into_iter().map(|a| a.as_ref().to_os_string()).collect(),
            stdin: None,
            envs: Vec::new(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Appends an argument.
    pub fn arg(mut self, a: impl AsRef<OsStr>) -> Self {
        self.args.push(a.as_ref().to_os_string());
        self
    }

    /// Feeds these bytes to standard input, then closes it (default: /dev/null).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = Some(bytes.into());
        self
    }

    /// Adds an environment variable (the environment is otherwise clean).
    pub fn env(mut self, key: impl AsRef<OsStr>, value: impl AsRef<OsStr>) -> Self {
        self.envs
            .push((key.as_ref().to_os_string(), value.as_ref().to_os_string()));
        self
    }

    /// How long it may run (default 60 s) before its process group is killed
    /// and the test fails.
    pub fn timeout(mut self, d: Duration) -> Self {
        self.timeout = d;
        self
    }

    /// The command line, shell-quoted, for messages.
    pub fn cmdline(&self) -> String {
        let mut words = Vec::new();
        if let Some(u) = &self.env.user {
            words.push(format!("setpriv --reuid {0} --regid {0} --init-groups --", u.name));
        }
        let mut all: Vec<&OsStr> = vec![&self.program];
        let flags;
        if self.casco {
            flags = [
                OsString::from("--root"),
                self.env.store_root().into_os_string(),
                OsString::from("--runroot"),
                self.env.run_root().into_os_string(),
            ];
            all.extend(flags.iter().map(OsString::as_os_str));
        }
        all.extend(self.args.iter().map(OsString::as_os_str));
        words.extend(all.iter().map(|w| shell_quote(&w.to_string_lossy())));
        words.join(" ")
    }

    /// The std `Command` this stands for: the setpriv wrapper for rootless envs,
    /// `--root`/`--runroot`, the clean environment, cwd = the temp dir. No stdio
    /// or process group is set, so callers such as [`Pty::spawn`] can set their own.
    pub fn command(&self) -> Command {
        let mut c = match &self.env.user {
            None => Command::new(&self.program),
            Some(u) => {
                let mut c = Command::new("setpriv");
                c.args([
                    "--reuid",
                    &u.uid.to_string(),
                    "--regid",
                    &u.gid.to_string(),
                    "--init-groups",
                    "--",
                ]);
                c.arg(&self.program);
                c
            }
        };
        if self.casco {
            c.arg("--root").arg(self.env.store_root());
            c.arg("--runroot").arg(self.env.run_root());
        }
        c.args(&self.args);
        c.env_clear();
        c.env("HOME", self.env.home());
        c.env("PATH", CLEAN_PATH);
        c.env("LANG", "C");
        if let Some(u) = &self.env.user {
            c.env("XDG_RUNTIME_DIR", format!("/run/user/{}", u.uid));
        }
        if let Some(v) = std::env::var_os("RUST_BACKTRACE") {
            c.env("RUST_BACKTRACE", v);
        }
        c.envs(self.envs.iter().map(|(k, v)| (k, v)));
        c.current_dir(&self.env.dir);
        c
    }

    /// Runs to completion and captures its output. Panics (killing its process
    /// group first) when it outlives its timeout.
    pub fn run(self) -> Output {
        self.try_run().unwrap_or_else(|e| panic!("{e}"))
    }

    /// Like [`Cmd::run`], but a timeout or a failure to start is an `Err` with the
    /// whole story, not a panic (for cleanup code).
    pub fn try_run(self) -> Result<Output, String> {
        let cmdline = self.cmdline();
        let user = self.env.user.as_ref();
        let pipe = |what: &str| owned_pipe(user).map_err(|e| format!("make a pipe for {what} of {cmdline}: {e}"));
        let (out_r, out_w) = pipe("stdout")?;
        let (err_r, err_w) = pipe("stderr")?;
        let mut c = self.command();
        c.process_group(0);
        let stdin_w = match &self.stdin {
            Some(_) => {
                let (r, w) = pipe("stdin")?;
                c.stdin(r);
                Some(w)
            }
            None => {
                c.stdin(Stdio::null());
                None
            }
        };
        c.stdout(out_w);
        c.stderr(err_w);
        let start = Instant::now();
        let deadline = start + self.timeout;
        let spawned = spawn_retrying(&mut c);
        // Our copies of the child's pipe ends must go, or the reads never end.
        drop(c);
        let mut child = spawned.map_err(|e| format!("cannot start {cmdline}: {e}"))?;
        let pgid = Pid::from_raw(child.id() as i32);
        if let (Some(bytes), Some(mut w)) = (self.stdin, stdin_w) {
            // A command that does not read its input closes the pipe: not an error here.
            thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        }
        let out = Collector::start(Some(out_r));
        let err = Collector::start(Some(err_r));
        let report = |what: String, status: Option<i32>| {
            format!(
                "{what}\ncommand: {cmdline}\nexit status: {}\ntest dir: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                status.map_or_else(|| "none (killed by the harness)".to_string(), |s| s.to_string()),
                self.env.dir.display(),
                out.text(),
                err.text()
            )
        };
        let status = loop {
            match child.try_wait() {
                Ok(Some(st)) => break status_code(st),
                Ok(None) if Instant::now() >= deadline => {
                    let _ = killpg(pgid, Signal::SIGKILL);
                    let _ = child.wait();
                    out.wait_until(Instant::now() + Duration::from_secs(2));
                    err.wait_until(Instant::now() + Duration::from_secs(2));
                    return Err(report(
                        format!(
                            "timed out after {:?}; killed its process group (pgid {pgid})",
                            self.timeout
                        ),
                        None,
                    ));
                }
                Ok(None) => thread::sleep(Duration::from_millis(5)),
                Err(e) => return Err(report(format!("wait for pid {pgid}: {e}"), None)),
            }
        };
        // Whatever it started must not keep our pipes: a detached monitor or
        // container holding casco's stdout would hang `$(casco run -d ..)` too.
        let grace = deadline.min(Instant::now() + Duration::from_secs(10));
        if !(out.wait_until(grace) && err.wait_until(grace)) {
            let _ = killpg(pgid, Signal::SIGKILL);
            return Err(report(
                "exited, but its stdout/stderr stayed open: a process it started kept them \
                 (a leaked fd in a detached process?)"
                    .to_string(),
                Some(status),
            ));
        }
        Ok(Output {
            status,
            stdout: out.text(),
            stdout_raw: out.bytes(),
            stderr: err.text(),
            cmdline,
            dir: self.env.dir.clone(),
        })
    }

    /// Starts it on a new `rows` x `cols` pseudo-terminal that belongs to the
    /// user it runs as (see [`Pty`]).
    pub fn pty(self, rows: u16, cols: u16) -> Pty {
        let owner = self.env.user.as_ref().map(|u| (u.uid, u.gid));
        let mut c = self.command();
        // A terminal session has a TERM.
        if !self.envs.iter().any(|(k, _)| k == "TERM") {
            c.env("TERM", "xterm");
        }
        Pty::spawn_owned(&mut c, rows, cols, owner)
    }

    /// Starts it in the background (own process group, stdout and stderr to
    /// files in the temp dir) and returns a handle.
    pub fn spawn(self) -> Child {
        let cmdline = self.cmdline();
        let n = self.env.next_spawn();
        let out_path = self.env.dir.join(format!("spawn-{n}.stdout"));
        let err_path = self.env.dir.join(format!("spawn-{n}.stderr"));
        let create = |p: &Path| fs::File::create(p).unwrap_or_else(|e| panic!("create {}: {e}", p.display()));
        let user = self.env.user.as_ref();
        let mut c = self.command();
        c.process_group(0);
        let stdin_w = match &self.stdin {
            Some(_) => {
                let (r, w) = owned_pipe(user).unwrap_or_else(|e| panic!("make a stdin pipe for {cmdline}: {e}"));
                c.stdin(r);
                Some(w)
            }
            None => {
                c.stdin(Stdio::null());
                None
            }
        };
        c.stdout(create(&out_path));
        c.stderr(create(&err_path));
        self.env.give(&out_path);
        self.env.give(&err_path);
        let spawned = spawn_retrying(&mut c);
        drop(c);
        let child = spawned.unwrap_or_else(|e| panic!("cannot start {cmdline}: {e}"));
        if let (Some(bytes), Some(mut w)) = (self.stdin, stdin_w) {
            thread::spawn(move || {
                let _ = w.write_all(&bytes);
            });
        }
        Child {
            child,
            status: None,
            cmdline,
            dir: self.env.dir.clone(),
            out_path,
            err_path,
            timeout: self.timeout,
        }
    }
}

/// A pipe that belongs to `owner` (both ends share one inode), as a pipe made
/// by that user's shell would: the command can reopen it through /dev/stdout.
fn owned_pipe(owner: Option<&User>) -> io::Result<(io::PipeReader, io::PipeWriter)> {
    let (r, w) = io::pipe()?;
    if let Some(u) = owner {
        std::os::unix::fs::fchown(&r, Some(u.uid), Some(u.gid))?;
    }
    Ok((r, w))
}

/// Spawns, retrying on ETXTBSY: another thread may have forked while the fresh
/// copy of the binary was still open for writing (the fd lives on in its child
/// until that child execs).
fn spawn_retrying(c: &mut Command) -> io::Result<std::process::Child> {
    let mut tries = 0;
    loop {
        match c.spawn() {
            Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && tries < 50 => {
                tries += 1;
                thread::sleep(Duration::from_millis(20));
            }
            r => return r,
        }
    }
}

/// Exit code, or 128+N for a death by signal N (as a shell reports it).
fn status_code(st: std::process::ExitStatus) -> i32 {
    st.code().or_else(|| st.signal().map(|s| 128 + s)).unwrap_or(-1)
}

fn shell_quote(s: &str) -> String {
    if !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_./:=@%+,".contains(&b))
    {
        s.to_string()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

/// Reads a pipe on a thread, keeping what arrived so far readable at any time.
struct Collector {
    buf: Arc<Mutex<Vec<u8>>>,
    done: Arc<AtomicBool>,
}

impl Collector {
    fn start<R: Read + Send + 'static>(pipe: Option<R>) -> Collector {
        let buf = Arc::new(Mutex::new(Vec::new()));
        let done = Arc::new(AtomicBool::new(false));
        let (b, d) = (Arc::clone(&buf), Arc::clone(&done));
        thread::spawn(move || {
            if let Some(mut pipe) = pipe {
                let mut chunk = [0u8; 8192];
                loop {
                    match pipe.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => b
                            .lock()
                            .unwrap_or_else(|p| p.into_inner())
                            .extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            }
            d.store(true, Ordering::SeqCst);
        });
        Collector { buf, done }
    }

    /// Waits for end of file until `deadline`; true if it came.
    fn wait_until(&self, deadline: Instant) -> bool {
        while !self.done.load(Ordering::SeqCst) {
            if Instant::now() >= deadline {
                return false;
            }
            thread::sleep(Duration::from_millis(5));
        }
        true
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.bytes()).into_owned()
    }

    fn bytes(&self) -> Vec<u8> {
        self.buf.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

/// What a finished command did.
#[derive(Debug, Clone)]
pub struct Output {
    /// Exit code, or 128+N when killed by signal N.
    pub status: i32,
    /// stdout as text (invalid UTF-8 replaced); see `stdout_raw` for binary output.
    pub stdout: String,
    pub stdout_raw: Vec<u8>,
    pub stderr: String,
    cmdline: String,
    dir: PathBuf,
}

impl Output {
    /// Asserts exit status 0.
    #[track_caller]
    pub fn success(self) -> Self {
        if self.status != 0 {
            panic!("{}", self.report("expected exit status 0"));
        }
        self
    }

    /// Asserts exit status `n`.
    #[track_caller]
    pub fn code(self, n: i32) -> Self {
        if self.status != n {
            panic!("{}", self.report(&format!("expected exit status {n}")));
        }
        self
    }

    /// Asserts a non-zero exit status.
    #[track_caller]
    pub fn failure(self) -> Self {
        if self.status == 0 {
            panic!("{}", self.report("expected a non-zero exit status"));
        }
        self
    }

    /// Asserts that stdout is exactly `expected`.
    #[track_caller]
    pub fn stdout_is(self, expected: &str) -> Self {
        if self.stdout != expected {
            panic!(
                "{}",
                self.report(&format!("expected stdout {expected:?}, got {:?}", self.stdout))
            );
        }
        self
    }

    /// Asserts that stderr is not empty (an error must say something).
    #[track_caller]
    pub fn says_why(self) -> Self {
        if self.stderr.trim().is_empty() {
            panic!("{}", self.report("expected an error message on stderr"));
        }
        self
    }

    /// stdout without surrounding whitespace.
    pub fn stdout_trim(&self) -> &str {
        self.stdout.trim()
    }

    /// stdout's lines.
    pub fn lines(&self) -> Vec<&str> {
        self.stdout.lines().collect()
    }

    /// stdout parsed as JSON.
    #[track_caller]
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("{}", self.report(&format!("stdout is not JSON: {e}"))))
    }

    /// stdout parsed as a table with a header line.
    #[track_caller]
    pub fn table(&self) -> Table {
        Table::parse(&self.stdout).unwrap_or_else(|e| panic!("{}", self.report(&format!("stdout is not a table: {e}"))))
    }

    /// A failure message with everything needed to see why.
    pub fn report(&self, what: &str) -> String {
        format!(
            "{what}\ncommand: {}\nexit status: {}\ntest dir: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.cmdline,
            self.status,
            self.dir.display(),
            self.stdout,
            self.stderr
        )
    }
}

/// A command running in the background (see [`Cmd::spawn`]). Dropping it kills
/// its process group if it is still running.
pub struct Child {
    child: std::process::Child,
    status: Option<i32>,
    cmdline: String,
    dir: PathBuf,
    out_path: PathBuf,
    err_path: PathBuf,
    timeout: Duration,
}

impl Child {
    /// PID of the process started (casco itself; setpriv execs it in place).
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Sends a signal to the process itself (not its group).
    pub fn signal(&self, sig: Signal) {
        kill(Pid::from_raw(self.pid()), sig).unwrap_or_else(|e| panic!("kill -{sig} {}: {e}", self.pid()));
    }

    /// Sends SIGKILL to its whole process group (what it forked without
    /// leaving the group goes too).
    pub fn kill_group(&self) {
        let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
    }

    /// Its exit status if it has finished, without waiting.
    pub fn try_status(&mut self) -> Option<i32> {
        if self.status.is_none()
            && let Ok(Some(st)) = self.child.try_wait()
        {
            self.status = Some(status_code(st));
        }
        self.status
    }

    /// What it wrote to stdout so far.
    pub fn stdout_so_far(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.out_path).unwrap_or_default()).into_owned()
    }

    /// What it wrote to stderr so far.
    pub fn stderr_so_far(&self) -> String {
        String::from_utf8_lossy(&fs::read(&self.err_path).unwrap_or_default()).into_owned()
    }

    /// Waits for it to finish (within its timeout, counted from now) and returns
    /// what it did; on timeout kills its process group and panics.
    #[track_caller]
    pub fn wait(&mut self) -> Output {
        let deadline = Instant::now() + self.timeout;
        while self.try_status().is_none() {
            if Instant::now() >= deadline {
                let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
                let _ = self.child.wait();
                panic!(
                    "timed out after {:?} waiting for a background command; killed its process group\n\
                     command: {}\ntest dir: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                    self.timeout,
                    self.cmdline,
                    self.dir.display(),
                    self.stdout_so_far(),
                    self.stderr_so_far()
                );
            }
            thread::sleep(Duration::from_millis(10));
        }
        Output {
            status: self.status.unwrap_or(-1),
            stdout: self.stdout_so_far(),
            stdout_raw: fs::read(&self.out_path).unwrap_or_default(),
            stderr: self.stderr_so_far(),
            cmdline: self.cmdline.clone(),
            dir: self.dir.clone(),
        }
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if self.try_status().is_none() {
            let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

/// Polls `cond` every 20 ms until it holds; panics naming `desc` after `timeout`.
#[track_caller]
pub fn wait_until(desc: &str, timeout: Duration, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        if start.elapsed() >= timeout {
            panic!("timed out after {timeout:?} waiting for {desc}");
        }
        thread::sleep(Duration::from_millis(20));
    }
}

// ---------------------------------------------------------------------------
// Leftovers: processes and mounts
// ---------------------------------------------------------------------------

/// Mount points under `dir` in this process's mount namespace (from
/// /proc/self/mountinfo), in mount order.
pub fn stray_mounts(dir: &Path) -> Vec<PathBuf> {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
    let dirs = [
        dir.to_path_buf(),
        fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf()),
    ];
    info.lines()
        .filter_map(|line| line.split(' ').nth(4))
        .map(|m| PathBuf::from(unescape_mountinfo(m)))
        .filter(|m| dirs.iter().any(|d| m.starts_with(d)))
        .collect()
}

/// mountinfo escapes space, tab, newline and backslash as \ooo.
fn unescape_mountinfo(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Processes that belong to `dir`: their command line mentions it (casco and
/// its monitors get `--root DIR/root`), or their root filesystem comes from it
/// (a container: in its mount namespace, the mount on `/` names the dir, as
/// overlay's `upperdir=` or a bind mount's source). One line each: pid, cmdline.
pub fn leftover_processes(dir: &Path) -> Vec<String> {
    let needle = format!("{}/", dir.display());
    let me = std::process::id();
    let my_mnt = fs::read_link("/proc/self/ns/mnt").ok();
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else {
            continue;
        };
        if pid == me {
            continue;
        }
        let proc_dir = entry.path();
        let cmdline = fs::read(proc_dir.join("cmdline"))
            .map(|c| String::from_utf8_lossy(&c).replace('\0', " ").trim().to_string())
            .unwrap_or_default();
        let mentioned = cmdline.contains(&needle) || cmdline.ends_with(&*dir.to_string_lossy());
        // Mounts propagate into other namespaces (even PID 1's), so only the
        // mount on "/" tells whose root the dir is.
        let rooted = !mentioned
            && fs::read_link(proc_dir.join("ns/mnt")).ok() != my_mnt
            && fs::read_to_string(proc_dir.join("mountinfo")).is_ok_and(|m| {
                m.lines()
                    .any(|l| l.split(' ').nth(4) == Some("/") && l.contains(&needle))
            });
        if mentioned || rooted {
            let why = if mentioned {
                ""
            } else {
                " (its root filesystem is in the test dir)"
            };
            found.push(format!("pid {pid}{why}: {cmdline}"));
        }
    }
    found
}

/// Asserts that nothing of the env is left: no process that belongs to its dir,
/// no mount under it, `casco ps -aq` empty and no container directory in the
/// store. Processes and mounts get up to 3 s to go away (a monitor exits after
/// its container).
#[track_caller]
pub fn assert_no_leftovers(env: &TestEnv) {
    let deadline = Instant::now() + Duration::from_secs(3);
    let (procs, mounts) = loop {
        let procs = leftover_processes(env.dir());
        let mounts = stray_mounts(env.dir());
        if (procs.is_empty() && mounts.is_empty()) || Instant::now() >= deadline {
            break (procs, mounts);
        }
        thread::sleep(Duration::from_millis(50));
    };
    let mut problems = Vec::new();
    if !procs.is_empty() {
        problems.push(format!("processes left:\n  {}", procs.join("\n  ")));
    }
    if !mounts.is_empty() {
        let list: Vec<String> = mounts.iter().map(|m| m.display().to_string()).collect();
        problems.push(format!("mounts left:\n  {}", list.join("\n  ")));
    }
    let ps = env.casco(["ps", "-aq"]).run();
    if ps.status != 0 {
        problems.push(ps.report("`ps -aq` failed"));
    } else if !ps.stdout_trim().is_empty() {
        problems.push(format!("`ps -aq` still lists:\n{}", ps.stdout));
    }
    let stored = env.stored_containers();
    if !stored.is_empty() {
        problems.push(format!("store still has containers/: {stored:?}"));
    }
    assert!(
        problems.is_empty(),
        "leftovers in {}:\n{}",
        env.dir().display(),
        problems.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Tables (ps, images, top)
// ---------------------------------------------------------------------------

/// Column output with a header line, as podman prints it: columns are separated
/// by two or more spaces and every row starts its fields at the header's offsets.
#[derive(Debug, Clone)]
pub struct Table {
    pub columns: Vec<String>,
    pub rows: Vec<BTreeMap<String, String>>,
}

impl Table {
    pub fn parse(text: &str) -> Result<Table, String> {
        let mut lines = text.lines();
        let header: Vec<char> = lines.next().ok_or("no header line")?.chars().collect();
        // Column starts: the first char, and every non-space after two or more spaces.
        let mut starts = Vec::new();
        let mut spaces = 2;
        for (i, c) in header.iter().enumerate() {
            if *c == ' ' {
                spaces += 1;
            } else {
                if spaces >= 2 {
                    starts.push(i);
                }
                spaces = 0;
            }
        }
        if starts.is_empty() {
            return Err("empty header line".into());
        }
        let cut = |line: &[char], i: usize| -> String {
            let from = starts[i].min(line.len());
            let to = starts.get(i + 1).map_or(line.len(), |&e| e.min(line.len()));
            line[from..to].iter().collect::<String>().trim().to_string()
        };
        let columns: Vec<String> = (0..starts.len()).map(|i| cut(&header, i)).collect();
        let rows = lines
            .filter(|l| !l.trim().is_empty())
            .map(|l| {
                let line: Vec<char> = l.chars().collect();
                (0..starts.len()).map(|i| (columns[i].clone(), cut(&line, i))).collect()
            })
            .collect();
        Ok(Table { columns, rows })
    }

    /// The values of one column, top to bottom.
    pub fn column(&self, name: &str) -> Vec<&str> {
        self.rows
            .iter()
            .map(|r| r.get(name).map_or("", String::as_str))
            .collect()
    }
}

// ---------------------------------------------------------------------------
// Pseudo-terminal
// ---------------------------------------------------------------------------

/// A child process on a pseudo-terminal: its stdin, stdout and stderr are the
/// pty's slave side, which is its controlling terminal (new session).
pub struct Pty {
    master: OwnedFd,
    child: std::process::Child,
    /// Read but not yet returned by `read_until`.
    pending: Vec<u8>,
    /// Everything read, for failure messages.
    transcript: Vec<u8>,
    status: Option<i32>,
    eof: bool,
}

impl Pty {
    /// Starts `cmd` on a fresh pty. `cmd` must not set a process group (the
    /// child becomes a session leader).
    pub fn spawn(cmd: &mut Command) -> Pty {
        Pty::spawn_sized(cmd, 24, 80)
    }

    /// Like [`Pty::spawn`], with the terminal `rows` x `cols` from the start.
    pub fn spawn_sized(cmd: &mut Command, rows: u16, cols: u16) -> Pty {
        Pty::spawn_owned(cmd, rows, cols, None)
    }

    /// Like [`Pty::spawn_sized`]; the terminal (/dev/pts/N) is given to `owner`
    /// (uid, gid) first, as login does, so a command that switched to that user
    /// can reopen it.
    pub fn spawn_owned(cmd: &mut Command, rows: u16, cols: u16, owner: Option<(u32, u32)>) -> Pty {
        let size = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        let pair = nix::pty::openpty(&size, None).expect("openpty");
        for fd in [&pair.master, &pair.slave] {
            fcntl(fd, FcntlArg::F_SETFD(FdFlag::FD_CLOEXEC)).expect("set FD_CLOEXEC on the pty");
        }
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::fchown(&pair.slave, Some(uid), Some(gid)).expect("chown the pty slave");
        }
        let dup = |fd: &OwnedFd| Stdio::from(fd.try_clone().expect("dup pty slave"));
        cmd.stdin(dup(&pair.slave))
            .stdout(dup(&pair.slave))
            .stderr(dup(&pair.slave));
        // SAFETY: the closure runs in the child between fork and exec and makes
        // only two async-signal-safe system calls (setsid, ioctl) on fd 0, which
        // Command has already made the pty slave; it allocates nothing.
        unsafe {
            cmd.pre_exec(|| {
                nix::unistd::setsid().map_err(io::Error::from)?;
                if libc::ioctl(0, libc::TIOCSCTTY, 0) == -1 {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let child = spawn_retrying(cmd).unwrap_or_else(|e| panic!("spawn {cmd:?} on a pty: {e}"));
        // Our copy of the slave must go, or reads would never see the child hang up.
        drop(pair.slave);
        let flags = fcntl(&pair.master, FcntlArg::F_GETFL).expect("F_GETFL on the pty master");
        fcntl(
            &pair.master,
            FcntlArg::F_SETFL(OFlag::from_bits_truncate(flags) | OFlag::O_NONBLOCK),
        )
        .expect("set O_NONBLOCK on the pty master");
        Pty {
            master: pair.master,
            child,
            pending: Vec::new(),
            transcript: Vec::new(),
            status: None,
            eof: false,
        }
    }

    /// PID of the child.
    pub fn pid(&self) -> i32 {
        self.child.id() as i32
    }

    /// Types `bytes` into the terminal.
    #[track_caller]
    pub fn write(&mut self, bytes: &[u8]) {
        let mut rest = bytes;
        let deadline = Instant::now() + Duration::from_secs(10);
        while !rest.is_empty() {
            match nix::unistd::write(&self.master, rest) {
                Ok(n) => rest = &rest[n..],
                Err(Errno::EAGAIN) | Err(Errno::EINTR) => {
                    assert!(
                        Instant::now() < deadline,
                        "pty write blocked for 10 s; {}",
                        self.context()
                    );
                    self.pump(Duration::from_millis(10));
                }
                Err(e) => panic!("pty write: {e}; {}", self.context()),
            }
        }
    }

    /// Reads until `pattern` appears; returns everything up to and including it
    /// (the rest stays for the next call). Panics with the transcript on timeout
    /// or when the terminal closes first.
    #[track_caller]
    pub fn read_until(&mut self, pattern: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(at) = find(&self.pending, pattern.as_bytes()) {
                let end = at + pattern.len();
                let got: Vec<u8> = self.pending.drain(..end).collect();
                return String::from_utf8_lossy(&got).into_owned();
            }
            let now = Instant::now();
            if self.eof {
                panic!("terminal closed before {pattern:?} appeared; {}", self.context());
            }
            if now >= deadline {
                panic!(
                    "timed out after {timeout:?} waiting for {pattern:?} on the pty; {}",
                    self.context()
                );
            }
            self.pump(deadline - now);
        }
    }

    /// Sets the terminal size (TIOCSWINSZ on the master); the child's foreground
    /// process group gets SIGWINCH.
    pub fn set_size(&self, rows: u16, cols: u16) {
        let ws = libc::winsize {
            ws_row: rows,
            ws_col: cols,
            ws_xpixel: 0,
            ws_ypixel: 0,
        };
        // SAFETY: the master fd is open for the lifetime of `self`, and TIOCSWINSZ
        // only reads a `winsize`, which `&ws` points to for the whole call.
        let r = unsafe { libc::ioctl(self.master.as_raw_fd(), libc::TIOCSWINSZ, &ws) };
        assert!(r == 0, "TIOCSWINSZ {rows}x{cols}: {}", io::Error::last_os_error());
    }

    /// Waits (up to 60 s, reading the terminal meanwhile) for the child to exit;
    /// returns its exit code, or 128+N for a death by signal N.
    #[track_caller]
    pub fn wait(&mut self) -> i32 {
        let deadline = Instant::now() + DEFAULT_TIMEOUT;
        loop {
            if let Some(s) = self.status {
                return s;
            }
            if let Ok(Some(st)) = self.child.try_wait() {
                // What it wrote before it went is still buffered in the pty.
                self.drain();
                self.status = Some(status_code(st));
                continue;
            }
            if Instant::now() >= deadline {
                panic!("pty child still running after {DEFAULT_TIMEOUT:?}; {}", self.context());
            }
            if self.eof {
                thread::sleep(Duration::from_millis(10));
            } else {
                self.pump(Duration::from_millis(50));
            }
        }
    }

    /// Everything the child wrote so far.
    pub fn transcript(&self) -> String {
        String::from_utf8_lossy(&self.transcript).into_owned()
    }

    /// Reads whatever output is already there, without waiting for more.
    fn drain(&mut self) {
        loop {
            let before = self.transcript.len();
            self.pump(Duration::ZERO);
            if self.eof || self.transcript.len() == before {
                return;
            }
        }
    }

    /// Waits up to `max` for output and appends what came to `pending`.
    fn pump(&mut self, max: Duration) {
        if self.eof {
            thread::sleep(max.min(Duration::from_millis(10)));
            return;
        }
        let ms = u16::try_from(max.as_millis().min(100)).unwrap_or(100);
        let mut fds = [PollFd::new(self.master.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, PollTimeout::from(ms)) {
            Ok(0) | Err(Errno::EINTR) => return,
            Ok(_) => {}
            Err(e) => panic!("poll on the pty: {e}"),
        }
        let mut buf = [0u8; 4096];
        loop {
            match nix::unistd::read(&self.master, &mut buf) {
                Ok(0) | Err(Errno::EIO) => {
                    // EIO: every slave fd is closed, the child hung up.
                    self.eof = true;
                    return;
                }
                Ok(n) => {
                    self.pending.extend_from_slice(&buf[..n]);
                    self.transcript.extend_from_slice(&buf[..n]);
                }
                Err(Errno::EAGAIN) => return,
                Err(Errno::EINTR) => {}
                Err(e) => panic!("read from the pty: {e}"),
            }
        }
    }

    fn context(&self) -> String {
        format!("pid {}; transcript so far:\n{:?}", self.pid(), self.transcript())
    }
}

impl Drop for Pty {
    fn drop(&mut self) {
        if self.status.is_none() && matches!(self.child.try_wait(), Ok(None)) {
            // The child leads its own session and process group.
            let _ = killpg(Pid::from_raw(self.pid()), Signal::SIGKILL);
            let _ = self.child.wait();
        }
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    haystack.windows(needle.len()).position(|w| w == needle)
}

// ---------------------------------------------------------------------------
// JSON shape checks
// ---------------------------------------------------------------------------

/// The JSON type of a value: null, bool, number, string, array or object.
pub fn json_kind(v: &serde_json::Value) -> &'static str {
    match v {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "bool",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}

/// Asserts that `obj` has each key with one of the given JSON types
/// (`"string"`, `"null|array"`, ...), printing the whole object on failure.
#[track_caller]
pub fn assert_keys(obj: &serde_json::Value, what: &str, keys: &[(&str, &str)]) {
    let mut wrong = Vec::new();
    for (key, kinds) in keys {
        match obj.get(key) {
            None => wrong.push(format!("{key}: missing (want {kinds})")),
            Some(v) if !kinds.split('|').any(|k| k == json_kind(v)) => {
                wrong.push(format!("{key}: {} {v} (want {kinds})", json_kind(v)))
            }
            Some(_) => {}
        }
    }
    assert!(
        wrong.is_empty(),
        "{what}: wrong keys:\n  {}\nin:\n{}",
        wrong.join("\n  "),
        serde_json::to_string_pretty(obj).unwrap_or_default()
    );
}

/// The OCI name of this machine's architecture (amd64, arm64, ...).
pub fn oci_arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
}

/// Whether `s` looks like an RFC 3339 timestamp (`2026-11-22T23:43:28.498701586Z`
/// or with a numeric offset).
pub fn is_rfc3339(s: &str) -> bool {
    let b = s.as_bytes();
    let digits = |r: std::ops::Range<usize>| b.get(r).is_some_and(|d| d.iter().all(u8::is_ascii_digit));
    if !(b.len() >= 20
        && digits(0..4)
        && b[4] == b'-'
        && digits(5..7)
        && b[7] == b'-'
        && digits(8..10)
        && b[10] == b'T'
        && digits(11..13)
        && b[13] == b':'
        && digits(14..16)
        && b[16] == b':'
        && digits(17..19))
    {
        return false;
    }
    let mut rest = &s[19..];
    if let Some(frac) = rest.strip_prefix('.') {
        let n = frac.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return false;
        }
        rest = &frac[n..];
    }
    rest == "Z"
        || (rest.len() == 6
            && (rest.starts_with('+') || rest.starts_with('-'))
            && rest.as_bytes()[3] == b':'
            && rest[1..3].bytes().chain(rest[4..].bytes()).all(|c| c.is_ascii_digit()))
}

/// Seconds since the Unix epoch, now.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Entries of a store directory (`layers`, `blobs/sha256`, ...) other than
/// lock files; empty when the directory is absent.
pub fn store_entries(env: &TestEnv, sub: &str) -> Vec<String> {
    let Ok(entries) = std::fs::read_dir(env.store_root().join(sub)) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| !n.ends_with(".lock"))
        .collect();
    names.sort();
    names
}
