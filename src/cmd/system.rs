//! `system reset|prune|df|info`, `info`, `version`.

use std::io::{BufRead, Write};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::cli::{DfArgs, InfoArgs, ResetArgs, SystemPruneArgs, VersionArgs};
use crate::container;
use crate::exit::ExitStatus;
use crate::format::{self, Format};
use crate::image;
use crate::outln;
use crate::store::Store;
use crate::util::size::human_size;

fn confirm(question: &str) -> Result<bool> {
    let mut err = std::io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    Ok(matches!(line.trim(), "y" | "Y" | "yes"))
}

pub fn reset(store: &Store, a: ResetArgs) -> Result<ExitStatus> {
    if !a.force
        && !confirm(&format!(
            "This removes every container, image and layer in {} and {}. Continue?",
            store.root.display(),
            store.runroot.display()
        ))?
    {
        bail!("system reset aborted");
    }
    let mut first_err = None;
    for c in container::list(store)? {
        if let Err(e) = container::ops::remove(store, &c.config.id, true, Some(0)) {
            crate::output::error(&e);
            first_err.get_or_insert(e);
        }
    }
    for dir in [&store.root, &store.runroot] {
        if let Err(e) = crate::layers::store::remove_tree(store, dir) {
            crate::output::error(&e);
            first_err.get_or_insert(e);
        }
    }
    match first_err {
        Some(e) => Err(e.context("system reset did not remove everything")),
        None => Ok(ExitStatus::Success),
    }
}

pub fn prune(store: &Store, a: SystemPruneArgs) -> Result<ExitStatus> {
    if !a.force
        && !confirm(&format!(
            "This removes every stopped container and every {} image. Continue?",
            if a.all { "unused" } else { "unnamed" }
        ))?
    {
        bail!("system prune aborted");
    }
    let mut removed = Vec::new();
    for c in container::list(store)? {
        // A running build's working containers are not ours to take.
        let building = c
            .config
            .labels
            .get(crate::build::working::BUILD_LABEL)
            .and_then(|p| p.parse::<i32>().ok())
            .is_some_and(|p| nix::sys::signal::kill(nix::unistd::Pid::from_raw(p), None).is_ok());
        if !c.state.is_running() && !building {
            container::ops::remove(store, &c.config.id, false, None)?;
            removed.push(c.config.id);
        }
    }
    outln!("Deleted Containers")?;
    for id in &removed {
        outln!("{id}")?;
    }
    let images = super::image::prune_images(store, a.all)?;
    crate::build::cache::clear(store)?;
    outln!("Deleted Images")?;
    for id in &images {
        outln!("{id}")?;
    }
    Ok(ExitStatus::Success)
}

