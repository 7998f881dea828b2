//! Signal masks and dispositions around fork and exec.

#![allow(unsafe_code)]

use std::io;

use nix::sys::signal::{SigSet, SigmaskHow, Signal, sigprocmask};

/// Blocks every signal; returns the previous mask.
pub fn block_all() -> io::Result<SigSet> {
    let mut old = SigSet::empty();
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(&SigSet::all()), Some(&mut old))?;
    Ok(old)
}

pub fn set_mask(mask: &SigSet) -> io::Result<()> {
    sigprocmask(SigmaskHow::SIG_SETMASK, Some(mask), None)?;
    Ok(())
}

/// Puts every catchable signal back to its default action. A process exec'd
/// with SIGPIPE ignored (Rust ignores it at start-up) would inherit that, so
/// the container's process must get this before exec.
pub fn reset_dispositions() {
    for sig in Signal::iterator() {
        if sig == Signal::SIGKILL || sig == Signal::SIGSTOP {
            continue;
        }
        // SAFETY: installing SIG_DFL involves no handler code; this runs in a
        // single-threaded child just before exec.
        unsafe {
            let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigDfl);
        }
    }
}

/// Ignores SIGPIPE and similar for this process (the monitor writes to pipes
/// whose readers may go away).
pub fn ignore(sig: Signal) {
    // SAFETY: SIG_IGN involves no handler code.
    unsafe {
        let _ = nix::sys::signal::signal(sig, nix::sys::signal::SigHandler::SigIgn);
    }
}
