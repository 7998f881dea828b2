//! `exec`: a new process inside a running container.
//!
//! casco forks a joiner that enters the container's cgroup and then all its
//! namespaces at once (setns on a pidfd). Entering a PID namespace only applies
//! to children, so the joiner forks the real process as casco's own child
//! (CLONE_PARENT) and leaves. That process sets its terminal, user, working
//! directory and capabilities, then execs the command — through a sealed
//! in-memory copy of casco (see [`crate::trampoline`]) because, unlike a new
//! container, this namespace may hold hostile processes already.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;
use nix::unistd::Pid;

use super::init::{self, ChildError};
use super::{ProcessPlan, user};
use crate::cli::ExecArgs;
use crate::container::{self, Container};
use crate::exit::{CANNOT_INVOKE, Coded, ENGINE, ExitStatus};
use crate::monitor::{self, Io, Outcome, Sinks};
use crate::store::Store;
use crate::sys;

fn exec_plan(c: &Container, a: &ExecArgs) -> Result<ProcessPlan> {
    let mut env = c.config.env.clone();
    for f in &a.env_file {
        for e in container::create::read_env_file(f)? {
            container::create::set_env(&mut env, e);
        }
    }
    for e in &a.env {
        if e.contains('=') {
            container::create::set_env(&mut env, e.clone());
        } else if let Ok(v) = std::env::var(e) {
            container::create::set_env(&mut env, format!("{e}={v}"));
        }
    }
    if a.tty && !env.iter().any(|e| e.starts_with("TERM=")) {
        env.push("TERM=xterm".into());
    }
    let caps = super::capability_set(
        c.config.privileged || a.privileged,
        &c.config.cap_add,
        &c.config.cap_drop,
    )?;
    let added_caps = if a.privileged {
        caps.clone()
    } else {
        c.config
            .cap_add
            .iter()
            .filter(|x| !x.eq_ignore_ascii_case("all"))
            .map(|x| super::parse_capability(x))
            .collect::<Result<_>>()?
    };
    let tty_size = if a.tty {
        sys::term::window_size(std::io::stdin().as_fd()).ok()
    } else {
        None
    };
    Ok(ProcessPlan {
        args: a.command.clone(),
        env,
        cwd: a.workdir.clone().unwrap_or_else(|| c.config.workdir.clone()),
        user: a.user.clone().unwrap_or_else(|| c.config.user.clone()),
        group_add: c.config.group_add.clone(),
        caps,
        added_caps,
        tty: a.tty,
        tty_size,
        init: false,
    })
}

