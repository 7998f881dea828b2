//! `inspect`, `container inspect`, `image inspect`: podman's JSON shapes and
//! key names, so that `--format '{{.State.Pid}}'` scripts keep working.

use std::io::Write;

use anyhow::{Result, bail};
use serde_json::{Value, json};

use crate::cli::{ContainerInspectArgs, ImageInspectArgs, InspectArgs};
use crate::container::{self, Container, Status};
use crate::exit::{AlreadyReported, ExitStatus};
use crate::format::{self, Format};
use crate::image::{self, ImageRecord};
use crate::namespaces::{MountKind, capability_set};
use crate::store::Store;
use crate::util::time;

/// Go's zero time, which podman prints for "never".
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

fn t(n: Option<time::Nanos>) -> String {
    n.map(time::rfc3339_nanos).unwrap_or_else(|| ZERO_TIME.into())
}

fn cap_names(caps: &[caps::Capability]) -> Vec<String> {
    caps.iter().map(|c| c.to_string()).collect()
}

pub fn container_json(store: &Store, c: &Container, size: bool) -> Value {
    let cfg = &c.config;
    let st = &c.state;
    let dir = store.container_dir(&cfg.id);
    let running = st.is_running();
    let caps = capability_set(cfg.privileged, &cfg.cap_add, &cfg.cap_drop).unwrap_or_default();
    let mounts: Vec<Value> = cfg
        .mounts
        .iter()
        .map(|m| match &m.kind {
            MountKind::Bind { source, recursive } => json!({
                "Type": "bind",
                "Source": source,
                "Destination": m.destination,
                "Driver": "",
                "Mode": "",
                "Options": [if *recursive { "rbind" } else { "bind" }],
                "RW": !m.readonly,
                "Propagation": m.propagation.clone().unwrap_or_else(|| "rprivate".into()),
            }),
            MountKind::Tmpfs { options } => json!({
                "Type": "tmpfs",
                "Source": "tmpfs",
                "Destination": m.destination,
                "Driver": "",
                "Mode": "",
                "Options": options.split(',').collect::<Vec<_>>(),
                "RW": !m.readonly,
                "Propagation": "",
            }),
        })
        .collect();
    let graph = match cfg.driver {
        crate::store::Driver::Overlay => json!({
            "Name": "overlay",
            "Data": {
                "LowerDir": cfg.layers.iter().rev().filter_map(|l| crate::layers::store::diff_dir(store, l).ok())
                    .map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":"),
                "UpperDir": dir.join("upper"),
                "WorkDir": dir.join("work"),
                "MergedDir": dir.join("merged"),
            }
        }),
        crate::store::Driver::Vfs => json!({"Name": "vfs", "Data": {"Dir": dir.join("rootfs")}}),
    };
    // The image outlives its containers (rmi refuses, rmi -f removes them first).
    let image_config = crate::image::load(store, &cfg.image_id)
        .ok()
        .flatten()
        .and_then(|rec| crate::image::config(store, &rec).ok())
        .unwrap_or(Value::Null);
    let image_cfg = &image_config["config"];
    let mut v = json!({
        "Id": cfg.id,
        "Created": time::rfc3339_nanos(cfg.created),
        "Path": cfg.args.first().cloned().unwrap_or_default(),
        "Args": cfg.args.iter().skip(1).cloned().collect::<Vec<_>>(),
        "State": {
            "OciVersion": "1.0.2",
            "Status": st.status.name(),
            "Running": running,
            "Paused": st.status == Status::Paused,
            "Restarting": false,
            "OOMKilled": st.oom_killed,
            "Dead": false,
            "Pid": if running { st.pid } else { 0 },
            "ConmonPid": if running { st.monitor_pid } else { 0 },
            "ExitCode": st.exit_code.unwrap_or(0),
            "Error": st.error.clone().unwrap_or_default(),
            "StartedAt": t(st.started_at),
            "FinishedAt": t(st.finished_at),
            "CgroupPath": st.cgroup.as_ref().map(|c| c.relative.clone()).unwrap_or_default(),
        },
        "Image": cfg.image_id,
        "ImageName": cfg.image_name,
        "Rootfs": "",
        "Pod": "",
        "ResolvConfPath": dir.join("userdata/resolv.conf"),
        "HostnamePath": dir.join("userdata/hostname"),
        "HostsPath": dir.join("userdata/hosts"),
        "StaticDir": dir,
        "OCIRuntime": "casco",
        "LogPath": container::log_path(store, &cfg.id),
        "Name": cfg.name,
        "RestartCount": st.restart_count,
        "Driver": cfg.driver.name(),
        "MountLabel": "",
        "ProcessLabel": "",
        "AppArmorProfile": "",
        "EffectiveCaps": cap_names(&caps),
        "BoundingCaps": cap_names(&caps),
        "ExecIDs": [],
        "GraphDriver": graph,
        "Mounts": mounts,
        "Dependencies": [],
        "NetworkSettings": {"Networks": {}, "Ports": {}, "SandboxKey": ""},
        "Namespace": "",
        "IsInfra": false,
        "Config": {
            "Hostname": cfg.hostname,
            "Domainname": "",
            "User": cfg.user,
            "AttachStdin": cfg.interactive,
            "AttachStdout": true,
            "AttachStderr": true,
            "Tty": cfg.tty,
            "OpenStdin": cfg.interactive,
            "StdinOnce": false,
            "Env": cfg.env,
            "Cmd": if cfg.cmd.is_empty() { Value::Null } else { json!(cfg.cmd) },
            "Image": cfg.image_name,
            "Volumes": image_cfg.get("Volumes").cloned().unwrap_or(Value::Null),
            "WorkingDir": cfg.workdir,
            "Entrypoint": if cfg.entrypoint.is_empty() { Value::Null } else { json!(cfg.entrypoint) },
            "OnBuild": Value::Null,
            "Labels": cfg.labels,
            "Annotations": {},
            "StopSignal": cfg.stop_signal,
            "StopTimeout": cfg.stop_timeout,
            "ExposedPorts": image_cfg.get("ExposedPorts").cloned().unwrap_or(Value::Null),
            "Umask": "0022",
        },
        "HostConfig": {
            "Binds": cfg.mounts.iter().filter_map(|m| match &m.kind {
                MountKind::Bind { source, .. } => Some(format!("{}:{}:{}", source.display(), m.destination,
                    if m.readonly { "ro" } else { "rw" })),
                _ => None,
            }).collect::<Vec<_>>(),
            "NetworkMode": cfg.network,
            "Privileged": cfg.privileged,
            "ReadonlyRootfs": cfg.read_only,
            "CapAdd": cfg.cap_add,
            "CapDrop": cfg.cap_drop,
            "AutoRemove": cfg.auto_remove,
            "Init": cfg.init,
            "LogConfig": {
                "Type": cfg.log_driver,
                "Config": Value::Null,
                "Path": container::log_path(store, &cfg.id),
                "Size": cfg.log_max_size.map(crate::util::size::human_size).unwrap_or_else(|| "0B".into()),
            },
            "Tmpfs": cfg.mounts.iter().filter_map(|m| match &m.kind {
                MountKind::Tmpfs { options } => Some((m.destination.clone(), json!(options))),
                _ => None,
            }).collect::<serde_json::Map<String, Value>>(),
            "UsernsMode": if cfg.id_mapping.is_some() { "private" } else { "" },
            "GroupAdd": cfg.group_add,
        },
    });
    if size {
        let upper = dir.join(match cfg.driver {
            crate::store::Driver::Overlay => "upper",
            crate::store::Driver::Vfs => "rootfs",
        });
        let rw = dir_size(&upper);
        let root: u64 = cfg
            .layers
            .iter()
            .filter_map(|l| crate::layers::store::load(store, l).ok().flatten())
            .map(|l| l.size)
            .sum();
        v["SizeRw"] = json!(rw);
        v["SizeRootFs"] = json!(root + rw);
    }
    v
}

