//! The container's first process, from clone to exec. It runs in a
//! single-threaded fork of casco: failures go to the parent over the error
//! pipe (first byte: exit code, then the message), never to stdout/stderr,
//! which already belong to the container.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result};
use nix::unistd::{Gid, Uid};

use super::{InitPlan, ProcessPlan, rootfs, user};
use crate::exit::{CANNOT_INVOKE, ENGINE, NOT_FOUND};
use crate::sys;

/// The descriptors the child gets from its parent.
pub struct ChildChannels {
    /// Read end of the lifeline: end-of-file once the parent is gone; with a
    /// user namespace, first one byte once the maps are written.
    pub go: OwnedFd,
    pub wait_for_maps: bool,
    /// Write end, close-on-exec: the error report.
    pub error: OwnedFd,
    /// The container's stdin/stdout/stderr, or None for a tty / /dev/null.
    pub stdio: [Option<OwnedFd>; 3],
    /// With a tty: a socket to send the pty master over.
    pub tty_socket: Option<OwnedFd>,
    /// A cgroup v2 cgroup.procs to join by writing (clone3 was unavailable).
    pub join_cgroup: Option<std::path::PathBuf>,
    /// `--init`: the sealed copy of casco to continue from.
    pub sealed: Option<OwnedFd>,
}

/// An error with the exit code the parent should report.
pub struct ChildError {
    pub code: u8,
    pub message: String,
}

fn fail(code: u8, e: anyhow::Error) -> ChildError {
    ChildError {
        code,
        message: format!("{e:#}"),
    }
}

/// Entry point of the child; never returns.
pub fn child_main(plan: &InitPlan, ch: ChildChannels) -> ! {
    sys::process::set_process_name("casco-init");
    let error_pipe = File::from(
        ch.error
            .try_clone()
            .unwrap_or_else(|_| sys::process::exit_now(ENGINE as i32)),
    );
    let err = match run(plan, ch) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    report(error_pipe, err)
}

/// Sends the error to the parent and exits with its code.
fn report(mut error_pipe: File, err: ChildError) -> ! {
    let mut msg = vec![err.code];
    msg.extend_from_slice(err.message.as_bytes());
    let _ = error_pipe.write_all(&msg);
    sys::process::exit_now(err.code as i32)
}

/// The rest of a `--init` container's set-up, handed to the sealed copy.
#[derive(serde::Serialize, serde::Deserialize)]
struct Continuation {
    plan: InitPlan,
    error: RawFd,
    stdio: [Option<RawFd>; 3],
    tty_socket: Option<RawFd>,
}

/// argv[0] of a `--init` container's first process once it re-exec'd.
pub const INIT_ARGV0: &str = "casco-init";

/// Called first in `main`: when this process is a `--init` container's first
/// process, re-exec'd from the sealed copy, finish setting the container up.
pub fn run_if_init() {
    let Some(c) = crate::handoff::receive::<Continuation>(INIT_ARGV0) else {
        return;
    };
    let error = File::from(crate::handoff::adopt(c.error));
    let error_report = error
        .try_clone()
        .unwrap_or_else(|_| sys::process::exit_now(ENGINE as i32));
    let stdio = c.stdio.map(|f| f.map(crate::handoff::adopt));
    let tty_socket = c.tty_socket.map(crate::handoff::adopt);
    let err = match set_up_and_exec(&c.plan, stdio, tty_socket) {
        Ok(never) => match never {},
        Err(e) => e,
    };
    drop(error);
    report(error_report, err)
}

