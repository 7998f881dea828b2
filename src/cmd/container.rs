//! Container verbs: start, stop, kill, restart, rm, ps, logs, wait, top,
//! rename, export, prune.

use std::io::Write;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::each;
use crate::cli::{
    ExportArgs, KillArgs, LogsArgs, PruneArgs, PsArgs, RenameArgs, RestartArgs, RmArgs, StartArgs, StopArgs, TopArgs,
    WaitArgs,
};
use crate::container::{self, Container, Status, ops, runtime, signal};
use crate::exit::{AlreadyReported, ExitStatus};
use crate::format::{self, Format};
use crate::outln;
use crate::store::Store;
use crate::util::time;

pub fn start(store: &Store, a: StartArgs) -> Result<ExitStatus> {
    if let Some(k) = &a.detach_keys {
        crate::monitor::attach::parse_detach_keys(k)?;
    }
    if a.attach || a.interactive {
        if a.containers.len() > 1 {
            bail!("start --attach works on one container at a time");
        }
        let c = container::resolve(store, &a.containers[0])?;
        if c.state.is_running() {
            return runtime::attach(store, &c, a.interactive, a.detach_keys.as_deref());
        }
        return runtime::run_foreground(store, &c.config.id, a.interactive);
    }
    each(&a.containers, |name| {
        let c = container::resolve(store, name)?;
        // podman prints the name only for a container it started.
        if !c.state.is_running() {
            runtime::check_detached(&c)?;
            runtime::start_detached(store, &c.config.id)?;
            outln!("{name}")?;
        }
        Ok(())
    })
}

fn targets(store: &Store, names: &[String], all: bool, running_only: bool) -> Result<Vec<String>> {
    if all {
        if !names.is_empty() {
            bail!("--all and a list of containers cannot be used together");
        }
        return Ok(container::list(store)?
            .into_iter()
            .filter(|c| !running_only || c.state.is_running())
            .map(|c| c.config.id)
            .collect());
    }
    if names.is_empty() {
        bail!("give at least one container name or ID, or --all");
    }
    Ok(names.to_vec())
}

pub fn stop(store: &Store, a: StopArgs) -> Result<ExitStatus> {
    let list = targets(store, &a.containers, a.all, true)?;
    each(&list, |name| {
        let c = match container::resolve(store, name) {
            Err(e) if a.ignore && container::is_not_found(&e) => return Ok(()),
            r => r?,
        };
        ops::stop(store, &c, a.time)?;
        outln!("{name}")?;
        Ok(())
    })
}

pub fn kill(store: &Store, a: KillArgs) -> Result<ExitStatus> {
    let sig = signal::parse_signal(&a.signal)?;
    let list = targets(store, &a.containers, a.all, true)?;
    each(&list, |name| {
        let c = container::resolve(store, name)?;
        ops::signal(&c, sig)?;
        outln!("{name}")?;
        Ok(())
    })
}

pub fn restart(store: &Store, a: RestartArgs) -> Result<ExitStatus> {
    let list = targets(store, &a.containers, a.all, false)?;
    each(&list, |name| {
        let c = container::resolve(store, name)?;
        runtime::check_detached(&c)?;
        ops::stop(store, &c, a.time)?;
        runtime::start_detached(store, &c.config.id)?;
        outln!("{name}")?;
        Ok(())
    })
}

pub fn rm(store: &Store, a: RmArgs) -> Result<ExitStatus> {
    let list = targets(store, &a.containers, a.all, false)?;
    each(&list, |name| {
        let c = match container::resolve(store, name) {
            Err(e) if container::is_not_found(&e) => {
                // podman: --force also means a missing container is no error.
                if a.ignore || a.force {
                    return Ok(());
                }
                return Err(e.context(crate::exit::Coded::new(1, "no such container")));
            }
            r => r?,
        };
        match ops::remove(store, &c.config.id, a.force, a.time) {
            Err(e) if container::is_not_found(&e) && a.ignore => return Ok(()),
            r => r?,
        }
        outln!("{}", if a.all { c.config.id.as_str() } else { name.as_str() })?;
        Ok(())
    })
}

/// "sleep 100", as podman's COMMAND column shows it.
fn command_string(c: &Container) -> String {
    c.config.args.join(" ")
}

/// "Up 3 seconds ago", "Exited (0) 2 minutes ago", "Created".
pub fn status_string(c: &Container, now: time::Nanos) -> String {
    match c.state.status {
        Status::Created => "Created".into(),
        Status::Running | Status::Stopping => {
            let since = c.state.started_at.unwrap_or(c.config.created);
            // podman 4 writes "Up 3 seconds ago".
            format!("Up {}", time::ago(since, now))
        }
        Status::Paused => "Paused".into(),
        Status::Removing => "Removing".into(),
        Status::Exited => {
            let at = c.state.finished_at.unwrap_or(c.config.created);
            format!("Exited ({}) {}", c.state.exit_code.unwrap_or(0), time::ago(at, now))
        }
    }
}

