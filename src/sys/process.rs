//! Process creation and exit: clone(2) used like fork(2) but with namespace
//! flags, _exit(2), pidfds, and signal-mask plumbing.

#![allow(unsafe_code)]

use std::io;
use std::os::fd::{FromRawFd, OwnedFd, RawFd};

use nix::unistd::Pid;

/// `clone(flags | SIGCHLD)` with no new stack: the child continues here, like
/// fork(2), but is created inside the new namespaces named by `flags`
/// (CLONE_NEWUSER, CLONE_NEWPID, ...). Returns `Some(child)` in the parent and
/// `None` in the child. `CLONE_PARENT` makes the child a sibling of the caller.
///
/// Refuses to run in a multi-threaded process: the child would get a copy of
/// this thread only, and a lock another thread held (malloc's, stdout's) would
/// stay held forever in the child. casco starts no threads before it spawns.
/// The child must leave by exec or [`exit_now`], never by returning into code
/// that would run the parent's destructors.
pub fn clone_fork(flags: libc::c_int) -> io::Result<Option<Pid>> {
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!("cannot fork: {threads} threads are running")));
    }
    raw_clone(flags)
}

/// [`clone_fork`] for a process that is itself a forked child of casco and so
/// single-threaded by construction — where /proc may no longer describe it
/// (after entering another PID namespace's mount namespace).
pub fn clone_fork_in_child(flags: libc::c_int) -> io::Result<Option<Pid>> {
    raw_clone(flags)
}

/// struct clone_args (linux/sched.h), up to the `cgroup` field (kernel 5.7).
#[repr(C)]
struct CloneArgs {
    flags: u64,
    pidfd: u64,
    child_tid: u64,
    parent_tid: u64,
    exit_signal: u64,
    stack: u64,
    stack_size: u64,
    tls: u64,
    set_tid: u64,
    set_tid_size: u64,
    cgroup: u64,
}

const CLONE_INTO_CGROUP: u64 = 0x2_0000_0000;

