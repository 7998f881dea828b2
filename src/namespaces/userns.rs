//! User namespaces for rootless casco: the ID mapping (from /etc/subuid and
//! /etc/subgid through newuidmap/newgidmap, or a single ID with a warning), and
//! `run_in_userns`, which runs a closure as root of a fresh user namespace with
//! that mapping — how rootless casco unpacks layers with their owners and
//! removes files owned by subordinate IDs.

use std::fs;
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use nix::unistd::Pid;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::sys;

/// One line of a uid_map or gid_map: `container host size`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdRange {
    pub container: u32,
    pub host: u32,
    pub size: u32,
}

/// The mapping of a user namespace.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct IdMapping {
    pub uids: Vec<IdRange>,
    pub gids: Vec<IdRange>,
}

impl IdMapping {
    /// Only the caller's own IDs, as container root: what an unprivileged
    /// process may write into its child's maps itself.
    pub fn single(uid: u32, gid: u32) -> IdMapping {
        IdMapping {
            uids: vec![IdRange {
                container: 0,
                host: uid,
                size: 1,
            }],
            gids: vec![IdRange {
                container: 0,
                host: gid,
                size: 1,
            }],
        }
    }

    /// True when the mapping needs the setuid helpers (more than our own ID).
    fn needs_helpers(&self) -> bool {
        self.uids.len() > 1 || self.gids.len() > 1 || self.uids.iter().chain(&self.gids).any(|r| r.size > 1)
    }

    /// The host UID that container UID `id` maps to.
    pub fn host_uid(&self, id: u32) -> Option<u32> {
        map_one(&self.uids, id)
    }

    pub fn host_gid(&self, id: u32) -> Option<u32> {
        map_one(&self.gids, id)
    }

    /// `--userns=keep-id`: the caller's UID/GID appear as themselves inside;
    /// container root is the first subordinate ID.
    pub fn keep_id(&self, uid: u32, gid: u32) -> Result<IdMapping> {
        Ok(IdMapping {
            uids: keep_one(&self.uids, uid)?,
            gids: keep_one(&self.gids, gid)?,
        })
    }

    /// The container UID that host UID `host` appears as.
    pub fn container_uid(&self, host: u32) -> Option<u32> {
        unmap_one(&self.uids, host)
    }

    pub fn container_gid(&self, host: u32) -> Option<u32> {
        unmap_one(&self.gids, host)
    }

    /// Number of container IDs mapped (for `info`).
    pub fn uid_count(&self) -> u64 {
        self.uids.iter().map(|r| r.size as u64).sum()
    }
}

fn unmap_one(ranges: &[IdRange], host: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| host >= r.host && host - r.host < r.size)
        .map(|r| r.container + (host - r.host))
}

fn map_one(ranges: &[IdRange], id: u32) -> Option<u32> {
    ranges
        .iter()
        .find(|r| id >= r.container && id - r.container < r.size)
        .map(|r| r.host + (id - r.container))
}

/// Rebuilds a default mapping (0 → own ID, 1.. → subordinate IDs) so that `own`
/// maps to itself: subordinate IDs fill 0..own and own+1.. in order.
fn keep_one(ranges: &[IdRange], own: u32) -> Result<Vec<IdRange>> {
    if own == 0 {
        // keep-id for root: nothing to move.
        return Ok(ranges.to_vec());
    }
    let subs: Vec<IdRange> = ranges.iter().filter(|r| r.container != 0).copied().collect();
    let total: u64 = subs.iter().map(|r| r.size as u64).sum();
    if total < own as u64 {
        bail!("--userns=keep-id needs at least {own} subordinate IDs, and /etc/subuid or /etc/subgid gives {total}");
    }
    let mut out = Vec::new();
    let mut next_container: u32 = 0;
    let mut push = |host: u32, size: u32, out: &mut Vec<IdRange>| {
        out.push(IdRange {
            container: next_container,
            host,
            size,
        });
        next_container += size;
    };
    let mut remaining_before = own;
    for r in &subs {
        let mut host = r.host;
        let mut size = r.size;
        if remaining_before > 0 {
            let take = size.min(remaining_before);
            push(host, take, &mut out);
            remaining_before -= take;
            host += take;
            size -= take;
            if remaining_before == 0 {
                push(own_host(ranges), 1, &mut out);
            }
        }
        if size > 0 && remaining_before == 0 {
            push(host, size, &mut out);
        }
    }
    Ok(out)
}

fn own_host(ranges: &[IdRange]) -> u32 {
    ranges.iter().find(|r| r.container == 0).map(|r| r.host).unwrap_or(0)
}

