//! Handing work to a fresh image of casco across exec: the sealed `exec`
//! joiner and the lean monitor. The payload travels as JSON in a memfd whose
//! number is in an environment variable; argv[0] names the role, and `main`
//! checks it before parsing any command line.

use std::ffi::CString;
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use anyhow::{Context, Result};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys;

const ENV: &str = "CASCO_HANDOFF";

/// What to exec.
pub enum Target<'a> {
    /// An open executable (the sealed copy of casco).
    Fd(BorrowedFd<'a>),
    /// A path (/proc/self/exe).
    Path(&'a str),
}

/// Execs `target` as role `argv0` with `payload`, keeping descriptors `keep`
/// open across the exec. Returns only the error when that fails.
pub fn exec_with(target: Target<'_>, argv0: &str, payload: &impl Serialize, keep: &[RawFd]) -> anyhow::Error {
    let run = || -> Result<()> {
        let mut f = File::from(sys::exec::memfd("casco-handoff", false, false).context("memfd_create")?);
        f.write_all(&serde_json::to_vec(payload).context("encode the hand-off")?)
            .context("write the hand-off")?;
        f.rewind().context("rewind")?;
        for &fd in keep.iter().chain([f.as_raw_fd()].iter()) {
            let borrowed = std::mem::ManuallyDrop::new(sys::fd::file_from_raw(fd));
            sys::exec::keep_across_exec(borrowed.as_fd()).context("keep a descriptor across exec")?;
        }
        let argv = [CString::new(argv0).context("argv0")?];
        let envp = [CString::new(format!("{ENV}={}", f.as_raw_fd())).expect("no NUL")];
        match target {
            Target::Fd(fd) => Err(sys::exec::execveat_fd(fd, &argv, &envp)).context("exec casco"),
            Target::Path(p) => {
                let e = nix::unistd::execve(&CString::new(p).context("path")?, &argv, &envp).unwrap_err();
                Err(e).context("exec casco")
            }
        }
    };
    match run() {
        Ok(()) => anyhow::anyhow!("exec returned"),
        Err(e) => e,
    }
}

/// The payload when this process was started as role `argv0`; `None` when it
/// was not. A process started as the role with no readable payload exits.
pub fn receive<T: DeserializeOwned>(argv0: &str) -> Option<T> {
    if std::env::args_os().next().is_none_or(|a| a != argv0) {
        return None;
    }
    let fd: RawFd = std::env::var(ENV).ok().and_then(|v| v.parse().ok()).unwrap_or(-1);
    if fd < 0 {
        sys::process::exit_now(crate::exit::ENGINE as i32);
    }
    let mut data = Vec::new();
    if sys::fd::file_from_raw(fd).read_to_end(&mut data).is_err() {
        sys::process::exit_now(crate::exit::ENGINE as i32);
    }
    match serde_json::from_slice(&data) {
        Ok(v) => Some(v),
        Err(_) => sys::process::exit_now(crate::exit::ENGINE as i32),
    }
}

/// Takes ownership of a descriptor handed over across exec, close-on-exec again.
pub fn adopt(fd: RawFd) -> std::os::fd::OwnedFd {
    let f = sys::fd::file_from_raw(fd);
    let _ = nix::fcntl::fcntl(f.as_fd(), nix::fcntl::FcntlArg::F_SETFD(nix::fcntl::FdFlag::FD_CLOEXEC));
    f.into()
}