/// [`clone_fork`] with clone3(2) and CLONE_INTO_CGROUP: the child is created
/// inside the cgroup v2 directory `cgroup` — no migration afterwards, which on
/// this kernel would wait for an RCU grace period. `Err` with ENOSYS, E2BIG or
/// EINVAL means the kernel predates it: fall back to [`clone_fork`].
pub fn clone_into_cgroup(flags: libc::c_int, cgroup: std::os::fd::BorrowedFd<'_>) -> io::Result<Option<Pid>> {
    use std::os::fd::AsRawFd;
    let threads = thread_count()?;
    if threads != 1 {
        return Err(io::Error::other(format!("cannot fork: {threads} threads are running")));
    }
    let args = CloneArgs {
        flags: (flags as u32 as u64) | CLONE_INTO_CGROUP,
        pidfd: 0,
        child_tid: 0,
        parent_tid: 0,
        exit_signal: libc::SIGCHLD as u64,
        stack: 0,
        stack_size: 0,
        tls: 0,
        set_tid: 0,
        set_tid_size: 0,
        cgroup: cgroup.as_raw_fd() as u64,
    };
    // SAFETY: `args` is a valid clone_args of the size passed; with no stack
    // the child continues on a copy of this thread's stack, as with fork. The
    // process is single-threaded (checked above).
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone3,
            &args as *const CloneArgs,
            std::mem::size_of::<CloneArgs>(),
        )
    };
    match r {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

fn raw_clone(flags: libc::c_int) -> io::Result<Option<Pid>> {
    // SAFETY: SYS_clone with a null stack pointer duplicates the calling thread
    // like fork; the remaining pointer arguments (parent_tid, child_tid, tls) are
    // unused without CLONE_*TID/CLONE_SETTLS flags, so zero is fine. Both callers
    // guarantee a single-threaded process (checked, or a forked child), so no lock can be held by a thread
    // that does not exist in the child.
    let r = unsafe {
        libc::syscall(
            libc::SYS_clone,
            (flags | libc::SIGCHLD) as libc::c_ulong,
            0usize,
            0usize,
            0usize,
            0usize,
        )
    };
    match r {
        -1 => Err(io::Error::last_os_error()),
        0 => Ok(None),
        pid => Ok(Some(Pid::from_raw(pid as i32))),
    }
}

/// The number of threads of this process: procfs gives /proc/self/task a link
/// count of 2 plus one per thread, so one stat(2) answers.
pub fn thread_count() -> io::Result<u64> {
    use std::os::unix::fs::MetadataExt;
    Ok(std::fs::metadata("/proc/self/task")?.nlink().saturating_sub(2))
}

/// Ends the process at once with `code`: no atexit handlers, no destructors,
/// no stdio flush. The only correct way out of a forked child that did not exec.
pub fn exit_now(code: i32) -> ! {
    // SAFETY: _exit never returns and touches no user-space state.
    unsafe { libc::_exit(code) }
}

/// pidfd_open(2): a file descriptor that refers to the process `pid` and stays
/// valid (and unambiguous) after it exits.
pub fn pidfd_open(pid: i32) -> io::Result<OwnedFd> {
    // SAFETY: plain integer arguments; on success the kernel returns a new fd that
    // we take ownership of exactly once.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if r < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: r is a freshly created descriptor owned by no one else.
    Ok(unsafe { OwnedFd::from_raw_fd(r as RawFd) })
}

/// pidfd_send_signal(2): signals the exact process the pidfd refers to, never
/// a process that reused its PID.
pub fn pidfd_send_signal(pidfd: &OwnedFd, sig: i32) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    // SAFETY: a valid fd, a signal number, a null siginfo (kernel fills it), flags 0.
    let r = unsafe { libc::syscall(libc::SYS_pidfd_send_signal, pidfd.as_raw_fd(), sig, 0usize, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// prctl(PR_SET_PDEATHSIG): the kernel sends `sig` to this process when its
/// parent thread exits. Cleared by a credential change, so set it after setuid.
pub fn set_parent_death_signal(sig: i32) -> io::Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, sig as libc::c_ulong, 0, 0, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// prctl(PR_SET_CHILD_SUBREAPER).
pub fn set_child_subreaper() -> io::Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_CHILD_SUBREAPER, 1 as libc::c_ulong, 0, 0, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// prctl(PR_SET_NAME): the name `ps` shows for this process (15 bytes kept).
pub fn set_process_name(name: &str) {
    let mut buf = [0u8; 16];
    let n = name.len().min(15);
    buf[..n].copy_from_slice(&name.as_bytes()[..n]);
    // SAFETY: buf is a NUL-terminated 16-byte array that outlives the call.
    unsafe { libc::prctl(libc::PR_SET_NAME, buf.as_ptr() as libc::c_ulong, 0, 0, 0) };
}

/// prctl(PR_SET_NO_NEW_PRIVS): execve can no longer grant privileges.
pub fn set_no_new_privs() -> io::Result<()> {
    // SAFETY: integer arguments only.
    let r = unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1 as libc::c_ulong, 0, 0, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// close_range(first, ~0, CLOSE_RANGE_CLOEXEC): marks every descriptor from
/// `first` up close-on-exec, so none leaks into the container's process.
pub fn cloexec_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments only; CLOSE_RANGE_CLOEXEC closes nothing now.
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// close_range(first, ~0, 0): closes every descriptor from `first` up. Only
/// for a forked child that keeps running without exec (the `--init` process).
pub fn close_from(first: u32) -> io::Result<()> {
    // SAFETY: integer arguments only; the caller owns every descriptor it closes
    // (a child whose Rust objects referring to them are never used again).
    let r = unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
    if r < 0 { Err(io::Error::last_os_error()) } else { Ok(()) }
}

/// The start time of a process in clock ticks since boot (field 22 of
/// /proc/PID/stat): with the PID, it names one process across PID reuse.
pub fn process_start_time(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // comm (field 2) may contain spaces and parentheses: split after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split(' ').nth(19)?.parse().ok()
}

/// True when `pid` is alive and started at `start` (a zombie counts as gone).
pub fn process_matches(pid: i32, start: u64) -> bool {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return false;
    };
    let Some(close) = stat.rfind(')') else { return false };
    let mut fields = stat[close + 2..].split(' ');
    let state = fields.next().unwrap_or("");
    if state == "Z" || state == "X" {
        return false;
    }
    fields.nth(18).and_then(|s| s.parse::<u64>().ok()) == Some(start)
}

/// Drops this process's page-table entries for its read-only file mappings
/// (code and constant data of casco and its libraries), so its resident size
/// counts only what it touches from now on. The pages stay in the page cache
/// and fault back in on use. A mapping with private copies of its pages (such
/// as relocated data made read-only afterwards, or anything writable) is left
/// alone: dropping those would lose the changes.
pub fn release_code_pages() {
    let Ok(smaps) = std::fs::read_to_string("/proc/self/smaps") else {
        return;
    };
    let mut current: Option<(usize, usize)> = None;
    for line in smaps.lines() {
        let mut f = line.split_whitespace();
        let first = f.next().unwrap_or("");
        if let Some((a, b)) = first.split_once('-')
            && let (Ok(start), Ok(end)) = (usize::from_str_radix(a, 16), usize::from_str_radix(b, 16))
        {
            let perms = f.next().unwrap_or("");
            let path = f.nth(3).unwrap_or("");
            current = (matches!(perms, "r-xp" | "r--p") && path.starts_with('/')).then_some((start, end));
            continue;
        }
        // "Anonymous:" follows the mapping's header line: 0 means no private copies.
        if first == "Anonymous:"
            && let Some((start, end)) = current.take()
            && f.next() == Some("0")
        {
            // SAFETY: the range is a whole read-only file mapping of this
            // process with no private pages; MADV_DONTNEED only drops its
            // page-table entries, and the next access maps the same file pages.
            unsafe {
                libc::madvise(start as *mut libc::c_void, end - start, libc::MADV_DONTNEED);
            }
        }
    }
}