/// Reads `name:start:count` (or `uid:start:count`) ranges for the user.
fn subordinate_ranges(file: &str, name: Option<&str>, id: u32) -> Vec<(u32, u32)> {
    let Ok(text) = fs::read_to_string(file) else {
        return Vec::new();
    };
    let id_s = id.to_string();
    text.lines()
        .filter_map(|l| {
            let mut f = l.trim().split(':');
            let who = f.next()?;
            let start: u32 = f.next()?.trim().parse().ok()?;
            let count: u32 = f.next()?.trim().parse().ok()?;
            (who == id_s || Some(who) == name).then_some((start, count))
        })
        .filter(|&(_, c)| c > 0)
        .collect()
}

fn user_name(uid: u32) -> Option<String> {
    nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// The mapping rootless casco uses, and a warning when it could only map the
/// user's own ID.
pub fn default_mapping(uid: u32, gid: u32) -> (IdMapping, Option<String>) {
    let name = user_name(uid);
    let subu = subordinate_ranges("/etc/subuid", name.as_deref(), uid);
    let gname = nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid))
        .ok()
        .flatten()
        .map(|g| g.name);
    let mut subg = subordinate_ranges("/etc/subgid", name.as_deref(), uid);
    if subg.is_empty() {
        subg = subordinate_ranges("/etc/subgid", gname.as_deref(), gid);
    }
    if subu.is_empty() || subg.is_empty() {
        let who = name.unwrap_or_else(|| uid.to_string());
        return (
            IdMapping::single(uid, gid),
            Some(format!(
                "no subordinate ID ranges for {who} in /etc/subuid and /etc/subgid: using a single-ID user namespace, \
                 so image files owned by other IDs cannot keep their owners"
            )),
        );
    }
    let build = |own: u32, ranges: &[(u32, u32)]| {
        let mut v = vec![IdRange {
            container: 0,
            host: own,
            size: 1,
        }];
        let mut next = 1u32;
        for &(start, count) in ranges {
            v.push(IdRange {
                container: next,
                host: start,
                size: count,
            });
            next = next.saturating_add(count);
        }
        v
    };
    (
        IdMapping {
            uids: build(uid, &subu),
            gids: build(gid, &subg),
        },
        None,
    )
}

fn map_args(ranges: &[IdRange]) -> Vec<String> {
    ranges
        .iter()
        .flat_map(|r| [r.container.to_string(), r.host.to_string(), r.size.to_string()])
        .collect()
}

/// clone_fork for a child whose user-namespace maps the parent will write.
/// casco runs non-dumpable (see `main`), which makes a child's /proc files
/// root-owned and its maps unwritable for an unprivileged parent; so the clone
/// happens dumpable, and the parent turns non-dumpable again at once. The child
/// turns non-dumpable itself once mapped. Nothing else runs in the new user and
/// PID namespaces meanwhile.
pub fn clone_mappable(flags: libc::c_int) -> std::io::Result<Option<Pid>> {
    clone_mappable_with(flags, sys::process::clone_fork)
}

/// [`clone_mappable`] through another clone function (clone3 into a cgroup).
pub fn clone_mappable_with(
    flags: libc::c_int,
    clone: impl FnOnce(libc::c_int) -> std::io::Result<Option<Pid>>,
) -> std::io::Result<Option<Pid>> {
    if flags & libc::CLONE_NEWUSER == 0 {
        return clone(flags);
    }
    let _ = sys::set_dumpable(true);
    let r = clone(flags);
    if !matches!(r, Ok(None)) {
        let _ = sys::set_dumpable(false);
    }
    r
}