fn dir_size(p: &std::path::Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    let Ok(md) = std::fs::symlink_metadata(p) else { return 0 };
    if !md.is_dir() {
        return md.size();
    }
    std::fs::read_dir(p)
        .map(|rd| rd.flatten().map(|e| dir_size(&e.path())).sum())
        .unwrap_or(0)
}

pub fn image_json(store: &Store, rec: &ImageRecord) -> Result<Value> {
    let cfg = image::config(store, rec)?;
    let names = image::names_of(store, &rec.id)?;
    let history: Vec<Value> = cfg["history"].as_array().cloned().unwrap_or_default();
    let c = &cfg["config"];
    Ok(json!({
        "Id": rec.id,
        "Digest": rec.digest,
        "RepoTags": names,
        "RepoDigests": rec.repo_digests(&names),
        "Parent": "",
        "Comment": history.first().and_then(|h| h["comment"].as_str()).unwrap_or(""),
        "Created": cfg["created"].as_str().unwrap_or(ZERO_TIME),
        "Config": {
            "User": c.get("User").cloned().unwrap_or(Value::Null),
            "ExposedPorts": c.get("ExposedPorts").cloned().unwrap_or(Value::Null),
            "Env": c.get("Env").cloned().unwrap_or(Value::Null),
            "Entrypoint": c.get("Entrypoint").cloned().unwrap_or(Value::Null),
            "Cmd": c.get("Cmd").cloned().unwrap_or(Value::Null),
            "Volumes": c.get("Volumes").cloned().unwrap_or(Value::Null),
            "WorkingDir": c.get("WorkingDir").cloned().unwrap_or(Value::Null),
            "Labels": c.get("Labels").cloned().unwrap_or(Value::Null),
            "StopSignal": c.get("StopSignal").cloned().unwrap_or(Value::Null),
            "Healthcheck": c.get("Healthcheck").cloned().unwrap_or(Value::Null),
        },
        "Version": "",
        "Author": cfg["author"].as_str().unwrap_or(""),
        "Architecture": cfg["architecture"],
        "Os": cfg["os"],
        "Size": rec.size,
        "VirtualSize": rec.size,
        "GraphDriver": {
            "Name": store.driver().name(),
            "Data": {
                "LowerDir": rec.layers.iter().rev().filter_map(|l| crate::layers::store::diff_dir(store, l).ok())
                    .map(|p| p.to_string_lossy().into_owned()).collect::<Vec<_>>().join(":"),
            }
        },
        "RootFS": {"Type": "layers", "Layers": cfg["rootfs"]["diff_ids"]},
        "Labels": c.get("Labels").cloned().unwrap_or(Value::Null),
        "Annotations": {},
        "ManifestType": rec.manifest_media_type,
        "User": c.get("User").and_then(|u| u.as_str()).unwrap_or(""),
        "History": history,
        "NamesHistory": names,
    }))
}