fn run(plan: &InitPlan, ch: ChildChannels) -> Result<std::convert::Infallible, ChildError> {
    // Wait until the parent has written our user-namespace maps: until then we
    // have no usable ID and no capability over anything.
    let mut go = File::from(ch.go);
    if ch.wait_for_maps {
        let mut b = [0u8; 1];
        if !matches!(go.read(&mut b), Ok(1)) {
            sys::process::exit_now(ENGINE as i32);
        }
        let _ = sys::set_dumpable(false);
    }
    // Die with the parent (casco run or the monitor): a container is never left
    // without the process that records its end. If the parent died before the
    // signal was armed, the lifeline has hung up already (getppid() cannot
    // tell: it is 0 in a new PID namespace).
    let _ = sys::process::set_parent_death_signal(libc::SIGKILL);
    let mut pfd = [nix::poll::PollFd::new(go.as_fd(), nix::poll::PollFlags::POLLIN)];
    if nix::poll::poll(&mut pfd, nix::poll::PollTimeout::ZERO).unwrap_or(0) > 0 {
        sys::process::exit_now(ENGINE as i32);
    }
    drop(go);
    nix::sys::stat::umask(nix::sys::stat::Mode::empty());

    // Join the cgroup first, then unshare the cgroup namespace so its root is
    // the container's own cgroup.
    for procs in plan.cgroup_procs.iter().chain(ch.join_cgroup.iter()) {
        std::fs::write(procs, "0")
            .with_context(|| format!("join cgroup {}", procs.display()))
            .map_err(|e| fail(ENGINE, e))?;
    }
    nix::sched::unshare(nix::sched::CloneFlags::CLONE_NEWCGROUP)
        .context("create the cgroup namespace")
        .map_err(|e| fail(ENGINE, e))?;

    if plan.new_netns {
        sys::net::loopback_up()
            .context("bring up the loopback interface")
            .map_err(|e| fail(ENGINE, e))?;
    }
    // `--init`: PID 1 stays for the container's life, so it must not be the
    // host's casco. Become the sealed copy now, while the host's dynamic
    // loader is still reachable; it carries on from here. Exec also ties the
    // process's memory to the container's user namespace, so a rootless
    // `exec` may enter it.
    if let Some(sealed) = &ch.sealed {
        let raw = |f: &Option<OwnedFd>| f.as_ref().map(|f| f.as_raw_fd());
        let c = Continuation {
            plan: plan.clone(),
            error: ch.error.as_raw_fd(),
            stdio: [raw(&ch.stdio[0]), raw(&ch.stdio[1]), raw(&ch.stdio[2])],
            tty_socket: raw(&ch.tty_socket),
        };
        let mut keep = vec![c.error];
        keep.extend(c.stdio.iter().flatten());
        keep.extend(c.tty_socket);
        let e = crate::handoff::exec_with(crate::handoff::Target::Fd(sealed.as_fd()), INIT_ARGV0, &c, &keep);
        return Err(fail(ENGINE, e.context("exec the sealed init")));
    }
    set_up_and_exec(plan, ch.stdio, ch.tty_socket)
}

/// Root filesystem, pivot, hostname, terminal, credentials, exec.
fn set_up_and_exec(
    plan: &InitPlan,
    stdio: [Option<OwnedFd>; 3],
    tty_socket: Option<OwnedFd>,
) -> Result<std::convert::Infallible, ChildError> {
    let root = rootfs::prepare_rootfs(plan).map_err(|e| fail(ENGINE, e))?;
    sys::mount::pivot_into(root.as_fd())
        .context("pivot_root into the container")
        .map_err(|e| fail(ENGINE, e))?;
    drop(root);
    nix::unistd::sethostname(&plan.hostname)
        .context("set the hostname")
        .map_err(|e| fail(ENGINE, e))?;

    setup_stdio(plan, stdio, tty_socket).map_err(|e| fail(ENGINE, e))?;
    exec_process(&plan.process)
}

fn setup_stdio(plan: &InitPlan, stdio: [Option<OwnedFd>; 3], tty_socket: Option<OwnedFd>) -> Result<()> {
    nix::unistd::setsid().context("setsid")?;
    if plan.process.tty {
        let sock = tty_socket.context("no tty socket")?;
        let (master, slave) = sys::term::open_pty().context("allocate a pseudo-terminal")?;
        if let Some((rows, cols)) = plan.process.tty_size {
            let _ = sys::term::set_window_size(slave.as_fd(), rows, cols);
        }
        sys::term::send_fd(sock.as_fd(), master.as_fd()).context("send the terminal to casco")?;
        drop(master);
        drop(sock);
        sys::term::set_controlling_terminal(slave.as_fd()).context("set the controlling terminal")?;
        // /dev/console is the terminal, as in runc.
        if let Ok(name) = nix::unistd::ttyname(slave.as_fd())
            && let Ok(f) = File::create("/dev/console")
        {
            drop(f);
            let _ = nix::mount::mount(
                Some(&name),
                "/dev/console",
                None::<&str>,
                nix::mount::MsFlags::MS_BIND,
                None::<&str>,
            );
        }
        for (i, fd) in stdio.into_iter().enumerate() {
            // A tty container may still have a piped stdin (-t without -i uses /dev/null).
            match fd {
                Some(fd) => dup_to(fd.as_raw_fd(), i as RawFd)?,
                None => dup_to(slave.as_raw_fd(), i as RawFd)?,
            }
        }
        return Ok(());
    }
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .context("open /dev/null")?;
    for (i, fd) in stdio.into_iter().enumerate() {
        match fd {
            Some(fd) => dup_to(fd.as_raw_fd(), i as RawFd)?,
            None => dup_to(null.as_raw_fd(), i as RawFd)?,
        }
    }
    Ok(())
}

