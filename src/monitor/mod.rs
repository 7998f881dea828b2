//! Watching a running container: the loop that `casco run` runs in the
//! foreground and the detached monitor runs in the background (the same code,
//! like podman's conmon but without a second binary).
//!
//! It waits for the container's first process, forwards signals to it, copies
//! its output into the log (and to the terminal, and to `attach` clients),
//! feeds its input, and returns how it ended. Nothing else: recording the end
//! in the store is the caller's job.

pub mod attach;

use std::io;
use std::os::fd::{AsFd, BorrowedFd, OwnedFd};
use std::os::unix::net::{UnixListener, UnixStream};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
use nix::sys::signal::{SigSet, Signal};
use nix::sys::signalfd::{SfdFlags, SignalFd};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;

use crate::logs::{LogWriter, Stream};
use attach::{Client, Frame};

/// The signals a foreground casco or a monitor passes on to the container.
pub const FORWARDED: [Signal; 6] = [
    Signal::SIGINT,
    Signal::SIGTERM,
    Signal::SIGHUP,
    Signal::SIGQUIT,
    Signal::SIGUSR1,
    Signal::SIGUSR2,
];

/// The signals the loop takes through its signalfd (they must be blocked).
pub fn watched_signals() -> SigSet {
    let mut s = SigSet::empty();
    s.add(Signal::SIGCHLD);
    s.add(Signal::SIGWINCH);
    for sig in FORWARDED {
        s.add(sig);
    }
    s
}

/// The container's side of the conversation.
pub struct Io {
    /// Read ends of its stdout and stderr pipes.
    pub stdout: Option<OwnedFd>,
    pub stderr: Option<OwnedFd>,
    /// The pty master (`-t`): output and input in one.
    pub tty: Option<OwnedFd>,
    /// Write end of its stdin pipe (`-i` when detached).
    pub stdin: Option<OwnedFd>,
}

/// Where its output goes and where input comes from.
pub struct Sinks {
    pub log: Option<LogWriter>,
    /// Copy output to our own stdout/stderr (foreground).
    pub echo: bool,
    /// Forward our own stdin to the container (foreground `-t -i`).
    pub forward_stdin: bool,
    /// Attach clients connect here (detached containers).
    pub attach: Option<UnixListener>,
    /// The key sequence that detaches a foreground terminal session; not used
    /// by the monitor (clients handle it).
    pub detach_keys: Option<Vec<u8>>,
}

/// How the loop ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The container's first process ended with this status (code or 128+signal).
    Exited(i32),
}

fn write_all_fd(fd: BorrowedFd<'_>, mut data: &[u8]) -> io::Result<()> {
    while !data.is_empty() {
        match nix::unistd::write(fd, data) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => data = &data[n..],
            Err(nix::errno::Errno::EINTR) => {}
            Err(nix::errno::Errno::EAGAIN) => {
                let mut pfd = [PollFd::new(fd, PollFlags::POLLOUT)];
                let _ = poll(&mut pfd, PollTimeout::from(1000u16));
            }
            Err(e) => return Err(e.into()),
        }
    }
    Ok(())
}

fn status_code(ws: WaitStatus) -> Option<i32> {
    match ws {
        WaitStatus::Exited(_, c) => Some(c),
        WaitStatus::Signaled(_, s, _) => Some(128 + s as i32),
        _ => None,
    }
}