/// Prints the objects as a JSON array, or each through the template.
fn print(values: Vec<Value>, fmt: &Format) -> Result<()> {
    let mut out = std::io::stdout().lock();
    match fmt {
        Format::Default | Format::Json => writeln!(out, "{}", serde_json::to_string_pretty(&values)?)?,
        Format::Template { tmpl, table } => {
            out.write_all(format::render_rows(tmpl, *table, &[], &values)?.as_bytes())?;
        }
    }
    Ok(())
}

/// Collects what `find` finds for each name; prints what was found, then fails
/// (exit 125, as podman) if anything was not.
fn run_inspect(names: &[String], fmt: Option<&str>, mut find: impl FnMut(&str) -> Result<Value>) -> Result<ExitStatus> {
    let fmt = format::parse(fmt)?;
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for n in names {
        match find(n) {
            Ok(v) => found.push(v),
            Err(e) => errors.push(e),
        }
    }
    // podman prints what it found, `[]` if nothing, before the errors.
    if !found.is_empty() || matches!(fmt, Format::Default | Format::Json) {
        print(found, &fmt)?;
    }
    match errors.pop() {
        None => Ok(ExitStatus::Success),
        Some(last) => {
            for e in &errors {
                crate::output::error(e);
            }
            crate::output::error(&last);
            Err(AlreadyReported(125).into())
        }
    }
}

pub fn container_inspect(store: &Store, a: ContainerInspectArgs) -> Result<ExitStatus> {
    let mut names = a.containers.clone();
    if a.latest {
        let latest = container::list(store)?.into_iter().next();
        match latest {
            Some(c) => names.push(c.config.id),
            None => bail!("no containers to inspect"),
        }
    }
    if names.is_empty() {
        bail!("give at least one container name or ID, or --latest");
    }
    run_inspect(&names, a.format.as_deref(), |n| {
        Ok(container_json(store, &container::resolve(store, n)?, a.size))
    })
}

pub fn image_inspect(store: &Store, a: ImageInspectArgs) -> Result<ExitStatus> {
    run_inspect(&a.images, a.format.as_deref(), |n| {
        image_json(store, &image::resolve(store, n)?)
    })
}

pub fn inspect(store: &Store, a: InspectArgs) -> Result<ExitStatus> {
    let kind = a.kind.as_str();
    if !matches!(kind, "all" | "container" | "image") {
        bail!("invalid --type {kind:?}: use container, image or all");
    }
    run_inspect(&a.names, a.format.as_deref(), |n| {
        if kind != "image" {
            match container::resolve(store, n) {
                Ok(c) => return Ok(container_json(store, &c, a.size)),
                Err(e) if kind == "container" || !container::is_not_found(&e) => return Err(e),
                Err(_) => {}
            }
        }
        match image::resolve(store, n) {
            Ok(r) => image_json(store, &r),
            Err(e) if kind == "image" => Err(e),
            Err(_) => bail!("no such object: \"{n}\""),
        }
    })
}
