//! The image config as a build changes it: metadata instructions (ENV, CMD,
//! LABEL, HEALTHCHECK...) applied to the config JSON, history entries, and the
//! small parsers they need (ports, durations). Pure functions, no I/O.

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};

use crate::container::DEFAULT_PATH;

/// The config a `FROM scratch` stage starts with.
pub fn scratch() -> Value {
    json!({
        "architecture": crate::image::host_arch(),
        "os": "linux",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [],
    })
}

/// The `config` object, created when missing.
pub fn section(cfg: &mut Value) -> &mut Map<String, Value> {
    if !cfg["config"].is_object() {
        cfg["config"] = json!({});
    }
    cfg["config"].as_object_mut().expect("just made an object")
}

fn strings(v: Option<&Value>) -> Vec<String> {
    v.and_then(Value::as_array)
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// The config's environment as `KEY=value` strings.
pub fn env(cfg: &Value) -> Vec<String> {
    strings(cfg["config"].get("Env"))
}

/// The value of `key` in the config's environment.
pub fn env_value(cfg: &Value, key: &str) -> Option<String> {
    env(cfg)
        .into_iter()
        .find_map(|e| e.split_once('=').filter(|(k, _)| *k == key).map(|(_, v)| v.to_string()))
}

/// Sets `key=value` in the environment, in place when the key exists.
pub fn set_env(cfg: &mut Value, key: &str, value: &str) {
    let mut env = env(cfg);
    let entry = format!("{key}={value}");
    match env
        .iter()
        .position(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) == key)
    {
        Some(i) => env[i] = entry,
        None => env.push(entry),
    }
    section(cfg).insert("Env".into(), json!(env));
}

/// Every stage's environment has a PATH (buildah and BuildKit add the
/// default one to images that lack it).
pub fn ensure_path(cfg: &mut Value) {
    if env_value(cfg, "PATH").is_none() {
        set_env(cfg, "PATH", DEFAULT_PATH);
    }
}

pub fn set_str(cfg: &mut Value, key: &str, value: &str) {
    section(cfg).insert(key.into(), json!(value));
}

pub fn get_str(cfg: &Value, key: &str) -> Option<String> {
    cfg["config"].get(key).and_then(Value::as_str).map(String::from)
}

pub fn set_list(cfg: &mut Value, key: &str, value: Vec<String>) {
    section(cfg).insert(key.into(), json!(value));
}

pub fn remove(cfg: &mut Value, key: &str) {
    section(cfg).remove(key);
}

/// Adds `key` to a set-like object field (`ExposedPorts`, `Volumes`).
pub fn add_to_set(cfg: &mut Value, field: &str, key: &str) {
    let s = section(cfg);
    if !s.get(field).is_some_and(Value::is_object) {
        s.insert(field.into(), json!({}));
    }
    s[field].as_object_mut().expect("object").insert(key.into(), json!({}));
}

pub fn set_label(cfg: &mut Value, key: &str, value: &str) {
    let s = section(cfg);
    if !s.get("Labels").is_some_and(Value::is_object) {
        s.insert("Labels".into(), json!({}));
    }
    s["Labels"]
        .as_object_mut()
        .expect("object")
        .insert(key.into(), json!(value));
}

/// The working directory (`/` when unset).
pub fn workdir(cfg: &Value) -> String {
    get_str(cfg, "WorkingDir")
        .filter(|w| !w.is_empty())
        .unwrap_or_else(|| "/".into())
}

/// `WORKDIR`: relative paths are taken from the current one; the result is
/// cleaned (`/a/./b/../c` → `/a/c`).
pub fn join_workdir(current: &str, dir: &str) -> String {
    let joined = if dir.starts_with('/') {
        dir.to_string()
    } else {
        format!("{current}/{dir}")
    };
    let mut parts: Vec<&str> = Vec::new();
    for p in joined.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    format!("/{}", parts.join("/"))
}

/// `EXPOSE` words: `80`, `80/tcp`, `53/udp`, `8000-8002` (a range exposes
/// each port). Returns `PORT/PROTO` keys.
pub fn parse_ports(words: &[String]) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for w in words {
        let (ports, proto) = match w.split_once('/') {
            Some((p, proto)) => (p, proto.to_ascii_lowercase()),
            None => (w.as_str(), "tcp".to_string()),
        };
        if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
            bail!("EXPOSE {w}: unknown protocol {proto:?} (tcp, udp or sctp)");
        }
        let port = |s: &str| -> Result<u16> {
            s.parse::<u16>()
                .ok()
                .filter(|p| *p > 0)
                .with_context(|| format!("EXPOSE {w}: invalid port {s:?}"))
        };
        match ports.split_once('-') {
            Some((a, b)) => {
                let (a, b) = (port(a)?, port(b)?);
                if a > b {
                    bail!("EXPOSE {w}: the range ends before it starts");
                }
                out.extend((a..=b).map(|p| format!("{p}/{proto}")));
            }
            None => out.push(format!("{}/{proto}", port(ports)?)),
        }
    }
    Ok(out)
}