fn dir_size(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.blocks() * 512;
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn df(store: &Store, a: DfArgs) -> Result<ExitStatus> {
    let fmt = format::parse(a.format.as_deref())?;
    let images = image::list(store)?;
    let containers = container::list(store)?;
    let used: std::collections::HashSet<&str> = containers.iter().map(|c| c.config.image_id.as_str()).collect();
    let img_size: u64 = images.iter().map(|i| i.size).sum();
    let img_reclaim: u64 = images
        .iter()
        .filter(|i| !used.contains(i.id.as_str()))
        .map(|i| i.size)
        .sum();
    let ctr_sizes: Vec<(String, u64, bool)> = containers
        .iter()
        .map(|c| {
            (
                c.config.id.clone(),
                dir_size(&store.container_dir(&c.config.id)),
                c.state.is_running(),
            )
        })
        .collect();
    let ctr_size: u64 = ctr_sizes.iter().map(|x| x.1).sum();
    let ctr_reclaim: u64 = ctr_sizes.iter().filter(|x| !x.2).map(|x| x.1).sum();
    let active_ctr = ctr_sizes.iter().filter(|x| x.2).count();
    let rows = vec![
        json!({"Type": "Images", "Total": images.len(), "Active": used.len(), "Size": human_size(img_size),
               "Reclaimable": human_size(img_reclaim), "RawSize": img_size, "RawReclaimable": img_reclaim}),
        json!({"Type": "Containers", "Total": containers.len(), "Active": active_ctr, "Size": human_size(ctr_size),
               "Reclaimable": human_size(ctr_reclaim), "RawSize": ctr_size, "RawReclaimable": ctr_reclaim}),
        json!({"Type": "Local Volumes", "Total": 0, "Active": 0, "Size": "0 B", "Reclaimable": "0 B",
               "RawSize": 0, "RawReclaimable": 0}),
    ];
    let mut out = std::io::stdout().lock();
    match fmt {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?,
        Format::Template { tmpl, table } => out.write_all(format::render_rows(&tmpl, table, &[], &rows)?.as_bytes())?,
        Format::Default => {
            let mut text = String::from("TYPE\tTOTAL\tACTIVE\tSIZE\tRECLAIMABLE\n");
            for r in &rows {
                text.push_str(&format!(
                    "{}\t{}\t{}\t{}\t{}\n",
                    r["Type"].as_str().unwrap_or(""),
                    r["Total"],
                    r["Active"],
                    r["Size"].as_str().unwrap_or(""),
                    r["Reclaimable"].as_str().unwrap_or("")
                ));
            }
            out.write_all(format::align_tabs(&text).as_bytes())?;
            if a.verbose {
                let mut t = String::from("\nIMAGE ID\tSIZE\tCONTAINERS\n");
                for i in &images {
                    let n = containers.iter().filter(|c| c.config.image_id == i.id).count();
                    t.push_str(&format!("{}\t{}\t{n}\n", &i.id[..12], human_size(i.size)));
                }
                t.push_str("\nCONTAINER ID\tSIZE\tSTATUS\n");
                for (c, s) in containers.iter().zip(&ctr_sizes) {
                    t.push_str(&format!(
                        "{}\t{}\t{}\n",
                        &c.config.id[..12],
                        human_size(s.1),
                        c.state.status.name()
                    ));
                }
                out.write_all(format::align_tabs(&t).as_bytes())?;
            }
        }
    }
    Ok(ExitStatus::Success)
}

fn kernel() -> String {
    nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default()
}

pub fn info(store: &Store, a: InfoArgs) -> Result<ExitStatus> {
    let layout = crate::cgroups::detect(std::path::Path::new(crate::cgroups::DEFAULT_ROOT)).ok();
    let mapping = if store.rootless { Some(store.id_mapping()) } else { None };
    let containers = container::list(store)?;
    let running = containers.iter().filter(|c| c.state.is_running()).count();
    let v = json!({
        "host": {
            "arch": image::host_arch(),
            "os": "linux",
            "kernel": kernel(),
            "hostname": nix::unistd::gethostname().map(|h| h.to_string_lossy().into_owned()).unwrap_or_default(),
            "cgroupVersion": layout.map(crate::cgroups::version_name).unwrap_or("unknown"),
            "cgroupLayout": layout.map(|l| format!("{l:?}").to_lowercase()).unwrap_or_default(),
            "cgroupManager": "cgroupfs",
            "rootless": store.rootless,
            "security": {
                "rootless": store.rootless,
                "capabilities": crate::namespaces::DEFAULT_CAPS.iter().map(|c| c.to_string()).collect::<Vec<_>>().join(","),
                "noNewPrivileges": true,
            },
            "idMappings": mapping.map(|m| json!({"uidmap": m.uids, "gidmap": m.gids})).unwrap_or(Value::Null),
            "ociRuntime": {"name": "casco", "version": env!("CARGO_PKG_VERSION")},
        },
        "store": {
            "graphRoot": store.root,
            "runRoot": store.runroot,
            "graphDriverName": store.driver().name(),
            "graphDriverFallbackReason": store.config.fallback_reason,
            "containerStore": {"number": containers.len(), "running": running, "stopped": containers.len() - running},
            "imageStore": {"number": image::list(store)?.len()},
        },
        "version": {"Version": env!("CARGO_PKG_VERSION"), "OsArch": format!("linux/{}", image::host_arch())},
    });
    // JSON output keeps podman's JSON keys; templates see its Go field names.
    let fmt = a.format.as_deref();
    let view = if fmt.is_some_and(|f| f.contains("{{")) {
        go_field_names(&v)
    } else {
        v
    };
    print_value(&view, fmt, |v| {
        let mut s = String::new();
        yaml(v, 0, &mut s);
        s
    })
}

/// podman's `info` templates name Go struct fields (`.Host.Security.Rootless`,
/// `.Store.GraphRoot`) where its JSON has `host.security.rootless`.
fn go_field_names(v: &Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.iter()
                .map(|(k, x)| {
                    let name = match k.as_str() {
                        "cgroupVersion" => "CgroupsVersion".to_string(),
                        "idMappings" => "IDMappings".into(),
                        "uidmap" => "UIDMap".into(),
                        "gidmap" => "GIDMap".into(),
                        "ociRuntime" => "OCIRuntime".into(),
                        "os" => "OS".into(),
                        other => {
                            let mut c = other.chars();
                            c.next()
                                .map(|f| f.to_uppercase().chain(c).collect())
                                .unwrap_or_default()
                        }
                    };
                    (name, go_field_names(x))
                })
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(go_field_names).collect()),
        other => other.clone(),
    }
}

/// One object as JSON, through a template, or in the verb's default text.
fn print_value(v: &Value, format_arg: Option<&str>, default: impl FnOnce(&Value) -> String) -> Result<ExitStatus> {
    let mut out = std::io::stdout().lock();
    match format::parse(format_arg).context("--format")? {
        Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(v)?)?,
        Format::Template { tmpl, .. } => {
            let mut s = tmpl.render(v)?;
            if !s.ends_with('\n') {
                s.push('\n');
            }
            out.write_all(s.as_bytes())?;
        }
        Format::Default => out.write_all(default(v).as_bytes())?,
    }
    Ok(ExitStatus::Success)
}

/// A small YAML rendering, as podman prints `info` by default.
fn yaml(v: &Value, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match x {
                    Value::Object(o) if !o.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        yaml(x, indent + 2, out);
                    }
                    Value::Array(a) if !a.is_empty() => {
                        out.push_str(&format!("{pad}{k}:\n"));
                        for item in a {
                            match item {
                                Value::Object(_) => {
                                    let mut s = String::new();
                                    yaml(item, indent + 4, &mut s);
                                    let s = s.trim_start().to_string();
                                    out.push_str(&format!("{pad}  - {s}"));
                                }
                                _ => out.push_str(&format!("{pad}  - {}\n", scalar(item))),
                            }
                        }
                    }
                    _ => out.push_str(&format!("{pad}{k}: {}\n", scalar(x))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.is_empty() => "[]".into(),
        Value::Object(o) if o.is_empty() => "{}".into(),
        other => other.to_string(),
    }
}

pub fn version(a: &VersionArgs) -> Result<ExitStatus> {
    let v = json!({
        "Client": {
            "Version": env!("CARGO_PKG_VERSION"),
            "OsArch": format!("linux/{}", image::host_arch()),
            "RustVersion": option_env!("CARGO_PKG_RUST_VERSION").unwrap_or(""),
        }
    });
    print_value(&v, a.format.as_deref(), |_| {
        format!(
            "Version:      {}\nOS/Arch:      linux/{}\n",
            env!("CARGO_PKG_VERSION"),
            image::host_arch()
        )
    })
}