fn dup_to(from: RawFd, to: RawFd) -> Result<()> {
    sys::fd::dup_onto(from, to).with_context(|| format!("dup2 {from} to {to}"))
}

/// Searches PATH the way execvp does, inside the container. Returns the path to
/// exec, or the exit code and message for "not found" / "cannot execute".
pub(crate) fn find_executable(arg0: &str, env: &[String]) -> Result<String, ChildError> {
    let check = |p: &str| -> Result<bool, ChildError> {
        match std::fs::metadata(p) {
            Ok(md) if md.is_dir() => Err(ChildError {
                code: CANNOT_INVOKE,
                message: format!("{p}: is a directory"),
            }),
            Ok(_) => Ok(true),
            Err(_) => Ok(false),
        }
    };
    if arg0.is_empty() {
        return Err(ChildError {
            code: NOT_FOUND,
            message: "no command given: the image has no CMD or ENTRYPOINT".into(),
        });
    }
    if arg0.contains('/') {
        return if check(arg0)? {
            Ok(arg0.to_string())
        } else {
            Err(ChildError {
                code: NOT_FOUND,
                message: format!("{arg0}: no such file or directory"),
            })
        };
    }
    let path = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(crate::container::DEFAULT_PATH);
    for dir in path.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let cand = format!("{dir}/{arg0}");
        if let Ok(md) = std::fs::metadata(&cand)
            && md.is_file()
        {
            return Ok(cand);
        }
    }
    Err(ChildError {
        code: NOT_FOUND,
        message: format!("{arg0}: executable file not found in $PATH"),
    })
}

pub(crate) fn set_credentials(p: &ProcessPlan, u: &user::ResolvedUser) -> Result<()> {
    use caps::{CapSet, Capability};
    let keep: std::collections::HashSet<Capability> = p.caps.iter().copied().collect();
    // The bounding set first, while we still hold CAP_SETPCAP.
    for c in caps::all() {
        if !keep.contains(&c) && caps::has_cap(None, CapSet::Bounding, c).unwrap_or(false) {
            caps::drop(None, CapSet::Bounding, c).with_context(|| format!("drop {c} from the bounding set"))?;
        }
    }
    // Keep permitted capabilities across the UID change.
    nix::sys::prctl::set_keepcaps(true).context("keep capabilities")?;
    let gids: Vec<Gid> = u.additional_gids.iter().map(|g| Gid::from_raw(*g)).collect();
    if let Err(e) = nix::unistd::setgroups(&gids) {
        // A single-ID user namespace forbids setgroups; that only matters when
        // groups were asked for.
        if !gids.is_empty() {
            return Err(e).context("set supplementary groups");
        }
    }
    let gid = Gid::from_raw(u.gid);
    nix::unistd::setresgid(gid, gid, gid).with_context(|| format!("set GID {}", u.gid))?;
    let uid = Uid::from_raw(u.uid);
    nix::unistd::setresuid(uid, uid, uid).with_context(|| format!("set UID {}", u.uid))?;
    let (eff, amb): (std::collections::HashSet<Capability>, Vec<Capability>) = if u.uid == 0 {
        (keep.clone(), Vec::new())
    } else {
        // podman: a non-root user holds only the capabilities added explicitly.
        let added: std::collections::HashSet<Capability> =
            p.added_caps.iter().copied().filter(|c| keep.contains(c)).collect();
        let amb = added.iter().copied().collect();
        (added, amb)
    };
    // Effective first: it must stay a subset of permitted at every step.
    caps::set(None, CapSet::Effective, &eff).context("set effective capabilities")?;
    caps::set(None, CapSet::Permitted, &eff).context("set permitted capabilities")?;
    caps::set(None, CapSet::Inheritable, &amb.iter().copied().collect()).context("set inheritable capabilities")?;
    for c in amb {
        caps::raise(None, CapSet::Ambient, c).with_context(|| format!("raise ambient {c}"))?;
    }
    Ok(())
}

/// Creates the missing directories of `cwd`, 0755 and owned by the user the
/// process runs as (what buildah and Docker do for a new WORKDIR).
fn create_workdir(cwd: &str, uid: u32, gid: u32) -> Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    let mut path = std::path::PathBuf::from("/");
    for part in std::path::Path::new(cwd).components().skip(1) {
        path.push(part);
        if std::fs::symlink_metadata(&path).is_ok() {
            continue;
        }
        std::fs::DirBuilder::new().mode(0o755).create(&path)?;
        // The umask may have taken bits away.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o755))?;
        std::os::unix::fs::chown(&path, Some(uid), Some(gid))?;
    }
    Ok(())
}

