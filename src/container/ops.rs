//! Acting on containers from outside: signal, stop, wait, remove.
//!
//! casco is not the parent of a detached container, so it names processes by
//! pidfd (opened, then checked against the recorded start time): a signal never
//! reaches a process that reused a dead container's PID.

use std::os::fd::{AsFd, OwnedFd};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::poll::{PollFd, PollFlags, PollTimeout, poll};

use super::{Container, ContainerNotFound, Status};
use crate::exit::Coded;
use crate::store::Store;
use crate::store::record::{Durability, TMP_PREFIX};
use crate::sys;

/// A pidfd for the container's first process, if it is still that process.
fn container_pidfd(c: &Container) -> Option<OwnedFd> {
    if !c.state.is_running() || c.state.pid <= 0 {
        return None;
    }
    let fd = sys::process::pidfd_open(c.state.pid).ok()?;
    // Opened first, checked second: if the start time matches now, the pidfd
    // refers to the right process for good.
    sys::process::process_matches(c.state.pid, c.state.start_time).then_some(fd)
}

fn monitor_pidfd(c: &Container) -> Option<OwnedFd> {
    if c.state.monitor_pid <= 0 || c.state.monitor_pid == std::process::id() as i32 {
        return None;
    }
    let fd = sys::process::pidfd_open(c.state.monitor_pid).ok()?;
    sys::process::process_matches(c.state.monitor_pid, c.state.monitor_start).then_some(fd)
}

/// Waits until the process behind `fd` exits; false on timeout.
fn wait_pidfd(fd: &OwnedFd, timeout: Option<Duration>) -> bool {
    let deadline = timeout.map(|t| Instant::now() + t);
    loop {
        let ms = match deadline {
            Some(d) => {
                let left = d.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return false;
                }
                PollTimeout::try_from(left.as_millis().min(60_000) as i32).unwrap_or(PollTimeout::MAX)
            }
            None => PollTimeout::NONE,
        };
        let mut fds = [PollFd::new(fd.as_fd(), PollFlags::POLLIN)];
        match poll(&mut fds, ms) {
            Ok(n) if n > 0 => return true,
            Ok(_) => {}
            Err(nix::errno::Errno::EINTR) => {}
            Err(_) => return true,
        }
    }
}

/// `kill`: sends `sig` to the container's first process.
pub fn signal(c: &Container, sig: i32) -> Result<()> {
    let Some(fd) = container_pidfd(c) else {
        bail!(
            "can only kill running containers: {} is {}",
            c.config.name,
            c.state.status.name()
        );
    };
    sys::process::pidfd_send_signal(&fd, sig).with_context(|| format!("signal container {}", c.config.name))
}

/// Waits for the container's first process and then its watcher to go, so
/// that its end is recorded when this returns.
fn wait_gone(c: &Container, timeout: Option<Duration>) -> bool {
    let monitor = monitor_pidfd(c);
    if let Some(fd) = container_pidfd(c)
        && !wait_pidfd(&fd, timeout)
    {
        return false;
    }
    if let Some(m) = monitor {
        // The watcher records the end and exits (a foreground casco may first
        // finish copying output): give it a little while.
        wait_pidfd(&m, Some(Duration::from_secs(10)));
    }
    true
}

/// `stop`: the stop signal, then SIGKILL after `timeout` seconds.
pub fn stop(store: &Store, c: &Container, timeout: Option<u32>) -> Result<()> {
    if !c.state.is_running() {
        return Ok(());
    }
    let secs = timeout.unwrap_or(c.config.stop_timeout);
    if let Some(fd) = container_pidfd(c) {
        if secs > 0 {
            let _ = sys::process::pidfd_send_signal(&fd, c.config.stop_signal);
        }
        if secs == 0 || !wait_pidfd(&fd, Some(Duration::from_secs(secs as u64))) {
            let _ = sys::process::pidfd_send_signal(&fd, libc::SIGKILL);
            if let Some(cg) = &c.state.cgroup {
                let _ = crate::cgroups::Manager::system().map(|m| m.open(cg).kill_all());
            }
        }
    }
    wait_gone(c, Some(Duration::from_secs(30)));
    // A watcher killed -9 records nothing: write what `refresh` infers.
    if let Ok(Some(now)) = super::load(store, &c.config.id)
        && now.state.status == Status::Exited
    {
        let _ = super::update_state(store, &c.config.id, |x| {
            if x.state.is_running() {
                x.state = now.state.clone();
            }
            Ok(())
        });
    }
    Ok(())
}

/// `wait`: blocks until the container is not running; returns its exit code
/// (0 for one never started, as podman).
pub fn wait(store: &Store, id: &str) -> Result<i32> {
    loop {
        let c = super::load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
        if c.state.is_running() {
            wait_gone(&c, None);
            // Loop: read what the watcher recorded.
            continue;
        }
        return Ok(c.state.exit_code.unwrap_or(0));
    }
}

/// `rm`: removes a container; `force` stops a running one first.
pub fn remove(store: &Store, id: &str, force: bool, timeout: Option<u32>) -> Result<()> {
    let lock = super::lock(store, id)?;
    let c = super::load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
    if c.state.is_running() {
        if !force {
            return Err(Coded::new(
                2,
                format!(
                    "cannot remove container {} as it is running: stop it first, or use rm -f",
                    c.config.name
                ),
            )
            .into());
        }
        let mut state = c.state.clone();
        state.status = Status::Removing;
        super::save_state(store, id, &state, Durability::CrashSafe)?;
        drop(lock);
        // The watcher sees Removing and leaves the rest to us.
        if let Some(fd) = container_pidfd(&c) {
            if let Some(t) = timeout.filter(|t| *t > 0) {
                let _ = sys::process::pidfd_send_signal(&fd, c.config.stop_signal);
                wait_pidfd(&fd, Some(Duration::from_secs(t as u64)));
            }
            let _ = sys::process::pidfd_send_signal(&fd, libc::SIGKILL);
        }
        if !wait_gone(&c, Some(Duration::from_secs(30))) {
            bail!("container {} did not stop after SIGKILL", c.config.name);
        }
        let _relock = super::lock(store, id)?;
        return remove_files(store, &c);
    }
    let r = remove_files(store, &c);
    drop(lock);
    r
}

/// Deletes everything of a stopped container. The directory is first renamed
/// away (atomically: the container is gone for every reader at once), then
/// deleted; a crash in between leaves only a temp directory to sweep.
pub fn remove_files(store: &Store, c: &Container) -> Result<()> {
    let id = &c.config.id;
    if let Some(cg) = &c.state.cgroup
        && let Ok(m) = crate::cgroups::Manager::system()
    {
        let cg = m.open(cg);
        let _ = cg.kill_all();
        let _ = cg.remove();
    }
    super::release_name(store, &c.config.name, id);
    let dir = store.container_dir(id);
    let mut r = [0u8; 6];
    sys::random_bytes(&mut r);
    let graveyard = store.tmp_dir().join(format!(
        "{TMP_PREFIX}{}-{}-rm-{}",
        std::process::id(),
        crate::util::ids::hex(&r),
        &id[..12]
    ));
    match std::fs::rename(&dir, &graveyard) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e).with_context(|| format!("remove {}", dir.display())),
    }
    let _ = std::fs::remove_dir_all(store.container_run_dir(id));
    crate::output::debug(|| "container directory renamed away".into());
    let r = crate::layers::store::remove_tree(store, &graveyard);
    crate::output::debug(|| "container directory removed".into());
    r
}