/// A Go duration (`30s`, `1m30s`, `500ms`, `1h`) in nanoseconds.
pub fn parse_duration(s: &str) -> Result<u64> {
    let bad = || anyhow::anyhow!("invalid duration {s:?} (e.g. 30s, 1m30s, 500ms)");
    if s == "0" {
        return Ok(0);
    }
    let mut total: f64 = 0.0;
    let mut rest = s;
    if rest.is_empty() {
        return Err(bad());
    }
    while !rest.is_empty() {
        let num_end = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).ok_or_else(bad)?;
        if num_end == 0 {
            return Err(bad());
        }
        let n: f64 = rest[..num_end].parse().map_err(|_| bad())?;
        rest = &rest[num_end..];
        let unit_end = rest
            .find(|c: char| c.is_ascii_digit() || c == '.')
            .unwrap_or(rest.len());
        let mult: f64 = match &rest[..unit_end] {
            "ns" => 1.0,
            "us" | "µs" => 1e3,
            "ms" => 1e6,
            "s" => 1e9,
            "m" => 60e9,
            "h" => 3600e9,
            _ => return Err(bad()),
        };
        total += n * mult;
        rest = &rest[unit_end..];
    }
    Ok(total as u64)
}

/// Appends a history entry.
pub fn add_history(cfg: &mut Value, created: &str, created_by: &str, empty_layer: bool) {
    if !cfg["history"].is_array() {
        cfg["history"] = json!([]);
    }
    let mut h = json!({"created": created, "created_by": created_by});
    // MAINTAINER's author is on every entry after it (buildah).
    if let Some(a) = cfg["author"].as_str() {
        h["author"] = json!(a);
    }
    if empty_layer {
        h["empty_layer"] = json!(true);
    }
    cfg["history"].as_array_mut().expect("array").push(h);
}

/// Appends a layer's diff ID to `rootfs.diff_ids`.
pub fn add_diff_id(cfg: &mut Value, diff_id: &str) {
    if !cfg["rootfs"].is_object() {
        cfg["rootfs"] = json!({"type": "layers", "diff_ids": []});
    }
    if !cfg["rootfs"]["diff_ids"].is_array() {
        cfg["rootfs"]["diff_ids"] = json!([]);
    }
    cfg["rootfs"]["diff_ids"]
        .as_array_mut()
        .expect("array")
        .push(json!(diff_id));
}

/// Marks the history entries from `from` on as empty except the last, which
/// gets the one layer a squashed build makes.
pub fn squash_history(cfg: &mut Value, from: usize) {
    let Some(h) = cfg["history"].as_array_mut() else { return };
    let n = h.len();
    for (i, e) in h.iter_mut().enumerate().skip(from) {
        if i + 1 == n {
            if let Some(o) = e.as_object_mut() {
                o.remove("empty_layer");
            }
        } else {
            e["empty_layer"] = json!(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_is_set_in_place_and_path_added_once() {
        let mut c = scratch();
        set_env(&mut c, "A", "1");
        set_env(&mut c, "B", "2");
        set_env(&mut c, "A", "3");
        ensure_path(&mut c);
        ensure_path(&mut c);
        assert_eq!(
            env(&c),
            vec!["A=3".to_string(), "B=2".into(), format!("PATH={DEFAULT_PATH}")]
        );
        assert_eq!(env_value(&c, "B").as_deref(), Some("2"));
    }

    #[test]
    fn workdirs_join_and_clean() {
        assert_eq!(join_workdir("/", "a"), "/a");
        assert_eq!(join_workdir("/a", "b/../c/."), "/a/c");
        assert_eq!(join_workdir("/a", "/x//y/"), "/x/y");
        assert_eq!(join_workdir("/a", "../../.."), "/");
    }

    #[test]
    fn ports_and_ranges() {
        let w = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(parse_ports(&w(&["80", "53/UDP"])).unwrap(), vec!["80/tcp", "53/udp"]);
        assert_eq!(
            parse_ports(&w(&["8000-8002"])).unwrap(),
            vec!["8000/tcp", "8001/tcp", "8002/tcp"]
        );
        assert!(parse_ports(&w(&["http"])).is_err());
        assert!(parse_ports(&w(&["80/icmp"])).is_err());
        assert!(parse_ports(&w(&["9-3"])).is_err());
    }

    #[test]
    fn durations_follow_go() {
        assert_eq!(parse_duration("30s").unwrap(), 30_000_000_000);
        assert_eq!(parse_duration("1m30s").unwrap(), 90_000_000_000);
        assert_eq!(parse_duration("500ms").unwrap(), 500_000_000);
        assert_eq!(parse_duration("1.5h").unwrap(), 5_400_000_000_000);
        assert_eq!(parse_duration("0").unwrap(), 0);
        for bad in ["", "10", "s", "3x", "1m-2s"] {
            assert!(parse_duration(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn history_and_squash() {
        let mut c = scratch();
        add_history(&mut c, "t1", "base", false);
        add_history(&mut c, "t2", "/bin/sh -c true", false);
        add_history(&mut c, "t3", "/bin/sh -c #(nop) ENV A=1", true);
        add_history(&mut c, "t4", "/bin/sh -c #(nop) CMD []", true);
        squash_history(&mut c, 1);
        let h = c["history"].as_array().unwrap();
        assert!(h[0].get("empty_layer").is_none());
        assert_eq!(h[1]["empty_layer"], json!(true));
        assert_eq!(h[2]["empty_layer"], json!(true));
        assert!(h[3].get("empty_layer").is_none());
    }
}