pub fn exec(store: &Store, a: &ExecArgs) -> Result<ExitStatus> {
    let c = container::resolve(store, &a.container)?;
    if !c.state.is_running() {
        bail!(
            "can only exec into running containers: {} is {}",
            c.config.name,
            c.state.status.name()
        );
    }
    let plan = exec_plan(&c, a)?;
    let pidfd = sys::process::pidfd_open(c.state.pid).context("open the container's process")?;
    if !sys::process::process_matches(c.state.pid, c.state.start_time) {
        bail!("container {} stopped", c.config.name);
    }
    let cgroup_procs = c
        .state
        .cgroup
        .as_ref()
        .and_then(|p| crate::cgroups::Manager::system().ok().map(|m| m.open(p).procs_files()))
        .unwrap_or_default();
    let sealed = crate::trampoline::sealed_self().context("prepare the exec helper")?;

    // Stdio: a terminal from inside the container, or ours (foreground), or
    // nothing (detached).
    let mut io = Io {
        stdout: None,
        stderr: None,
        tty: None,
        stdin: None,
    };
    let stdio: [Option<OwnedFd>; 3] = if a.detach || plan.tty {
        [None, None, None]
    } else {
        let sin = if a.interactive {
            Some(std::io::stdin().as_fd().try_clone_to_owned()?)
        } else {
            None
        };
        [
            sin,
            Some(std::io::stdout().as_fd().try_clone_to_owned()?),
            Some(std::io::stderr().as_fd().try_clone_to_owned()?),
        ]
    };
    let (mut signals, old_mask) = monitor::block_and_open_signals()?;
    let spawned = spawn_in(&c, &plan, &pidfd, &cgroup_procs, stdio, &sealed);
    let (pid, tty) = match spawned {
        Ok(x) => x,
        Err(e) => {
            let _ = sys::signal::set_mask(&old_mask);
            return Err(e);
        }
    };
    io.tty = tty;
    if a.detach {
        // Its parent is casco, which leaves now: the process is re-parented to
        // the container's init, inside the container.
        let _ = sys::signal::set_mask(&old_mask);
        return Ok(ExitStatus::Success);
    }
    let raw = if plan.tty && a.interactive && std::io::stdin().is_terminal() {
        Some(RawMode::enable())
    } else {
        None
    };
    let detach_keys = match &a.detach_keys {
        Some(k) => Some(crate::monitor::attach::parse_detach_keys(k)?),
        None => None,
    };
    let sinks = Sinks {
        log: None,
        echo: true,
        forward_stdin: plan.tty && a.interactive,
        attach: None,
        detach_keys,
    };
    let outcome = monitor::supervise(pid, io, sinks, &mut signals);
    drop(raw);
    let _ = sys::signal::set_mask(&old_mask);
    match outcome? {
        Outcome::Exited(code) => Ok(ExitStatus::from_wait(Some(code), None)),
    }
}

struct RawMode(Option<nix::sys::termios::Termios>);

impl RawMode {
    fn enable() -> RawMode {
        let fd = std::io::stdin();
        let Ok(saved) = nix::sys::termios::tcgetattr(fd.as_fd()) else {
            return RawMode(None);
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(fd.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawMode(Some(saved))
    }
}

impl Drop for RawMode {
    fn drop(&mut self) {
        if let Some(s) = &self.0 {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, s);
        }
    }
}

/// What the joiner needs, handed to the sealed copy of casco across exec.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct JoinRequest {
    pub plan: ProcessPlan,
    pub ns: libc::c_int,
    pub cgroup_procs: Vec<std::path::PathBuf>,
    pub pidfd: RawFd,
    pub err: RawFd,
    pub pid_pipe: RawFd,
    pub stdio: [Option<RawFd>; 3],
    pub tty_socket: Option<RawFd>,
}

