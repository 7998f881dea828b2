//! `top`: the processes of a running container, found by PID namespace (so
//! it works without cgroups, rootless too), shown with PIDs as the container
//! sees them.

use std::fs;

use anyhow::{Result, bail};

use super::Container;

/// Clock ticks per second for /proc times; 100 on every Linux ABI casco runs on.
const HZ: f64 = 100.0;

struct Proc {
    ns_pid: i32,
    ns_ppid: i32,
    uid: u32,
    gid: u32,
    comm: String,
    args: String,
    state: String,
    utime_stime: u64,
    start: u64,
    tty: String,
    vsz_kib: u64,
    rss_kib: u64,
    nice: i64,
}

fn ns_inode(pid: i32) -> Option<String> {
    fs::read_link(format!("/proc/{pid}/ns/pid"))
        .ok()
        .map(|p| p.to_string_lossy().into_owned())
}

fn uptime_ticks() -> u64 {
    let s = fs::read_to_string("/proc/uptime").unwrap_or_default();
    let secs: f64 = s.split_whitespace().next().and_then(|x| x.parse().ok()).unwrap_or(0.0);
    (secs * HZ) as u64
}

fn read_proc(pid: i32, host_to_ns: &dyn Fn(i32) -> i32) -> Option<Proc> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat[open + 1..close].to_string();
    let f: Vec<&str> = stat[close + 2..].split(' ').collect();
    let num = |i: usize| f.get(i).and_then(|x| x.parse::<i64>().ok()).unwrap_or(0);
    let status = fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .map(|v| v.trim().to_string())
    };
    let ns_pid = field("NSpid:")
        .and_then(|v| v.split_whitespace().last().and_then(|x| x.parse().ok()))
        .unwrap_or(pid);
    let uid = field("Uid:")
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    let gid = field("Gid:")
        .and_then(|v| v.split_whitespace().next().and_then(|x| x.parse().ok()))
        .unwrap_or(0);
    let cmdline = fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
    let args = cmdline
        .split(|b| *b == 0)
        .filter(|s| !s.is_empty())
        .map(|s| String::from_utf8_lossy(s))
        .collect::<Vec<_>>()
        .join(" ");
    let tty_nr = num(4);
    let tty = if tty_nr == 0 {
        "?".to_string()
    } else {
        format!("pts/{}", (tty_nr & 0xff) | ((tty_nr >> 12) & 0xfff00))
    };
    Some(Proc {
        ns_pid,
        ns_ppid: host_to_ns(num(1) as i32),
        uid,
        gid,
        comm: comm.clone(),
        args: if args.is_empty() { format!("[{comm}]") } else { args },
        state: f.first().unwrap_or(&"?").to_string(),
        utime_stime: (num(11) + num(12)) as u64,
        start: num(19) as u64,
        tty,
        vsz_kib: num(20) as u64 / 1024,
        rss_kib: num(21) as u64 * 4,
        nice: num(16),
    })
}

fn duration(ticks: u64) -> String {
    let secs = ticks as f64 / HZ;
    if secs < 60.0 {
        format!("{secs:.3}s")
    } else if secs < 3600.0 {
        format!("{}m{:.0}s", (secs / 60.0) as u64, secs % 60.0)
    } else {
        format!(
            "{}h{}m{:.0}s",
            (secs / 3600.0) as u64,
            ((secs % 3600.0) / 60.0) as u64,
            secs % 60.0
        )
    }
}

/// Container UIDs as names, from the container's own /etc/passwd.
fn names(path: &str) -> Vec<(u32, String)> {
    fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split(':').collect();
            Some((f.get(2)?.parse().ok()?, f[0].to_string()))
        })
        .collect()
}

