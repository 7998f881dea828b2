//! The sealed re-exec of `exec`, against CVE-2019-5736.
//!
//! A process that enters a running container (`exec`) is visible to the
//! container's processes before it execs. If the command it runs is a script
//! whose interpreter is `#!/proc/self/exe`, the kernel starts casco's own
//! binary inside the container, dumpable, and a hostile process can open the
//! host binary through /proc/PID/exe and overwrite it once it exits.
//!
//! So the `exec` joiner first re-execs a sealed in-memory copy of casco —
//! while still in the host's namespaces, where the dynamic loader is found —
//! and does everything after that (entering the namespaces, forking, exec)
//! from the copy. /proc/self/exe of every process that enters the container is
//! then the sealed copy, which nobody can write. The copy is made per `exec`;
//! `run` does not need it, because a new container's first process is alone
//! in its namespace until it execs.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, OwnedFd};

use anyhow::{Context, Result};

use crate::handoff;
use crate::namespaces::exec::JoinRequest;
use crate::sys;

/// argv[0] of the sealed copy; `main` checks it before anything else.
pub const ARGV0: &str = "casco-exec-joiner";

/// A sealed, executable in-memory copy of the running binary.
pub fn sealed_self() -> Result<OwnedFd> {
    let mut src = File::open("/proc/self/exe").context("open /proc/self/exe")?;
    let fd = sys::exec::memfd("casco", true, true).context("memfd_create")?;
    let mut dst = File::from(fd);
    io::copy(&mut src, &mut dst).context("copy the casco binary")?;
    let fd = OwnedFd::from(dst);
    sys::exec::seal_all(fd.as_fd()).context("seal the casco copy")?;
    Ok(fd)
}

/// In the forked joiner: execs the sealed copy with `req`. Returns only the
/// error when that fails.
pub fn exec_joiner(sealed: &OwnedFd, req: &JoinRequest) -> anyhow::Error {
    let mut keep = vec![req.err, req.pid_pipe, req.pidfd];
    keep.extend(req.stdio.iter().flatten());
    keep.extend(req.tty_socket);
    handoff::exec_with(handoff::Target::Fd(sealed.as_fd()), ARGV0, req, &keep)
}

/// Called first in `main`: when this process is the sealed joiner, do its
/// work and never return.
pub fn run_if_joiner() {
    if let Some(req) = handoff::receive::<JoinRequest>(ARGV0) {
        crate::namespaces::exec::joiner_main(req)
    }
}
