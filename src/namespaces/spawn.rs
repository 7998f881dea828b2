//! The parent's side of starting a container: clone the child into its
//! namespaces, write its user-namespace maps, collect its terminal, and learn
//! whether its exec succeeded.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};
use nix::fcntl::OFlag;
use nix::sys::socket::{AddressFamily, SockFlag, SockType, socketpair};
use nix::unistd::Pid;

use super::InitPlan;
use super::init::{ChildChannels, child_main};
use super::userns::{IdMapping, write_mappings};
use crate::exit::{Coded, ENGINE};
use crate::sys;

pub struct Spawned {
    pub pid: Pid,
    /// Its start time in clock ticks (with the PID, names the process uniquely).
    pub start_time: u64,
    /// The pty master, for a `-t` container.
    pub tty_master: Option<OwnedFd>,
}

/// Starts the container described by `plan`. `stdio` are the descriptors that
/// become its 0, 1 and 2 (None: /dev/null, or the terminal with a tty).
/// casco must be single-threaded, and should have its signals blocked (the
/// child restores an empty mask before exec).
pub fn spawn(plan: &InitPlan, userns: Option<&IdMapping>, stdio: [Option<OwnedFd>; 3]) -> Result<Spawned> {
    let (err_r, err_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let sealed = if plan.process.init {
        Some(crate::trampoline::sealed_self().context("prepare the init")?)
    } else {
        None
    };
    // The child's lifeline: only this process holds the write end, so the
    // child sees end-of-file there once we are gone (and, with a user
    // namespace, reads one byte from it once its maps are written).
    let (go_r, go_w) = nix::unistd::pipe2(OFlag::O_CLOEXEC).context("pipe")?;
    let tty = if plan.process.tty {
        Some(socketpair(AddressFamily::Unix, SockType::Stream, None, SockFlag::SOCK_CLOEXEC).context("socketpair")?)
    } else {
        None
    };
    let mut flags = libc::CLONE_NEWNS | libc::CLONE_NEWPID | libc::CLONE_NEWUTS | libc::CLONE_NEWIPC;
    if plan.new_netns {
        flags |= libc::CLONE_NEWNET;
    }
    if userns.is_some() {
        flags |= libc::CLONE_NEWUSER;
    }
    // Born straight into its cgroup where possible; else it joins by writing.
    let cgroup_fd = plan.cgroup_dir.as_ref().and_then(|d| {
        nix::fcntl::open(
            d,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            nix::sys::stat::Mode::empty(),
        )
        .ok()
    });
    let mut join_v2 = None;
    let child = match &cgroup_fd {
        Some(fd) => {
            match super::userns::clone_mappable_with(flags, |f| sys::process::clone_into_cgroup(f, fd.as_fd())) {
                Err(e) if matches!(e.raw_os_error(), Some(libc::ENOSYS | libc::E2BIG | libc::EINVAL)) => {
                    join_v2 = plan.cgroup_dir.as_ref().map(|d| d.join("cgroup.procs"));
                    super::userns::clone_mappable(flags)
                }
                r => r,
            }
        }
        None => super::userns::clone_mappable(flags),
    }
    .context("create the container's namespaces")?;
    let Some(pid) = child else {
        drop(go_w);
        drop(err_r);
        let (tty_parent, tty_child) = match tty {
            Some((p, c)) => (Some(p), Some(c)),
            None => (None, None),
        };
        drop(tty_parent);
        child_main(
            plan,
            ChildChannels {
                go: go_r,
                wait_for_maps: userns.is_some(),
                error: err_w,
                stdio,
                tty_socket: tty_child,
                join_cgroup: join_v2,
                sealed,
            },
        )
    };
    drop(err_w);
    drop(go_r);
    drop(stdio);
    let (tty_parent, tty_child) = match tty {
        Some((p, c)) => (Some(p), Some(c)),
        None => (None, None),
    };
    drop(tty_child);

    let fail_child = |e: anyhow::Error| -> anyhow::Error {
        let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
        let _ = nix::sys::wait::waitpid(pid, None);
        e
    };
    let mut go_w = File::from(go_w);
    if let Some(map) = userns {
        write_mappings(pid, map).map_err(fail_child)?;
        go_w.write_all(b"1")
            .context("release the container")
            .map_err(fail_child)?;
    }
    let mut tty_master = None;
    if let Some(sock) = tty_parent {
        // EOF instead of a descriptor means the child failed first: its error
        // follows on the error pipe.
        tty_master = sys::term::recv_fd(sock.as_fd())
            .context("receive the container's terminal")
            .map_err(fail_child)?;
    }
    let mut report = Vec::new();
    File::from(err_r)
        .read_to_end(&mut report)
        .context("read the container's start report")
        .map_err(fail_child)?;
    if !report.is_empty() {
        let _ = nix::sys::wait::waitpid(pid, None);
        let code = report[0];
        let message = String::from_utf8_lossy(&report[1..]).into_owned();
        let code = if code == 0 { ENGINE } else { code };
        return Err(anyhow::Error::new(Coded::new(code, message)));
    }
    // The child has exec'd: its lifeline is no longer needed (PDEATHSIG, set
    // before the check, covers the rest of its life).
    drop(go_w);
    let start_time = sys::process::process_start_time(pid.as_raw()).unwrap_or(0);
    Ok(Spawned {
        pid,
        start_time,
        tty_master,
    })
}
