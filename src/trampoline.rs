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
use std::io::{self, Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, OwnedFd};

use anyhow::{Context, Result};

use crate::namespaces::exec::JoinRequest;
use crate::sys;

/// argv[0] of the sealed copy; `main` checks it before anything else.
pub const ARGV0: &str = "casco-exec-joiner";
const ENV: &str = "CASCO_JOIN_REQUEST";

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
    let run = || -> Result<()> {
        let mut f = File::from(sys::exec::memfd("casco-join-request", false, false).context("memfd_create")?);
        f.write_all(&serde_json::to_vec(req).context("encode the request")?)
            .context("write the request")?;
        f.rewind().context("rewind")?;
        let mut keep = vec![f.as_raw_fd(), req.err, req.pid_pipe, req.pidfd];
        keep.extend(req.stdio.iter().flatten());
        keep.extend(req.tty_socket);
        for fd in keep {
            let borrowed = std::mem::ManuallyDrop::new(sys::fd::file_from_raw(fd));
            sys::exec::keep_across_exec(borrowed.as_fd()).context("keep a descriptor across exec")?;
        }
        let argv = [std::ffi::CString::new(ARGV0).expect("no NUL")];
        let envp = [std::ffi::CString::new(format!("{ENV}={}", f.as_raw_fd())).expect("no NUL")];
        let e = sys::exec::execveat_fd(sealed.as_fd(), &argv, &envp);
        Err(e).context("exec the sealed copy of casco")
    };
    match run() {
        Ok(()) => anyhow::anyhow!("exec returned"),
        Err(e) => e,
    }
}

/// Called first in `main`: when this process is the sealed joiner, do its
/// work and never return.
pub fn run_if_joiner() {
    if std::env::args_os().next().is_none_or(|a| a != ARGV0) {
        return;
    }
    let fd: i32 = std::env::var(ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(-1);
    if fd < 0 {
        sys::process::exit_now(crate::exit::ENGINE as i32);
    }
    let mut data = Vec::new();
    let mut f = sys::fd::file_from_raw(fd);
    if f.read_to_end(&mut data).is_err() {
        sys::process::exit_now(crate::exit::ENGINE as i32);
    }
    drop(f);
    match serde_json::from_slice::<JoinRequest>(&data) {
        Ok(req) => crate::namespaces::exec::joiner_main(req),
        Err(_) => sys::process::exit_now(crate::exit::ENGINE as i32),
    }
}