fn unix_secs(t: Option<time::Nanos>) -> i64 {
    // podman prints Go's zero time (year 1) for "never".
    t.map(|n| (n / 1_000_000_000) as i64).unwrap_or(-62_135_596_800)
}

fn matches_filter(c: &Container, f: &str, ancestors: &[String]) -> Result<bool> {
    let (k, v) = f
        .split_once('=')
        .with_context(|| format!("invalid --filter {f:?}: want KEY=VALUE"))?;
    Ok(match k {
        "status" => {
            let valid = [
                "created",
                "running",
                "paused",
                "exited",
                "stopping",
                "removing",
                "unknown",
                "restarting",
            ];
            if !valid.contains(&v) {
                bail!("invalid --filter status={v}: use one of {}", valid.join(", "));
            }
            c.state.status.name() == v
        }
        "name" => crate::util::regex::Regex::new(v)?.is_match(&c.config.name),
        "id" => c.config.id.starts_with(v),
        "ancestor" => {
            let want = v.strip_prefix("sha256:").unwrap_or(v);
            c.config.image_id.starts_with(want)
                || full_image_name(&c.config.image_name) == full_image_name(v)
                || ancestors.contains(&c.config.image_id)
        }
        "label" => match v.split_once('=') {
            Some((lk, lv)) => c.config.labels.get(lk).is_some_and(|x| x == lv),
            None => c.config.labels.contains_key(v),
        },
        "exited" => c.state.status == Status::Exited && c.state.exit_code.map(|e| e.to_string()) == Some(v.to_string()),
        other => bail!("unknown --filter {other:?}: use status, name, id, ancestor, label or exited"),
    })
}

fn full_image_name(n: &str) -> Option<String> {
    crate::image::reference::Reference::parse_local(n)
        .ok()
        .map(|r| r.to_string())
}

/// One `ps --format json` row, in podman's key order and types.
#[derive(serde::Serialize)]
#[serde(rename_all = "PascalCase")]
struct PsRow<'a> {
    auto_remove: bool,
    command: &'a [String],
    created_at: String,
    exited: bool,
    exited_at: i64,
    exit_code: i32,
    id: &'a str,
    image: String,
    #[serde(rename = "ImageID")]
    image_id: &'a str,
    is_infra: bool,
    labels: Option<&'a std::collections::BTreeMap<String, String>>,
    mounts: Vec<&'a str>,
    names: [&'a str; 1],
    namespaces: serde_json::Map<String, Value>,
    networks: [&'a str; 0],
    pid: i32,
    pod: &'a str,
    pod_name: &'a str,
    ports: Option<()>,
    size: Option<()>,
    started_at: i64,
    state: &'a str,
    status: String,
    created: i128,
}

fn ps_row(c: &Container, now: time::Nanos) -> PsRow<'_> {
    PsRow {
        auto_remove: c.config.auto_remove,
        command: &c.config.args,
        created_at: time::ago(c.config.created, now),
        exited: c.state.status == Status::Exited,
        exited_at: unix_secs(c.state.finished_at),
        exit_code: c.state.exit_code.unwrap_or(0),
        id: &c.config.id,
        image: full_image_name(&c.config.image_name).unwrap_or_else(|| c.config.image_name.clone()),
        image_id: &c.config.image_id,
        is_infra: false,
        labels: (!c.config.labels.is_empty()).then_some(&c.config.labels),
        mounts: c.config.mounts.iter().map(|m| m.destination.as_str()).collect(),
        names: [&c.config.name],
        namespaces: serde_json::Map::new(),
        networks: [],
        pid: if c.state.is_running() { c.state.pid } else { 0 },
        pod: "",
        pod_name: "",
        ports: None,
        size: None,
        started_at: unix_secs(c.state.started_at),
        state: c.state.status.name(),
        status: status_string(c, now),
        created: c.config.created / 1_000_000_000,
    }
}

fn ps_json(c: &Container) -> Value {
    serde_json::to_value(ps_row(c, time::now_nanos())).unwrap_or(Value::Null)
}