/// Runs until the container's process `pid` ends and its output is drained.
/// `signals` must be a signalfd over [`watched_signals`], which the caller
/// blocked before creating the container.
pub fn supervise(pid: Pid, mut io_: Io, mut sinks: Sinks, signals: &mut SignalFd) -> Result<Outcome> {
    let mut exit: Option<i32> = None;
    let mut drain_deadline: Option<Instant> = None;
    let mut clients: Vec<Client> = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    let our_stdin = io::stdin();
    let mut stdin_open = sinks.forward_stdin;
    let mut key_state = 0usize;
    loop {
        let out_open = io_.stdout.is_some() || io_.stderr.is_some() || io_.tty.is_some();
        if let Some(code) = exit {
            if !out_open {
                break;
            }
            // The first process is gone; its namespace dies with it, so pipes
            // close at once. Do not wait forever on a descriptor someone leaked.
            let d = *drain_deadline.get_or_insert_with(|| Instant::now() + Duration::from_secs(2));
            if Instant::now() > d {
                break;
            }
            let _ = code;
        }
        // Build the poll set: fixed slots first, then clients.
        let mut fds: Vec<PollFd> = Vec::with_capacity(8 + clients.len());
        fds.push(PollFd::new(signals.as_fd(), PollFlags::POLLIN));
        let slot_out = io_.stdout.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let slot_err = io_.stderr.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let slot_tty = io_.tty.as_ref().map(|f| {
            fds.push(PollFd::new(f.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let slot_in = if stdin_open {
            fds.push(PollFd::new(our_stdin.as_fd(), PollFlags::POLLIN));
            Some(fds.len() - 1)
        } else {
            None
        };
        let slot_listen = sinks.attach.as_ref().map(|l| {
            fds.push(PollFd::new(l.as_fd(), PollFlags::POLLIN));
            fds.len() - 1
        });
        let first_client = fds.len();
        for c in &clients {
            fds.push(PollFd::new(c.stream.as_fd(), PollFlags::POLLIN));
        }
        let timeout = if exit.is_some() {
            PollTimeout::from(100u16)
        } else {
            PollTimeout::NONE
        };
        match poll(&mut fds, timeout) {
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => continue,
            Err(e) => return Err(e).context("poll"),
        }
        let ready = |i: Option<usize>, fds: &[PollFd]| -> bool {
            i.is_some_and(|i| {
                fds[i]
                    .revents()
                    .is_some_and(|r| r.intersects(PollFlags::POLLIN | PollFlags::POLLHUP | PollFlags::POLLERR))
            })
        };
        let client_ready: Vec<bool> = (first_client..fds.len())
            .map(|i| fds[i].revents().is_some_and(|r| !r.is_empty()))
            .collect();
        let sig_ready = ready(Some(0), &fds);
        let (r_out, r_err, r_tty, r_in, r_listen) = (
            ready(slot_out, &fds),
            ready(slot_err, &fds),
            ready(slot_tty, &fds),
            ready(slot_in, &fds),
            ready(slot_listen, &fds),
        );
        drop(fds);

        if sig_ready {
            while let Ok(Some(info)) = signals.read_signal() {
                let sig = Signal::try_from(info.ssi_signo as i32).ok();
                match sig {
                    Some(Signal::SIGCHLD) => loop {
                        match waitpid(Some(Pid::from_raw(-1)), Some(WaitPidFlag::WNOHANG)) {
                            Ok(WaitStatus::StillAlive) | Err(_) => break,
                            Ok(ws) => {
                                if ws.pid() == Some(pid)
                                    && let Some(c) = status_code(ws)
                                {
                                    exit = Some(c);
                                }
                            }
                        }
                    },
                    Some(Signal::SIGWINCH) => {
                        if let Some(t) = &io_.tty
                            && let Ok((rows, cols)) = crate::sys::term::window_size(io::stdin().as_fd())
                        {
                            let _ = crate::sys::term::set_window_size(t.as_fd(), rows, cols);
                        }
                    }
                    Some(s) if exit.is_none() => {
                        let _ = nix::sys::signal::kill(pid, s);
                    }
                    _ => {}
                }
            }
        }
        for (slot_ready, which) in [(r_out, Stream::Stdout), (r_err, Stream::Stderr)] {
            if !slot_ready {
                continue;
            }
            let fd = match which {
                Stream::Stdout => &mut io_.stdout,
                Stream::Stderr => &mut io_.stderr,
            };
            let Some(f) = fd.as_ref() else { continue };
            match nix::unistd::read(f.as_fd(), &mut buf) {
                Ok(0) | Err(nix::errno::Errno::EIO) => *fd = None,
                Ok(n) => emit(&mut sinks, &mut clients, which, &buf[..n]),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => *fd = None,
            }
        }
        if r_tty && let Some(t) = io_.tty.as_ref() {
            match nix::unistd::read(t.as_fd(), &mut buf) {
                // EIO: every process holding the terminal's other side is gone.
                Ok(0) | Err(nix::errno::Errno::EIO) => {
                    if exit.is_some() {
                        io_.tty = None;
                    } else {
                        // A hang-up before the process is reaped: keep the
                        // master (closing it would SIGHUP nothing useful) but
                        // stop polling it once the process is gone.
                        std::thread::sleep(Duration::from_millis(5));
                    }
                }
                Ok(n) => emit(&mut sinks, &mut clients, Stream::Stdout, &buf[..n]),
                Err(nix::errno::Errno::EINTR) | Err(nix::errno::Errno::EAGAIN) => {}
                Err(_) => io_.tty = None,
            }
        }
        if r_in {
            match nix::unistd::read(our_stdin.as_fd(), &mut buf) {
                Ok(0) | Err(_) => {
                    stdin_open = false;
                    if let Some(t) = &io_.tty {
                        // End of input on a terminal is ^D.
                        let _ = write_all_fd(t.as_fd(), &[4]);
                    }
                }
                Ok(n) => {
                    let data = &buf[..n];
                    let detached = match &sinks.detach_keys {
                        Some(keys) if !keys.is_empty() => attach::scan_detach(keys, data, &mut key_state),
                        _ => None,
                    };
                    let (data, stop) = match detached {
                        Some(upto) => (&data[..upto], true),
                        None => (data, false),
                    };
                    if let Some(t) = &io_.tty {
                        let _ = write_all_fd(t.as_fd(), data);
                    } else if let Some(s) = &io_.stdin {
                        let _ = write_all_fd(s.as_fd(), data);
                    }
                    if stop {
                        stdin_open = false;
                    }
                }
            }
        }
        if r_listen
            && let Some(l) = &sinks.attach
            && let Ok((stream, _)) = l.accept()
        {
            clients.push(Client::new(stream));
        }
        let mut gone = Vec::new();
        for (i, ready) in client_ready.into_iter().enumerate() {
            if !ready {
                continue;
            }
            match clients[i].read_frame() {
                Ok(Some(Frame::Stdin(data))) => {
                    if let Some(t) = &io_.tty {
                        let _ = write_all_fd(t.as_fd(), &data);
                    } else if let Some(s) = &io_.stdin {
                        let _ = write_all_fd(s.as_fd(), &data);
                    }
                }
                Ok(Some(Frame::CloseStdin)) => {
                    io_.stdin = None;
                }
                Ok(Some(Frame::Resize(rows, cols))) => {
                    if let Some(t) = &io_.tty {
                        let _ = crate::sys::term::set_window_size(t.as_fd(), rows, cols);
                        let _ = nix::sys::signal::kill(pid, Signal::SIGWINCH);
                    }
                }
                Ok(Some(_)) => {}
                Ok(None) | Err(_) => gone.push(i),
            }
        }
        for i in gone.into_iter().rev() {
            clients.remove(i);
        }
    }
    let code = exit.unwrap_or(125);
    for c in &mut clients {
        let _ = c.send(&Frame::Exit(code));
    }
    Ok(Outcome::Exited(code))
}

fn emit(sinks: &mut Sinks, clients: &mut Vec<Client>, stream: Stream, data: &[u8]) {
    if let Some(log) = &mut sinks.log
        && let Err(e) = log.write(stream, data)
    {
        // A full disk must not stop the container; say it once.
        crate::output::warn(&format!("container log: {e:#}"));
        sinks.log = None;
    }
    if sinks.echo {
        let r = match stream {
            Stream::Stdout => write_all_fd(io::stdout().as_fd(), data),
            Stream::Stderr => write_all_fd(io::stderr().as_fd(), data),
        };
        if r.is_err() {
            // Our reader went away (`casco run ... | head`): keep the log going.
            sinks.echo = false;
        }
    }
    let frame = match stream {
        Stream::Stdout => Frame::Stdout(data.to_vec()),
        Stream::Stderr => Frame::Stderr(data.to_vec()),
    };
    clients.retain_mut(|c| c.send(&frame).is_ok());
}

/// A signalfd over the watched signals, which are blocked (returns the old mask).
pub fn block_and_open_signals() -> Result<(SignalFd, SigSet)> {
    let old = crate::sys::signal::block_all().context("block signals")?;
    let fd =
        SignalFd::with_flags(&watched_signals(), SfdFlags::SFD_NONBLOCK | SfdFlags::SFD_CLOEXEC).context("signalfd")?;
    Ok((fd, old))
}

/// Connects to a running container's attach socket.
pub fn connect(path: &std::path::Path) -> Result<UnixStream> {
    attach::connect(path)
}
