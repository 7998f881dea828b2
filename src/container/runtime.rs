//! Starting containers and recording how they end.
//!
//! Foreground (`run`, `start -a`): casco itself is the container's parent and
//! watches it. Detached (`run -d`, `start`): casco forks a monitor — itself,
//! in a new session, with no terminal — which becomes the container's parent,
//! reports the start back, and lives exactly as long as the container.

use std::fs::File;
use std::io::{IsTerminal, Read, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use nix::fcntl::OFlag;

use super::{Container, ContainerConfig, ContainerNotFound, Status};
use crate::cgroups::{self, Cgroup, Layout};
use crate::exit::{Coded, ENGINE, ExitStatus};
use crate::logs::LogWriter;
use crate::monitor::{self, Io, Outcome, Sinks};
use crate::namespaces::{self, InitPlan, MountKind, MountPlan, ProcessPlan, RootfsPlan, spawn};
use crate::store::Store;
use crate::store::record::Durability;
use crate::sys;
use crate::util::time;

/// The attach socket of a running container.
pub fn attach_socket(store: &Store, id: &str) -> PathBuf {
    store.container_run_dir(id).join("attach")
}

fn generated_mount(source: PathBuf, dest: &str) -> MountPlan {
    MountPlan {
        destination: dest.to_string(),
        kind: MountKind::Bind {
            source,
            recursive: false,
        },
        readonly: false,
        propagation: None,
        nosuid: false,
        nodev: false,
        noexec: false,
    }
}

/// The plan for the container's first process.
pub fn init_plan(
    store: &Store,
    cfg: &ContainerConfig,
    cgroup: Option<&Cgroup>,
    layout: Layout,
    tty_size: Option<(u16, u16)>,
) -> Result<InitPlan> {
    let dir = store.container_dir(&cfg.id);
    let rootfs = match cfg.driver {
        crate::store::Driver::Overlay => RootfsPlan::Overlay {
            lowers: cfg
                .layers
                .iter()
                .map(|l| crate::layers::store::diff_dir(store, l))
                .collect::<Result<_>>()?,
            upper: dir.join("upper"),
            work: dir.join("work"),
            target: dir.join("merged"),
            userxattr: cfg.id_mapping.is_some(),
        },
        crate::store::Driver::Vfs => RootfsPlan::Dir {
            dir: dir.join("rootfs"),
        },
    };
    let mut mounts = cfg.mounts.clone();
    if cfg.read_only {
        // podman's --read-only-tmpfs default: scratch space stays writable.
        for d in ["/tmp", "/var/tmp", "/run"] {
            if !mounts.iter().any(|m| m.destination.trim_end_matches('/') == d) {
                mounts.push(MountPlan {
                    destination: d.into(),
                    kind: MountKind::Tmpfs {
                        options: "mode=1777".into(),
                    },
                    readonly: false,
                    propagation: None,
                    nosuid: true,
                    nodev: true,
                    noexec: false,
                });
            }
        }
    }
    let userdata = dir.join("userdata");
    for (file, dest) in [
        ("hostname", "/etc/hostname"),
        ("hosts", "/etc/hosts"),
        ("resolv.conf", "/etc/resolv.conf"),
    ] {
        if !mounts.iter().any(|m| m.destination.trim_end_matches('/') == dest) {
            mounts.push(generated_mount(userdata.join(file), dest));
        }
    }
    let caps = namespaces::capability_set(cfg.privileged, &cfg.cap_add, &cfg.cap_drop)?;
    let added_caps = cfg
        .cap_add
        .iter()
        .filter(|c| !c.eq_ignore_ascii_case("all"))
        .map(|c| namespaces::parse_capability(c))
        .collect::<Result<Vec<_>>>()?;
    Ok(InitPlan {
        rootfs,
        mounts,
        hostname: cfg.hostname.clone(),
        readonly_root: cfg.read_only,
        privileged: cfg.privileged,
        userns: cfg.id_mapping.is_some(),
        new_netns: cfg.network == "none",
        cgroup_dir: cgroup.and_then(|c| c.v2_dir()).map(|d| d.to_path_buf()),
        cgroup_procs: cgroup.map(|c| c.v1_procs_files()).unwrap_or_default(),
        mount_cgroup2: layout == Layout::Unified && cgroup.is_some(),
        process: ProcessPlan {
            args: cfg.args.clone(),
            env: cfg.env.clone(),
            cwd: cfg.workdir.clone(),
            user: cfg.user.clone(),
            group_add: cfg.group_add.clone(),
            caps,
            added_caps,
            tty: cfg.tty,
            tty_size,
            init: cfg.init,
        },
    })
}

/// What the caller of [`launch`] wires to the container's stdio.
pub enum Wiring {
    /// Foreground: pipes for output (unless passed through), stdin from ours
    /// when `-i`.
    Foreground { stdin: bool },
    /// Monitor: pipes for everything it will relay.
    Detached,
}

struct Launched {
    pid: nix::unistd::Pid,
    cgroup: Option<Cgroup>,
    io: Io,
}

fn pipe() -> Result<(OwnedFd, OwnedFd)> {
    nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")
}

/// Pipes for the container's stdout and stderr: the read ends go to `io`,
/// the write ends are returned for the container.
fn output_pipes(io: &mut Io) -> Result<[OwnedFd; 2]> {
    let (or, ow) = pipe()?;
    let (er, ew) = pipe()?;
    io.stdout = Some(or);
    io.stderr = Some(er);
    Ok([ow, ew])
}

fn dup(fd: std::os::fd::BorrowedFd<'_>) -> Result<OwnedFd> {
    fd.try_clone_to_owned().context("dup")
}

/// Starts the container as a child of this process and marks it running.
/// Signals must already be blocked (see [`monitor::block_and_open_signals`]).
fn launch(store: &Store, id: &str, wiring: &Wiring) -> Result<Launched> {
    let lock = super::lock(store, id)?;
    let c = super::load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
    if c.state.is_running() {
        bail!("container {} is already running", c.config.name);
    }
    if c.state.status == Status::Removing {
        bail!("container {} is being removed", c.config.name);
    }
    let cfg = &c.config;
    let manager = cgroups::Manager::system().context("find the cgroup hierarchy")?;
    crate::output::debug(|| "container loaded and locked".into());
    let cgroup = manager
        .create(id, store.rootless, cfg.memory.is_some() || cfg.pids_limit.is_some())
        .context("create the container's cgroup")?;
    let result = (|| -> Result<Launched> {
        let tty_size = if cfg.tty {
            sys::term::window_size(std::io::stdin().as_fd())
                .ok()
                .filter(|&(r, c)| r > 0 && c > 0)
        } else {
            None
        };
        if let Some(cg) = &cgroup {
            cg.apply(&cgroups::Resources {
                memory: cfg.memory,
                pids: cfg.pids_limit,
            })
            .context("set the container's resource limits")?;
        } else if cfg.memory.is_some() || cfg.pids_limit.is_some() {
            bail!(
                "resource limits need a cgroup, and this user cannot create one here (no delegated cgroup v2 subtree)"
            );
        }
        let plan = init_plan(store, cfg, cgroup.as_ref(), manager.layout(), tty_size)?;
        let passthrough = cfg.log_driver == "passthrough";
        let mut io = Io {
            stdout: None,
            stderr: None,
            tty: None,
            stdin: None,
        };
        let stdio: [Option<OwnedFd>; 3] = match wiring {
            Wiring::Foreground { stdin } => {
                let sin = if *stdin && !cfg.tty {
                    Some(dup(std::io::stdin().as_fd())?)
                } else {
                    None
                };
                if cfg.tty {
                    [None, None, None]
                } else if passthrough {
                    [
                        sin,
                        Some(dup(std::io::stdout().as_fd())?),
                        Some(dup(std::io::stderr().as_fd())?),
                    ]
                } else {
                    let [ow, ew] = output_pipes(&mut io)?;
                    [sin, Some(ow), Some(ew)]
                }
            }
            Wiring::Detached => {
                // With a terminal, input goes through the pty master (which the
                // monitor feeds); a pipe is for -i alone.
                let sin = if cfg.interactive && !cfg.tty {
                    let (r, w) = pipe()?;
                    io.stdin = Some(w);
                    Some(r)
                } else {
                    None
                };
                if cfg.tty {
                    [sin, None, None]
                } else {
                    let [ow, ew] = output_pipes(&mut io)?;
                    [sin, Some(ow), Some(ew)]
                }
            }
        };
        crate::output::debug(|| "cgroup made, plan ready".into());
        let spawned = spawn::spawn(&plan, cfg.id_mapping.as_ref(), stdio)?;
        crate::output::debug(|| format!("container process {} exec'd", spawned.pid));
        io.tty = spawned.tty_master;
        let me = std::process::id() as i32;
        let mut state = c.state.clone();
        state.status = Status::Running;
        state.pid = spawned.pid.as_raw();
        state.start_time = spawned.start_time;
        state.monitor_pid = me;
        state.monitor_start = sys::process::process_start_time(me).unwrap_or(0);
        state.boot_id = super::boot_id();
        state.started_at = Some(time::now_nanos());
        state.finished_at = None;
        state.exit_code = None;
        state.oom_killed = false;
        state.error = None;
        state.cgroup = cgroup.as_ref().map(|c| c.paths().clone());
        // "Running" need not survive a power cut: after a reboot `refresh`
        // finds the process gone whatever the file says. The end is durable.
        if let Err(e) = super::save_state(store, id, &state, Durability::CrashSafe) {
            let _ = nix::sys::signal::kill(spawned.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(spawned.pid, None);
            return Err(e);
        }
        if let Some(p) = &cfg.pidfile {
            std::fs::write(p, format!("{}", spawned.pid)).with_context(|| format!("write pid file {}", p.display()))?;
        }
        Ok(Launched {
            pid: spawned.pid,
            cgroup: None,
            io,
        })
    })();
    drop(lock);
    match result {
        Ok(mut l) => {
            l.cgroup = cgroup;
            Ok(l)
        }
        Err(e) => {
            if let Some(cg) = cgroup {
                let _ = cg.kill_all();
                let _ = cg.remove();
            }
            // Keep the failure visible in inspect (State.Error).
            let msg = format!("{e:#}");
            let _ = super::update_state(store, id, |c| {
                c.state.error = Some(msg);
                Ok(())
            });
            Err(e)
        }
    }
}

/// Records the end of a container that this process watched; removes it when
/// it was started with `--rm`.
fn finish(store: &Store, id: &str, code: i32, cgroup: Option<Cgroup>) -> Result<()> {
    let oom = cgroup.as_ref().and_then(|c| c.oom_kills().ok()).is_some_and(|n| n > 0);
    if let Some(cg) = &cgroup {
        // PID 1's death killed its namespace; anything left (a process that
        // joined the cgroup from outside) goes now.
        let _ = cg.kill_all();
        crate::output::debug(|| "cgroup emptied".into());
        if let Err(e) = cg.remove() {
            crate::output::warn(&format!("{e:#}"));
        }
        crate::output::debug(|| "cgroup removed".into());
    }
    if let Some(pf) = super::load(store, id).ok().flatten().and_then(|c| c.config.pidfile) {
        let _ = std::fs::remove_file(pf);
    }
    let lock = match super::lock(store, id) {
        Ok(l) => l,
        Err(_) => return Ok(()), // removed under us
    };
    let Some(mut c) = super::load(store, id)? else {
        return Ok(());
    };
    if c.state.status == Status::Removing {
        // `rm -f` is waiting for us to go; it removes everything.
        return Ok(());
    }
    c.state.status = Status::Exited;
    c.state.pid = 0;
    c.state.exit_code = Some(code);
    c.state.oom_killed = oom;
    c.state.finished_at = Some(time::now_nanos());
    c.state.cgroup = None;
    if c.config.auto_remove {
        drop(lock);
        return super::ops::remove_files(store, &c);
    }
    super::save_state(store, id, &c.state, Durability::Durable)
}

/// Puts the caller's terminal in raw mode while it lives.
struct RawTerminal {
    saved: Option<nix::sys::termios::Termios>,
}

impl RawTerminal {
    fn enable() -> RawTerminal {
        let stdin = std::io::stdin();
        if !stdin.is_terminal() {
            return RawTerminal { saved: None };
        }
        let Ok(saved) = nix::sys::termios::tcgetattr(stdin.as_fd()) else {
            return RawTerminal { saved: None };
        };
        let mut raw = saved.clone();
        nix::sys::termios::cfmakeraw(&mut raw);
        let _ = nix::sys::termios::tcsetattr(stdin.as_fd(), nix::sys::termios::SetArg::TCSANOW, &raw);
        RawTerminal { saved: Some(saved) }
    }
}

impl Drop for RawTerminal {
    fn drop(&mut self) {
        if let Some(s) = &self.saved {
            let _ = nix::sys::termios::tcsetattr(std::io::stdin().as_fd(), nix::sys::termios::SetArg::TCSANOW, s);
        }
    }
}

fn log_writer(store: &Store, cfg: &ContainerConfig) -> Result<Option<LogWriter>> {
    if cfg.log_driver != "k8s-file" {
        return Ok(None);
    }
    Ok(Some(LogWriter::open(
        &super::log_path(store, &cfg.id),
        cfg.log_max_size,
    )?))
}

/// Runs the container in the foreground and returns its exit status.
pub fn run_foreground(store: &Store, id: &str, stdin: bool) -> Result<ExitStatus> {
    run_foreground_with(store, id, stdin, true)
}

/// [`run_foreground`], with the container's output shown on ours (`echo`) or
/// only logged (`build -q`).
pub fn run_foreground_with(store: &Store, id: &str, stdin: bool, echo: bool) -> Result<ExitStatus> {
    let c = super::load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
    let (mut signals, old_mask) = monitor::block_and_open_signals()?;
    let launched = launch(store, id, &Wiring::Foreground { stdin });
    let launched = match launched {
        Ok(l) => l,
        Err(e) => {
            let _ = sys::signal::set_mask(&old_mask);
            if c.config.auto_remove {
                let _ = super::ops::remove(store, id, true, Some(0));
            }
            return Err(e);
        }
    };
    let log = log_writer(store, &c.config)?;
    let raw = if c.config.tty && stdin {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let sinks = Sinks {
        log,
        echo,
        forward_stdin: c.config.tty && stdin,
        attach: None,
        detach_keys: None,
    };
    let outcome = monitor::supervise(launched.pid, launched.io, sinks, &mut signals);
    drop(raw);
    let code = match outcome {
        Ok(Outcome::Exited(code)) => code,
        Err(e) => {
            let _ = nix::sys::signal::kill(launched.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(launched.pid, None);
            let _ = finish(store, id, 137, launched.cgroup);
            let _ = sys::signal::set_mask(&old_mask);
            return Err(e);
        }
    };
    crate::output::debug(|| format!("container exited with {code}"));
    let recorded = finish(store, id, code, launched.cgroup);
    crate::output::debug(|| "end recorded".into());
    let _ = sys::signal::set_mask(&old_mask);
    recorded?;
    Ok(ExitStatus::from_wait(Some(code), None))
}

/// Starts the container under a new monitor process; returns once it runs.
pub fn start_detached(store: &Store, id: &str) -> Result<()> {
    let (report_r, report_w) = pipe()?;
    match sys::process::clone_fork(0).context("fork the monitor")? {
        Some(_monitor) => {
            drop(report_w);
            let mut buf = Vec::new();
            File::from(report_r)
                .read_to_end(&mut buf)
                .context("read the monitor's report")?;
            match buf.first() {
                Some(0) => Ok(()),
                Some(&code) => Err(Coded::new(code, String::from_utf8_lossy(&buf[1..]).into_owned()).into()),
                None => bail!("the monitor of container {id} died before the container started"),
            }
        }
        None => {
            drop(report_r);
            monitor_main(store, id, report_w)
        }
    }
}

fn monitor_main(store: &Store, id: &str, report: OwnedFd) -> ! {
    sys::process::set_process_name("casco-monitor");
    let _ = nix::unistd::setsid();
    // Let go of the caller's terminal and pipes: whoever ran `casco run -d`
    // waits for them to close.
    if let Ok(null) = nix::fcntl::open(
        "/dev/null",
        OFlag::O_RDWR | OFlag::O_CLOEXEC,
        nix::sys::stat::Mode::empty(),
    ) {
        for fd in 0..3 {
            let _ = sys::fd::dup_onto(std::os::fd::AsRawFd::as_raw_fd(&null), fd);
        }
    }
    sys::signal::ignore(nix::sys::signal::Signal::SIGPIPE);
    let mut report = File::from(report);
    let setup = (|| -> Result<(Launched, nix::sys::signalfd::SignalFd, Option<LogWriter>, std::os::unix::net::UnixListener)> {
        let c = super::load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
        let run_dir = store.container_run_dir(id);
        std::fs::create_dir_all(&run_dir).with_context(|| format!("create {}", run_dir.display()))?;
        let listener = monitor::attach::listen(&attach_socket(store, id))?;
        let (signals, _old) = monitor::block_and_open_signals()?;
        let log = log_writer(store, &c.config)?;
        let launched = launch(store, id, &Wiring::Detached)?;
        Ok((launched, signals, log, listener))
    })();
    let (launched, signals, log, listener) = match setup {
        Ok(s) => s,
        Err(e) => {
            let code = crate::exit::code_of(&e);
            let mut msg = vec![if code == 0 { ENGINE } else { code }];
            msg.extend_from_slice(format!("{e:#}").as_bytes());
            let _ = report.write_all(&msg);
            let _ = std::fs::remove_dir_all(store.container_run_dir(id));
            sys::process::exit_now(1);
        }
    };
    let _ = report.write_all(&[0]);
    drop(report);
    // The container runs and its caller has been told. From here on the
    // monitor needs only a few descriptors: re-exec a fresh image that holds
    // nothing else, so that a long-lived container costs little memory. If
    // that fails, carry on in this image.
    let handoff = MonitorHandoff {
        root: store.root.clone(),
        runroot: store.runroot.clone(),
        rootless: store.rootless,
        config: store.config.clone(),
        id: id.to_string(),
        pid: launched.pid.as_raw(),
        stdout: launched.io.stdout.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        stderr: launched.io.stderr.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        tty: launched.io.tty.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        stdin: launched.io.stdin.as_ref().map(std::os::fd::AsRawFd::as_raw_fd),
        listener: std::os::fd::AsRawFd::as_raw_fd(&listener),
        log: log.as_ref().map(|_| super::log_path(store, id)),
        log_max_size: super::load(store, id)
            .ok()
            .flatten()
            .and_then(|c| c.config.log_max_size),
        cgroup: launched.cgroup.as_ref().map(|c| c.paths().clone()),
    };
    drop(log);
    drop(signals);
    let e = reexec_monitor(&handoff);
    crate::output::debug(|| format!("monitor re-exec failed: {e:#}"));
    let (mut signals, _) = match monitor::block_and_open_signals() {
        Ok(s) => s,
        Err(_) => sys::process::exit_now(1),
    };
    let log = super::load(store, id)
        .ok()
        .flatten()
        .and_then(|c| log_writer(store, &c.config).ok().flatten());
    let sinks = Sinks {
        log,
        echo: false,
        forward_stdin: false,
        attach: Some(listener),
        detach_keys: None,
    };
    let code = match monitor::supervise(launched.pid, launched.io, sinks, &mut signals) {
        Ok(Outcome::Exited(c)) => c,
        Err(_) => {
            let _ = nix::sys::signal::kill(launched.pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(launched.pid, None);
            137
        }
    };
    let _ = finish(store, id, code, launched.cgroup);
    let _ = std::fs::remove_dir_all(store.container_run_dir(id));
    sys::process::exit_now(0)
}

/// What a detached container's monitor hands to its own fresh image.
#[derive(serde::Serialize, serde::Deserialize)]
struct MonitorHandoff {
    root: PathBuf,
    runroot: PathBuf,
    rootless: bool,
    config: crate::store::StorageConfig,
    id: String,
    pid: i32,
    stdout: Option<i32>,
    stderr: Option<i32>,
    tty: Option<i32>,
    stdin: Option<i32>,
    listener: i32,
    log: Option<PathBuf>,
    log_max_size: Option<u64>,
    cgroup: Option<crate::cgroups::CgroupPaths>,
}

/// argv[0] of the re-exec'd monitor; `main` checks it before anything else.
pub const MONITOR_ARGV0: &str = "casco-monitor";
/// Execs /proc/self/exe as the lean monitor; returns only on failure.
fn reexec_monitor(h: &MonitorHandoff) -> anyhow::Error {
    let keep: Vec<i32> = [h.stdout, h.stderr, h.tty, h.stdin, Some(h.listener)]
        .into_iter()
        .flatten()
        .collect();
    crate::handoff::exec_with(crate::handoff::Target::Path("/proc/self/exe"), MONITOR_ARGV0, h, &keep)
}

/// Called first in `main`: when this process is a re-exec'd monitor, watch
/// the container, record its end, and exit.
pub fn run_if_monitor() {
    let Some(h) = crate::handoff::receive::<MonitorHandoff>(MONITOR_ARGV0) else {
        return;
    };
    sys::signal::ignore(nix::sys::signal::Signal::SIGPIPE);
    let own = |fd: Option<i32>| fd.map(crate::handoff::adopt);
    let io = Io {
        stdout: own(h.stdout),
        stderr: own(h.stderr),
        tty: own(h.tty),
        stdin: own(h.stdin),
    };
    let listener = own(Some(h.listener)).map(std::os::unix::net::UnixListener::from);
    let store = Store::from_parts(h.root, h.runroot, h.rootless, h.config);
    // The signal mask survived the exec; a new signalfd reads the same signals.
    let Ok(mut signals) = nix::sys::signalfd::SignalFd::with_flags(
        &monitor::watched_signals(),
        nix::sys::signalfd::SfdFlags::SFD_NONBLOCK | nix::sys::signalfd::SfdFlags::SFD_CLOEXEC,
    ) else {
        sys::process::exit_now(1)
    };
    let log = h.log.as_ref().and_then(|p| LogWriter::open(p, h.log_max_size).ok());
    let pid = nix::unistd::Pid::from_raw(h.pid);
    let sinks = Sinks {
        log,
        echo: false,
        forward_stdin: false,
        attach: listener,
        detach_keys: None,
    };
    // Start-up code (argument decoding, JSON) is done with: keep resident only
    // what the loop runs, as a long-lived container's watcher should.
    sys::process::release_code_pages();
    let code = match monitor::supervise(pid, io, sinks, &mut signals) {
        Ok(Outcome::Exited(c)) => c,
        Err(_) => {
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
            let _ = nix::sys::wait::waitpid(pid, None);
            137
        }
    };
    let cgroup = h
        .cgroup
        .as_ref()
        .and_then(|p| cgroups::Manager::system().ok().map(|m| m.open(p)));
    let _ = finish(&store, &h.id, code, cgroup);
    let _ = std::fs::remove_dir_all(store.container_run_dir(&h.id));
    sys::process::exit_now(0)
}

/// Used by `create` to reject flags that only make sense elsewhere.
pub fn check_detached(c: &Container) -> Result<()> {
    if c.config.log_driver == "passthrough" {
        bail!("--log-driver passthrough needs a foreground container (it hands casco's own output to the container)");
    }
    Ok(())
}

/// `attach` / `start -a` on a running detached container: relays the
/// terminal through the monitor's socket until the container exits (its code
/// is returned) or the detach keys are typed.
pub fn attach(store: &Store, c: &Container, stdin: bool, detach_keys: Option<&str>) -> Result<ExitStatus> {
    use crate::monitor::attach::{Frame, parse_detach_keys, scan_detach};
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    if !c.state.is_running() {
        bail!(
            "you can only attach to running containers: {} is {}",
            c.config.name,
            c.state.status.name()
        );
    }
    let keys = parse_detach_keys(detach_keys.unwrap_or("ctrl-p,ctrl-q"))?;
    let mut sock = monitor::connect(&attach_socket(store, &c.config.id))
        .with_context(|| format!("attach to container {}", c.config.name))?;
    let stdin_is_tty = std::io::stdin().is_terminal();
    let _raw = if c.config.tty && stdin && stdin_is_tty {
        Some(RawTerminal::enable())
    } else {
        None
    };
    let (signals, old_mask) = monitor::block_and_open_signals()?;
    let resize = |sock: &mut std::os::unix::net::UnixStream| {
        if let Ok((r, cols)) = sys::term::window_size(std::io::stdin().as_fd()) {
            let _ = sock.write_all(&Frame::Resize(r, cols).encode());
        }
    };
    if c.config.tty {
        resize(&mut sock);
    }
    let mut stdin_open = stdin && c.config.interactive;
    let mut key_state = 0usize;
    let mut buf = vec![0u8; 32 * 1024];
    let mut reader = sock.try_clone().context("attach socket")?;
    let result = loop {
        let mut fds = vec![
            PollFd::new(sock.as_fd(), PollFlags::POLLIN),
            PollFd::new(signals.as_fd(), PollFlags::POLLIN),
        ];
        let stdin_handle = std::io::stdin();
        if stdin_open {
            fds.push(PollFd::new(stdin_handle.as_fd(), PollFlags::POLLIN));
        }
        if let Err(e) = poll(&mut fds, PollTimeout::NONE) {
            if e == nix::errno::Errno::EINTR {
                continue;
            }
            break Err(anyhow::Error::from(e).context("poll"));
        }
        let ready = |f: &PollFd| f.revents().is_some_and(|r| !r.is_empty());
        let (r_sock, r_sig, r_in) = (ready(&fds[0]), ready(&fds[1]), fds.get(2).is_some_and(ready));
        drop(fds);
        if r_sig {
            while let Ok(Some(info)) = signals.read_signal() {
                let sig = info.ssi_signo as i32;
                if sig == libc::SIGWINCH {
                    resize(&mut sock);
                } else if sig != libc::SIGCHLD {
                    // Forward like a foreground casco does.
                    let _ = super::ops::signal(c, sig);
                }
            }
        }
        if r_sock {
            match Frame::read_from(&mut reader) {
                Ok(Some(Frame::Stdout(d))) => {
                    let _ = std::io::stdout().write_all(&d).and_then(|_| std::io::stdout().flush());
                }
                Ok(Some(Frame::Stderr(d))) => {
                    let _ = std::io::stderr().write_all(&d);
                }
                Ok(Some(Frame::Exit(code))) => break Ok(ExitStatus::from_wait(Some(code), None)),
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => {
                    // The monitor went away without a word: read the record.
                    let code = super::load(store, &c.config.id)?
                        .and_then(|x| x.state.exit_code)
                        .unwrap_or(0);
                    break Ok(ExitStatus::from_wait(Some(code), None));
                }
            }
        }
        if r_in {
            match nix::unistd::read(std::io::stdin().as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if !c.config.tty {
                        let _ = sock.write_all(&Frame::CloseStdin.encode());
                    }
                }
                Ok(n) => {
                    let data = &buf[..n];
                    let detach = if keys.is_empty() {
                        None
                    } else {
                        scan_detach(&keys, data, &mut key_state)
                    };
                    let upto = detach.unwrap_or(n);
                    if upto > 0 {
                        let _ = sock.write_all(&Frame::Stdin(data[..upto].to_vec()).encode());
                    }
                    if detach.is_some() {
                        break Ok(ExitStatus::Success);
                    }
                }
            }
        }
    };
    let _ = sys::signal::set_mask(&old_mask);
    result
}