fn ps_template_row(c: &Container, no_trunc: bool, now: time::Nanos) -> Value {
    let mut v = ps_json(c);
    let id = if no_trunc {
        c.config.id.clone()
    } else {
        c.config.id[..12].to_string()
    };
    let o = v.as_object_mut().expect("object");
    o.insert("ID".into(), json!(id));
    o.insert("Names".into(), json!(c.config.name));
    o.insert("Command".into(), json!(command_string(c)));
    o.insert("CreatedHuman".into(), json!(time::ago(c.config.created, now)));
    o.insert("CreatedAt".into(), json!(time::human_timestamp(c.config.created)));
    o.insert("RunningFor".into(), json!(time::ago(c.config.created, now)));
    o.insert("Ports".into(), json!(""));
    o.insert("Networks".into(), json!(""));
    o.insert(
        "Mounts".into(),
        json!(
            c.config
                .mounts
                .iter()
                .map(|m| m.destination.clone())
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    o.insert(
        "Labels".into(),
        json!(
            c.config
                .labels
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(",")
        ),
    );
    v
}

const PS_HEADERS: &[(&str, &str)] = &[
    ("ID", "CONTAINER ID"),
    ("Image", "IMAGE"),
    ("Command", "COMMAND"),
    ("CreatedHuman", "CREATED"),
    ("Created", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("RunningFor", "CREATED"),
    ("Status", "STATUS"),
    ("Ports", "PORTS"),
    ("Names", "NAMES"),
    ("ImageID", "IMAGE ID"),
];

pub fn ps(store: &Store, a: PsArgs) -> Result<ExitStatus> {
    let fmt = format::parse(a.format.as_deref())?;
    let mut list = container::list(store)?;
    if !a.external {
        // A build's working containers are its own business (podman: --external).
        list.retain(|c| !c.config.labels.contains_key(crate::build::working::BUILD_LABEL));
    }
    let filtered = !a.filter.is_empty();
    for f in &a.filter {
        // Validate even when nothing is listed.
        if let Some(c) = list.first() {
            matches_filter(c, f, &[])?;
        } else {
            let probe = f.split_once('=').map(|x| x.0).unwrap_or("");
            if !["status", "name", "id", "ancestor", "label", "exited"].contains(&probe) {
                bail!("unknown --filter {f:?}: use status, name, id, ancestor, label or exited");
            }
        }
    }
    // ancestor=NAME matches the image NAME resolves to now, too.
    let ancestors: Vec<String> = a
        .filter
        .iter()
        .filter_map(|f| f.strip_prefix("ancestor="))
        .filter_map(|v| crate::image::resolve(store, v).ok().map(|r| r.id))
        .collect();
    // podman: filters with the same key are alternatives, different keys all apply.
    let mut by_key: std::collections::BTreeMap<&str, Vec<&String>> = std::collections::BTreeMap::new();
    for f in &a.filter {
        by_key
            .entry(f.split_once('=').map(|x| x.0).unwrap_or(""))
            .or_default()
            .push(f);
    }
    let mut kept = Vec::new();
    for c in list.drain(..) {
        let listed = a.all || a.latest || a.last.is_some() || filtered || c.state.is_running();
        if !listed {
            continue;
        }
        let mut ok = true;
        for alternatives in by_key.values() {
            let mut any = false;
            for f in alternatives {
                any |= matches_filter(&c, f, &ancestors)?;
            }
            ok &= any;
        }
        if ok {
            kept.push(c);
        }
    }
    // `list` is newest first; podman shows the oldest first.
    if a.latest {
        kept.truncate(1);
    }
    if let Some(n) = a.last {
        kept.truncate(n);
    }
    kept.reverse();
    let now = time::now_nanos();
    let mut out = std::io::stdout().lock();
    if a.quiet {
        for c in &kept {
            writeln!(
                out,
                "{}",
                if a.no_trunc {
                    &c.config.id[..]
                } else {
                    &c.config.id[..12]
                }
            )?;
        }
        return Ok(ExitStatus::Success);
    }
    match fmt {
        Format::Json => {
            let rows: Vec<PsRow> = kept.iter().map(|c| ps_row(c, now)).collect();
            writeln!(out, "{}", serde_json::to_string_pretty(&rows)?)?;
        }
        Format::Template { tmpl, table } => {
            let rows: Vec<Value> = kept.iter().map(|c| ps_template_row(c, a.no_trunc, now)).collect();
            out.write_all(format::render_rows(&tmpl, table, PS_HEADERS, &rows)?.as_bytes())?;
        }
        Format::Default => {
            let mut text = String::from("CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES\n");
            for c in &kept {
                let id = if a.no_trunc {
                    &c.config.id[..]
                } else {
                    &c.config.id[..12]
                };
                let mut cmd = command_string(c);
                if !a.no_trunc && cmd.chars().count() > 17 {
                    cmd = cmd.chars().take(17).collect::<String>() + "...";
                }
                text.push_str(&format!(
                    "{id}\t{}\t{cmd}\t{}\t{}\t\t{}\n",
                    full_image_name(&c.config.image_name).unwrap_or_else(|| c.config.image_name.clone()),
                    time::ago(c.config.created, now),
                    status_string(c, now),
                    c.config.name
                ));
            }
            out.write_all(format::align_tabs(&text).as_bytes())?;
        }
    }
    Ok(ExitStatus::Success)
}

pub fn logs(store: &Store, a: LogsArgs) -> Result<ExitStatus> {
    let now = time::now_nanos();
    let since = a
        .since
        .as_deref()
        .map(|s| time::parse_point_in_time(s, now))
        .transpose()
        .context("--since")?;
    let until = a
        .until
        .as_deref()
        .map(|s| time::parse_point_in_time(s, now))
        .transpose()
        .context("--until")?;
    let tail = match a.tail {
        Some(n) if n < 0 => None,
        Some(n) => Some(n as usize),
        None => None,
    };
    let many = a.containers.len() > 1;
    each(&a.containers, |name| {
        let c = container::resolve(store, name)?;
        if c.config.log_driver != "k8s-file" {
            bail!(
                "container {} uses the {} log driver: it keeps no logs",
                c.config.name,
                c.config.log_driver
            );
        }
        let opts = crate::logs::ReadOptions {
            since,
            until,
            tail,
            timestamps: a.timestamps,
            prefix: (a.names || many).then(|| format!("{} ", c.config.name)),
            follow: a.follow,
        };
        let id = c.config.id.clone();
        let mut still_running = || {
            container::load(store, &id)
                .ok()
                .flatten()
                .is_some_and(|c| c.state.is_running())
        };
        let stdout = std::io::stdout();
        let stderr = std::io::stderr();
        crate::logs::read_logs(
            &container::log_path(store, &id),
            &opts,
            &mut stdout.lock(),
            &mut stderr.lock(),
            &mut still_running,
        )
    })
}

pub fn wait(store: &Store, a: WaitArgs) -> Result<ExitStatus> {
    match a.condition.as_deref() {
        None | Some("stopped") | Some("exited") => {}
        Some(other) => bail!("unsupported --condition {other:?}: use stopped or exited"),
    }
    each(&a.containers, |name| {
        let c = match container::resolve(store, name) {
            Err(e) if a.ignore && container::is_not_found(&e) => {
                outln!("-1")?;
                return Ok(());
            }
            r => r?,
        };
        let code = ops::wait(store, &c.config.id)?;
        outln!("{code}")?;
        Ok(())
    })
}

pub fn rename(store: &Store, a: RenameArgs) -> Result<ExitStatus> {
    let c = container::resolve(store, &a.container)?;
    container::rename(store, &c, &a.new_name)?;
    Ok(ExitStatus::Success)
}

pub fn top(store: &Store, a: TopArgs) -> Result<ExitStatus> {
    let c = container::resolve(store, &a.container)?;
    if !c.state.is_running() {
        bail!(
            "top can only be used on running containers: {} is {}",
            c.config.name,
            c.state.status.name()
        );
    }
    let text = crate::container::top::top(&c, &a.descriptors)?;
    std::io::stdout()
        .lock()
        .write_all(format::align_tabs(&text).as_bytes())?;
    Ok(ExitStatus::Success)
}

pub fn export(store: &Store, a: ExportArgs) -> Result<ExitStatus> {
    let c = container::resolve(store, &a.container)?;
    if a.output.is_none() && std::io::IsTerminal::is_terminal(&std::io::stdout()) {
        bail!("refusing to write a tar archive to a terminal: use -o FILE or redirect the output");
    }
    crate::container::export::export(store, &c, a.output.as_deref())?;
    Ok(ExitStatus::Success)
}

pub fn prune(store: &Store, a: PruneArgs) -> Result<ExitStatus> {
    let now = time::now_nanos();
    let mut until = None;
    let mut labels = Vec::new();
    for f in &a.filter {
        match f.split_once('=') {
            Some(("until", v)) => until = Some(time::parse_point_in_time(v, now)?),
            Some(("label", v)) => labels.push(v.to_string()),
            _ => bail!("invalid --filter {f:?}: use until=TIME or label=KEY[=VALUE]"),
        }
    }
    let mut failed = None;
    for c in container::list(store)? {
        if c.state.is_running() || until.is_some_and(|u| c.config.created >= u) {
            continue;
        }
        if !labels
            .iter()
            .all(|l| matches_filter(&c, &format!("label={l}"), &[]).unwrap_or(false))
        {
            continue;
        }
        match ops::remove(store, &c.config.id, false, None) {
            Ok(()) => outln!("{}", c.config.id)?,
            Err(e) => {
                crate::output::error(&e);
                failed = Some(crate::exit::code_of(&e));
            }
        }
    }
    match failed {
        Some(code) => Err(AlreadyReported(code).into()),
        None => Ok(ExitStatus::Success),
    }
}