/// Forks the joiner and returns the exec'd process (our child) and its pty.
fn spawn_in(
    c: &Container,
    plan: &ProcessPlan,
    pidfd: &OwnedFd,
    cgroup_procs: &[std::path::PathBuf],
    stdio: [Option<OwnedFd>; 3],
    sealed: &OwnedFd,
) -> Result<(Pid, Option<OwnedFd>)> {
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let (pid_r, pid_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let tty = if plan.tty {
        Some(
            nix::sys::socket::socketpair(
                nix::sys::socket::AddressFamily::Unix,
                nix::sys::socket::SockType::Stream,
                None,
                nix::sys::socket::SockFlag::SOCK_CLOEXEC,
            )
            .context("socketpair")?,
        )
    } else {
        None
    };
    let mut ns =
        libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC | libc::CLONE_NEWCGROUP;
    if c.config.network == "none" {
        ns |= libc::CLONE_NEWNET;
    }
    if c.config.id_mapping.is_some() {
        ns |= libc::CLONE_NEWUSER;
    }
    let (tp, tc) = match tty {
        Some((p, c)) => (Some(p), Some(c)),
        None => (None, None),
    };
    let req = JoinRequest {
        plan: plan.clone(),
        ns,
        cgroup_procs: cgroup_procs.to_vec(),
        pidfd: pidfd.as_raw_fd(),
        err: err_w.as_raw_fd(),
        pid_pipe: pid_w.as_raw_fd(),
        stdio: [0, 1, 2].map(|i: usize| stdio[i].as_ref().map(|f| f.as_raw_fd())),
        tty_socket: tc.as_ref().map(|f| f.as_raw_fd()),
    };
    let joiner = sys::process::clone_fork(0).context("fork")?;
    let Some(joiner) = joiner else {
        drop(err_r);
        drop(pid_r);
        drop(tp);
        let e = crate::trampoline::exec_joiner(sealed, &req);
        let mut m = vec![ENGINE];
        m.extend_from_slice(format!("{e:#}").as_bytes());
        let _ = File::from(err_w).write_all(&m);
        sys::process::exit_now(ENGINE as i32)
    };
    drop(err_w);
    drop(pid_w);
    drop(stdio);
    drop(tc);
    let mut pid_buf = Vec::new();
    File::from(pid_r)
        .read_to_end(&mut pid_buf)
        .context("read the exec process's PID")?;
    let _ = nix::sys::wait::waitpid(joiner, None);
    let pid =
        (pid_buf.len() == 4).then(|| Pid::from_raw(i32::from_ne_bytes(pid_buf[..4].try_into().expect("4 bytes"))));
    let mut master = None;
    if let (Some(p), Some(_)) = (&tp, pid) {
        master = sys::term::recv_fd(p.as_fd()).ok().flatten();
    }
    let mut report = Vec::new();
    File::from(err_r)
        .read_to_end(&mut report)
        .context("read the exec report")?;
    if !report.is_empty() {
        if let Some(p) = pid {
            let _ = nix::sys::wait::waitpid(p, None);
        }
        let code = if report[0] == 0 { ENGINE } else { report[0] };
        return Err(Coded::new(code, String::from_utf8_lossy(&report[1..]).into_owned()).into());
    }
    let pid = pid.context("the exec process did not start")?;
    Ok((pid, master))
}

/// The joiner, running from the sealed copy of casco: enters the container
/// and forks the process that execs the command. Never returns.
pub fn joiner_main(req: JoinRequest) -> ! {
    let own = |fd: RawFd| sys::fd::file_from_raw(fd);
    let mut err = own(req.err);
    let report = |err: &mut File, e: ChildError| -> ! {
        let mut m = vec![e.code];
        m.extend_from_slice(e.message.as_bytes());
        let _ = err.write_all(&m);
        sys::process::exit_now(e.code as i32)
    };
    // Everything we were handed is ours now; none of it may reach the command.
    for fd in [Some(req.err), Some(req.pid_pipe), Some(req.pidfd), req.tty_socket]
        .into_iter()
        .flatten()
    {
        let _ = nix::fcntl::fcntl(
            std::mem::ManuallyDrop::new(own(fd)).as_fd(),
            nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC),
        );
    }
    for p in &req.cgroup_procs {
        if let Err(e) = std::fs::write(p, "0") {
            report(
                &mut err,
                ChildError {
                    code: ENGINE,
                    message: format!("join cgroup {}: {e}", p.display()),
                },
            );
        }
    }
    let pidfd = OwnedFd::from(own(req.pidfd));
    if let Err(e) = nix::sched::setns(&pidfd, nix::sched::CloneFlags::from_bits_truncate(req.ns)) {
        report(
            &mut err,
            ChildError {
                code: ENGINE,
                message: format!("enter the container's namespaces: {e}"),
            },
        );
    }
    drop(pidfd);
    let child = match sys::process::clone_fork_in_child(libc::CLONE_PARENT) {
        Ok(c) => c,
        Err(e) => report(
            &mut err,
            ChildError {
                code: ENGINE,
                message: format!("fork into the container: {e}"),
            },
        ),
    };
    let pid_pipe = own(req.pid_pipe);
    match child {
        Some(pid) => {
            let mut p = pid_pipe;
            let _ = p.write_all(&pid.as_raw().to_ne_bytes());
            sys::process::exit_now(0)
        }
        None => {
            drop(pid_pipe);
            let stdio = req.stdio.map(|f| f.map(|fd| OwnedFd::from(own(fd))));
            let tty_socket = req.tty_socket.map(|fd| OwnedFd::from(own(fd)));
            let r = exec_child(&req.plan, stdio, tty_socket);
            match r {
                Ok(never) => match never {},
                Err(e) => report(&mut err, e),
            }
        }
    }
}