/// A tab-separated table of the container's processes.
pub fn top(c: &Container, descriptors: &[String]) -> Result<String> {
    let pid = c.state.pid;
    let Some(ns) = ns_inode(pid) else {
        bail!("container {} is not running", c.config.name)
    };
    let mut host_pids = Vec::new();
    for e in fs::read_dir("/proc")?.flatten() {
        let Ok(p) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if ns_inode(p).as_deref() == Some(ns.as_str()) {
            host_pids.push(p);
        }
    }
    let ns_of = |host: i32| -> i32 {
        fs::read_to_string(format!("/proc/{host}/status"))
            .ok()
            .and_then(|s| {
                s.lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .and_then(|v| v.split_whitespace().last().and_then(|x| x.parse().ok()))
            })
            .unwrap_or(0)
    };
    let mut procs: Vec<Proc> = host_pids
        .iter()
        .filter_map(|&p| read_proc(p, &|pp| if host_pids.contains(&pp) { ns_of(pp) } else { 0 }))
        .collect();
    procs.sort_by_key(|p| p.ns_pid);
    // Rootless, /proc shows host IDs: map them back into the container's view.
    if let Some(m) = &c.config.id_mapping {
        let back = |ranges: &[crate::namespaces::userns::IdRange], host: u32| {
            ranges
                .iter()
                .find(|r| host >= r.host && host - r.host < r.size)
                .map(|r| r.container + (host - r.host))
                .unwrap_or(65534)
        };
        for p in &mut procs {
            p.uid = back(&m.uids, p.uid);
            p.gid = back(&m.gids, p.gid);
        }
    }
    let users = names(&format!("/proc/{pid}/root/etc/passwd"));
    let groups = names(&format!("/proc/{pid}/root/etc/group"));
    let name_of = |list: &[(u32, String)], id: u32| {
        list.iter()
            .find(|(i, _)| *i == id)
            .map(|(_, n)| n.clone())
            .unwrap_or_else(|| id.to_string())
    };
    let now = uptime_ticks();
    let cols: Vec<String> = if descriptors.is_empty() {
        ["user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"]
            .iter()
            .map(|s| s.to_string())
            .collect()
    } else {
        descriptors
            .iter()
            .flat_map(|d| d.split(','))
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .collect()
    };
    let header = |d: &str| -> Result<&'static str> {
        Ok(match d {
            "user" => "USER",
            "uid" | "huid" => "UID",
            "group" => "GROUP",
            "gid" => "GID",
            "pid" => "PID",
            "ppid" => "PPID",
            "pcpu" => "%CPU",
            "etime" => "ELAPSED",
            "time" => "TIME",
            "tty" => "TTY",
            "args" => "COMMAND",
            "comm" => "COMMAND",
            "vsz" => "VSZ",
            "rss" => "RSS",
            "nice" => "NI",
            "stat" | "state" => "STATE",
            other => bail!(
                "unsupported top descriptor {other:?}: use user, uid, group, gid, pid, ppid, pcpu, etime, time, tty, args, comm, vsz, rss, nice, state"
            ),
        })
    };
    let mut out = cols.iter().map(|d| header(d)).collect::<Result<Vec<_>>>()?.join("\t");
    out.push('\n');
    for p in &procs {
        let elapsed = now.saturating_sub(p.start);
        let row: Vec<String> = cols
            .iter()
            .map(|d| match d.as_str() {
                "user" => name_of(&users, p.uid),
                "uid" | "huid" => p.uid.to_string(),
                "group" => name_of(&groups, p.gid),
                "gid" => p.gid.to_string(),
                "pid" => p.ns_pid.to_string(),
                "ppid" => p.ns_ppid.to_string(),
                "pcpu" => format!(
                    "{:.3}",
                    if elapsed > 0 {
                        100.0 * p.utime_stime as f64 / elapsed as f64
                    } else {
                        0.0
                    }
                ),
                "etime" => duration(elapsed),
                "time" => duration(p.utime_stime),
                "tty" => p.tty.clone(),
                "args" => p.args.clone(),
                "comm" => p.comm.clone(),
                "vsz" => p.vsz_kib.to_string(),
                "rss" => p.rss_kib.to_string(),
                "nice" => p.nice.to_string(),
                _ => p.state.clone(),
            })
            .collect();
        out.push_str(&row.join("\t"));
        out.push('\n');
    }
    Ok(out)
}