fn exec_process(p: &ProcessPlan) -> Result<std::convert::Infallible, ChildError> {
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    // runc and podman: a user that cannot be resolved means the command cannot be invoked.
    let u = user::resolve(&p.user, &p.group_add, &passwd, &group).map_err(|e| fail(CANNOT_INVOKE, e))?;
    let mut env = p.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    let cwd = if p.cwd.is_empty() { "/" } else { p.cwd.as_str() };
    if std::fs::metadata(cwd).is_err() {
        create_workdir(cwd, u.uid, u.gid)
            .with_context(|| format!("create working directory {cwd}"))
            .map_err(|e| fail(ENGINE, e))?;
    }
    nix::unistd::chdir(cwd)
        .with_context(|| format!("change to working directory {cwd}"))
        .map_err(|e| fail(ENGINE, e))?;
    let arg0 = p.args.first().map(String::as_str).unwrap_or("");
    let path = find_executable(arg0, &env)?;

    set_credentials(p, &u).map_err(|e| fail(ENGINE, e))?;
    sys::process::set_no_new_privs()
        .context("set no_new_privs")
        .map_err(|e| fail(ENGINE, e))?;
    // The UID change cleared it; and check the parent did not die meanwhile.
    let _ = sys::process::set_parent_death_signal(libc::SIGKILL);
    let _ = sys::set_dumpable(false);
    // No descriptor of ours may reach the container's process.
    sys::process::cloexec_from(3)
        .context("close descriptors")
        .map_err(|e| fail(ENGINE, e))?;

    let cstrs = |v: &[String]| -> Result<Vec<CString>, ChildError> {
        v.iter()
            .map(|s| {
                CString::new(s.as_str()).map_err(|_| ChildError {
                    code: ENGINE,
                    message: format!("NUL byte in {s:?}"),
                })
            })
            .collect()
    };
    let argv = cstrs(&p.args)?;
    let envp = cstrs(&env)?;
    let cpath = CString::new(path.clone()).map_err(|_| ChildError {
        code: ENGINE,
        message: "NUL in path".into(),
    })?;

    if p.init {
        return run_init(&cpath, &argv, &envp);
    }
    sys::signal::reset_dispositions();
    let _ = sys::signal::set_mask(&nix::sys::signal::SigSet::empty());
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let e = nix::unistd::execve(&cpath, &argv, &envp).unwrap_err();
    Err(exec_error(&path, e))
}

fn exec_error(path: &str, e: nix::errno::Errno) -> ChildError {
    let code = match e {
        nix::errno::Errno::ENOENT => NOT_FOUND,
        _ => CANNOT_INVOKE,
    };
    ChildError {
        code,
        message: format!("exec {path}: {}", e.desc().to_lowercase()),
    }
}

/// `--init`: stay as PID 1, forward signals to the command, reap every zombie,
/// and exit with the command's status.
fn run_init(path: &CString, argv: &[CString], envp: &[CString]) -> Result<std::convert::Infallible, ChildError> {
    use nix::sys::signal::{SigSet, Signal};
    use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
    let child = sys::process::clone_fork_in_child(0)
        .map_err(|e| fail(ENGINE, anyhow::Error::from(e).context("fork the command")))?;
    let Some(child) = child else {
        sys::signal::reset_dispositions();
        nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
        let _ = sys::signal::set_mask(&SigSet::empty());
        let e = nix::unistd::execve(path, argv, envp).unwrap_err();
        let err = exec_error(&path.to_string_lossy(), e);
        // Our error pipe is close-on-exec and still open here: report through it.
        let _ = std::io::stderr().write_all(format!("{}\n", err.message).as_bytes());
        sys::process::exit_now(err.code as i32);
    };
    // The error pipe must close so the parent sees a successful start.
    let _ = sys::process::close_from(3);
    let mask = SigSet::all();
    let _ = sys::signal::set_mask(&mask);
    loop {
        let sig = match mask.wait() {
            Ok(s) => s,
            Err(_) => continue,
        };
        if sig == Signal::SIGCHLD {
            loop {
                match waitpid(None, Some(WaitPidFlag::WNOHANG)) {
                    Ok(WaitStatus::Exited(pid, code)) if pid == child => sys::process::exit_now(code),
                    Ok(WaitStatus::Signaled(pid, s, _)) if pid == child => sys::process::exit_now(128 + s as i32),
                    Ok(WaitStatus::StillAlive) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        } else {
            let _ = nix::sys::signal::kill(child, sig);
        }
    }
}