fn exec_child(
    plan: &ProcessPlan,
    stdio: [Option<OwnedFd>; 3],
    tty_socket: Option<OwnedFd>,
) -> Result<std::convert::Infallible, ChildError> {
    let fail = |e: anyhow::Error| ChildError {
        code: ENGINE,
        message: format!("{e:#}"),
    };
    let _ = sys::process::set_parent_death_signal(libc::SIGKILL);
    nix::unistd::setsid().context("setsid").map_err(fail)?;
    if plan.tty {
        let sock = tty_socket.context("no tty socket").map_err(fail)?;
        let (master, slave) = sys::term::open_pty()
            .context("allocate a pseudo-terminal")
            .map_err(fail)?;
        if let Some((r, c)) = plan.tty_size {
            let _ = sys::term::set_window_size(slave.as_fd(), r, c);
        }
        sys::term::send_fd(sock.as_fd(), master.as_fd())
            .context("send the terminal")
            .map_err(fail)?;
        drop(master);
        sys::term::set_controlling_terminal(slave.as_fd())
            .context("set the controlling terminal")
            .map_err(fail)?;
        for (i, fd) in stdio.iter().enumerate() {
            let from = fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(slave.as_raw_fd());
            sys::fd::dup_onto(from, i as RawFd).context("dup2").map_err(fail)?;
        }
    } else {
        let null = File::options()
            .read(true)
            .write(true)
            .open("/dev/null")
            .context("open /dev/null")
            .map_err(fail)?;
        for (i, fd) in stdio.iter().enumerate() {
            let from = fd.as_ref().map(|f| f.as_raw_fd()).unwrap_or(null.as_raw_fd());
            sys::fd::dup_onto(from, i as RawFd).context("dup2").map_err(fail)?;
        }
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let group = std::fs::read_to_string("/etc/group").unwrap_or_default();
    let u = user::resolve(&plan.user, &plan.group_add, &passwd, &group).map_err(|e| ChildError {
        code: CANNOT_INVOKE,
        message: format!("{e:#}"),
    })?;
    let mut env = plan.env.clone();
    if !env.iter().any(|e| e.starts_with("HOME=")) {
        env.push(format!("HOME={}", u.home));
    }
    let cwd = if plan.cwd.is_empty() { "/" } else { plan.cwd.as_str() };
    nix::unistd::chdir(cwd)
        .with_context(|| format!("change to working directory {cwd}"))
        .map_err(fail)?;
    let path = init::find_executable(plan.args.first().map(String::as_str).unwrap_or(""), &env)?;
    init::set_credentials(plan, &u).map_err(fail)?;
    sys::process::set_no_new_privs()
        .context("set no_new_privs")
        .map_err(fail)?;
    let _ = sys::process::set_parent_death_signal(libc::SIGKILL);
    sys::process::cloexec_from(3)
        .context("close descriptors")
        .map_err(fail)?;
    sys::signal::reset_dispositions();
    let _ = sys::signal::set_mask(&nix::sys::signal::SigSet::empty());
    let cs = |v: &[String]| -> Vec<std::ffi::CString> {
        v.iter()
            .filter_map(|s| std::ffi::CString::new(s.as_str()).ok())
            .collect()
    };
    let cpath = std::ffi::CString::new(path.clone()).map_err(|_| ChildError {
        code: ENGINE,
        message: "NUL in path".into(),
    })?;
    nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let e = nix::unistd::execve(&cpath, &cs(&plan.args), &cs(&env)).unwrap_err();
    let code = if e == nix::errno::Errno::ENOENT {
        crate::exit::NOT_FOUND
    } else {
        CANNOT_INVOKE
    };
    Err(ChildError {
        code,
        message: format!("exec {path}: {}", e.desc().to_lowercase()),
    })
}