/// Writes the maps of the user namespace that process `pid` is in. Called by
/// the parent, from outside that namespace (the only place it can be done).
pub fn write_mappings(pid: Pid, mapping: &IdMapping) -> Result<()> {
    if mapping.needs_helpers() {
        let spawn = |tool: &str, ranges: &[IdRange]| {
            Command::new(tool)
                .arg(pid.to_string())
                .args(map_args(ranges))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .with_context(|| format!("run {tool} (install the uidmap package)"))
        };
        // The two helpers are independent: run them at once.
        let u = spawn("newuidmap", &mapping.uids)?;
        let g = spawn("newgidmap", &mapping.gids)?;
        for (tool, child) in [("newuidmap", u), ("newgidmap", g)] {
            let out = child.wait_with_output().with_context(|| format!("wait for {tool}"))?;
            if !out.status.success() {
                bail!("{tool} {pid} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
            }
        }
        return Ok(());
    }
    let line = |r: &[IdRange]| map_args(r).chunks(3).map(|c| c.join(" ") + "\n").collect::<String>();
    let proc = format!("/proc/{pid}");
    fs::write(format!("{proc}/setgroups"), "deny").with_context(|| format!("write {proc}/setgroups"))?;
    fs::write(format!("{proc}/uid_map"), line(&mapping.uids)).with_context(|| format!("write {proc}/uid_map"))?;
    fs::write(format!("{proc}/gid_map"), line(&mapping.gids)).with_context(|| format!("write {proc}/gid_map"))?;
    Ok(())
}

/// Runs `f` in a child process that is root in a new user namespace with
/// `mapping`, and returns what it returned. The child shares nothing but what
/// it inherited at fork; its result travels back as JSON over a pipe.
///
/// Must be called while casco is single-threaded.
pub fn run_in_userns<T, F>(mapping: &IdMapping, f: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    run_in_child(Some(mapping), 0, f)
}

/// Runs `f` in a child process created with the namespaces in `flags` (plus a
/// user namespace with `mapping`, when given), and returns what it returned.
pub fn run_in_child<T, F>(mapping: Option<&IdMapping>, flags: libc::c_int, f: F) -> Result<T>
where
    T: Serialize + DeserializeOwned,
    F: FnOnce() -> Result<T>,
{
    let (go_r, go_w) = nix::unistd::pipe().context("pipe")?;
    let (res_r, res_w) = nix::unistd::pipe().context("pipe")?;
    let userns = if mapping.is_some() { libc::CLONE_NEWUSER } else { 0 };
    let child = clone_mappable(flags | userns).context("create a helper process")?;
    let Some(pid) = child else {
        drop(go_w);
        drop(res_r);
        child_side(go_r, res_w, f)
    };
    drop(go_r);
    drop(res_w);
    let mapped = match mapping {
        Some(m) => write_mappings(pid, m),
        None => Ok(()),
    };
    let mut go = fs::File::from(go_w);
    if mapped.is_ok() {
        let _ = go.write_all(b"1");
    }
    drop(go);
    let mut buf = Vec::new();
    let _ = fs::File::from(res_r).read_to_end(&mut buf);
    let _ = nix::sys::wait::waitpid(pid, None);
    mapped?;
    let result: std::result::Result<T, String> = serde_json::from_slice(&buf)
        .with_context(|| "the user-namespace helper process died without an answer".to_string())?;
    result.map_err(|e| anyhow::anyhow!(e))
}

fn child_side<T, F>(go_r: OwnedFd, res_w: OwnedFd, f: F) -> !
where
    T: Serialize,
    F: FnOnce() -> Result<T>,
{
    let mut b = [0u8; 1];
    let mut go = fs::File::from(go_r);
    if !matches!(go.read(&mut b), Ok(1)) {
        sys::process::exit_now(1);
    }
    let _ = sys::set_dumpable(false);
    let result = f().map_err(|e| format!("{e:#}"));
    let data = serde_json::to_vec(&result).unwrap_or_else(|_| b"{\"Err\":\"encode result\"}".to_vec());
    let _ = fs::File::from(res_w).write_all(&data);
    sys::process::exit_now(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(c: u32, h: u32, s: u32) -> IdRange {
        IdRange {
            container: c,
            host: h,
            size: s,
        }
    }

    #[test]
    fn maps_ids() {
        let m = IdMapping {
            uids: vec![r(0, 1000, 1), r(1, 100000, 65536)],
            gids: vec![r(0, 1000, 1)],
        };
        assert_eq!(m.host_uid(0), Some(1000));
        assert_eq!(m.host_uid(1), Some(100000));
        assert_eq!(m.host_uid(65536), Some(165535));
        assert_eq!(m.host_uid(65537), None);
        assert_eq!(m.host_gid(5), None);
    }

    #[test]
    fn keep_id_puts_own_id_in_place() {
        let uids = vec![r(0, 1000, 1), r(1, 100000, 65536)];
        let k = keep_one(&uids, 1000).unwrap();
        assert_eq!(k, vec![r(0, 100000, 1000), r(1000, 1000, 1), r(1001, 101000, 64536)]);
        assert!(keep_one(&[r(0, 1000, 1), r(1, 100000, 10)], 1000).is_err());
    }

    #[test]
    fn single_mapping_needs_no_helpers() {
        assert!(!IdMapping::single(1000, 1000).needs_helpers());
    }
}
