//! Creating and entering containers: the process that becomes a container, its
//! namespaces, root filesystem and credentials.
//!
//! `casco run` (or a detached container's monitor) builds an [`InitPlan`], then
//! [`spawn::spawn`] clones ONE child straight into new mount, PID, UTS and IPC
//! namespaces (plus network for `--network none`, plus user when rootless).
//! The child is PID 1 of its namespace. It sets itself up ([`init`]) and execs
//! the container's command; the parent learns the outcome from a close-on-exec
//! pipe (EOF: exec happened; data: the error and its exit code). No re-exec of
//! casco, no intermediate process.
//!
//! Ordering constraints, each commented where it bites:
//! - the parent writes the user-namespace maps (only possible from outside);
//!   the child waits for them before anything that needs its capabilities;
//! - the child joins its cgroup before it unshares the cgroup namespace, so
//!   the namespace's root is the container's cgroup;
//! - every mount is made before pivot_root, onto targets opened inside the
//!   root with openat2(RESOLVE_IN_ROOT): a symlink in an image cannot send a
//!   mount elsewhere, and proc/sysfs mounts see the host's fully visible
//!   instances (the kernel requires that in a user namespace);
//! - capabilities and IDs change last, then no_new_privs, then exec.
//!
//! CVE-2019-5736 (overwriting the host binary through /proc/PID/exe): every
//! casco process makes itself non-dumpable first thing in `main`, so its
//! /proc/PID/exe cannot be opened by container processes, which lack
//! CAP_SYS_PTRACE. A container's first process is alone in its fresh PID
//! namespace until it execs, so nothing can race for its /proc entry; `exec`
//! processes enter a namespace that may hold hostile processes and so exec
//! through a sealed copy (see `exec`). CVE-2024-21626 (leaked descriptors):
//! the child marks every descriptor above 2 close-on-exec and chdirs only
//! inside the new root.

pub mod exec;
pub mod init;
pub mod rootfs;
pub mod spawn;
pub mod user;
pub mod userns;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Everything the container's first process needs, computed before the clone
/// (the child gets it by inheritance; only a `--init` container's first
/// process passes it on, to the sealed copy of casco it becomes).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitPlan {
    pub rootfs: RootfsPlan,
    pub mounts: Vec<MountPlan>,
    pub hostname: String,
    pub readonly_root: bool,
    pub privileged: bool,
    /// In a user namespace: device nodes are bind-mounted from the host.
    pub userns: bool,
    /// A private network namespace (`--network none`).
    pub new_netns: bool,
    /// The cgroup v2 directory the child is created in (clone3), if any.
    pub cgroup_dir: Option<PathBuf>,
    /// cgroup.procs files the child writes "0" into before unsharing its cgroup
    /// ns (v1 hierarchies; v2 too when clone3 is unavailable).
    pub cgroup_procs: Vec<PathBuf>,
    /// Mount cgroup2 read-only at /sys/fs/cgroup (a unified host).
    pub mount_cgroup2: bool,
    pub process: ProcessPlan,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum RootfsPlan {
    Overlay {
        lowers: Vec<PathBuf>,
        upper: PathBuf,
        work: PathBuf,
        target: PathBuf,
        userxattr: bool,
    },
    /// A ready directory (the vfs driver's private copy), bind-mounted onto itself.
    Dir { dir: PathBuf },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum MountKind {
    Bind { source: PathBuf, recursive: bool },
    Tmpfs { options: String },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MountPlan {
    pub destination: String,
    pub kind: MountKind,
    pub readonly: bool,
    /// private, rprivate, shared, rshared, slave, rslave
    pub propagation: Option<String>,
    pub nosuid: bool,
    pub nodev: bool,
    pub noexec: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessPlan {
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub cwd: String,
    /// `user[:group]` to resolve in the container's /etc/passwd.
    pub user: String,
    pub group_add: Vec<String>,
    /// The bounding set; root gets it as effective/permitted too.
    pub caps: Vec<caps::Capability>,
    /// Capabilities named by --cap-add: a non-root user gets these as ambient.
    pub added_caps: Vec<caps::Capability>,
    pub tty: bool,
    /// The terminal's initial size (rows, cols), set before the command starts.
    pub tty_size: Option<(u16, u16)>,
    /// Run casco's minimal init as PID 1 (`--init`).
    pub init: bool,
}

/// podman's default capability set.
pub const DEFAULT_CAPS: [caps::Capability; 11] = [
    caps::Capability::CAP_CHOWN,
    caps::Capability::CAP_DAC_OVERRIDE,
    caps::Capability::CAP_FOWNER,
    caps::Capability::CAP_FSETID,
    caps::Capability::CAP_KILL,
    caps::Capability::CAP_NET_BIND_SERVICE,
    caps::Capability::CAP_SETFCAP,
    caps::Capability::CAP_SETGID,
    caps::Capability::CAP_SETPCAP,
    caps::Capability::CAP_SETUID,
    caps::Capability::CAP_SYS_CHROOT,
];

/// Paths hidden from an unprivileged container (podman's list).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
    "/sys/devices/virtual/powercap",
];

/// Paths made read-only in an unprivileged container (podman's list).
pub const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// Parses `NET_ADMIN`, `CAP_NET_ADMIN`, `net_admin`.
pub fn parse_capability(s: &str) -> anyhow::Result<caps::Capability> {
    let up = s.trim().to_ascii_uppercase();
    let name = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    name.parse::<caps::Capability>()
        .map_err(|_| anyhow::anyhow!("unknown capability {s:?}"))
}

/// The capability set for a container: defaults (or all, privileged), plus
/// --cap-add, minus --cap-drop; "ALL" works in both.
pub fn capability_set(privileged: bool, add: &[String], drop: &[String]) -> anyhow::Result<Vec<caps::Capability>> {
    // "All" is what casco itself holds: a capability missing from its own
    // bounding set (CAP_SYS_RESOURCE on some hosts) cannot be granted.
    let all: Vec<caps::Capability> = caps::read(None, caps::CapSet::Bounding)
        .map(|s| s.into_iter().collect())
        .unwrap_or_else(|_| caps::all().into_iter().collect());
    let mut set: Vec<caps::Capability> = if privileged { all.clone() } else { DEFAULT_CAPS.to_vec() };
    for a in add {
        if a.eq_ignore_ascii_case("all") {
            set = all.clone();
        } else {
            let c = parse_capability(a)?;
            if !set.contains(&c) {
                set.push(c);
            }
        }
    }
    for d in drop {
        if d.eq_ignore_ascii_case("all") {
            set.clear();
        } else {
            let c = parse_capability(d)?;
            set.retain(|x| *x != c);
        }
    }
    set.sort_by_key(|c| c.index());
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_caps_match_podman_bitmask() {
        let mask: u64 = DEFAULT_CAPS.iter().map(|c| c.bitmask()).sum();
        assert_eq!(mask, 0x8004_05fb);
    }

    #[test]
    fn cap_add_and_drop() {
        let s = capability_set(false, &["net_admin".into()], &["CAP_CHOWN".into()]).unwrap();
        assert!(s.contains(&caps::Capability::CAP_NET_ADMIN));
        assert!(!s.contains(&caps::Capability::CAP_CHOWN));
        assert!(capability_set(false, &[], &["all".into()]).unwrap().is_empty());
        assert!(capability_set(false, &["CAP_NOPE".into()], &[]).is_err());
        let held = caps::read(None, caps::CapSet::Bounding).unwrap().len();
        assert_eq!(capability_set(true, &[], &[]).unwrap().len(), held);
    }
}
