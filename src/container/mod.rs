//! Containers on disk: `ROOT/containers/<id>/` holds `config.json` (written
//! once at create), `state.json` (replaced atomically at every transition),
//! `lock` (held while a transition is made), the log, the generated /etc files,
//! and the rootfs's upper layer. Names are symlinks in `ROOT/container-names/`.
//!
//! Reads take no lock: every file is replaced whole by rename, so a reader sees
//! one version or the next. A state that claims a running process is checked
//! against /proc (PID plus start time), so a container whose casco or monitor
//! was killed -9 shows as exited rather than running forever.

pub mod create;
pub mod export;
pub mod ops;
pub mod runtime;
pub mod signal;
pub mod top;

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::namespaces::MountPlan;
use crate::namespaces::userns::IdMapping;
use crate::store::lock::{Lock, Mode};
use crate::store::record::{self, Durability};
use crate::store::{Driver, Store};
use crate::util::{ids, time::Nanos};

pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";

/// What a container is: fixed at create.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerConfig {
    pub id: String,
    pub name: String,
    pub created: Nanos,
    pub image_id: String,
    /// The image as the user named it (podman's ImageName).
    pub image_name: String,
    /// Chain IDs of the image's layers, bottom first.
    pub layers: Vec<String>,
    pub driver: Driver,
    /// The user namespace mapping (rootless), or none.
    pub id_mapping: Option<IdMapping>,
    pub entrypoint: Vec<String>,
    pub cmd: Vec<String>,
    /// entrypoint + cmd: what runs.
    pub args: Vec<String>,
    pub env: Vec<String>,
    pub workdir: String,
    pub user: String,
    pub group_add: Vec<String>,
    pub hostname: String,
    pub mounts: Vec<MountPlan>,
    pub read_only: bool,
    /// "host" or "none".
    pub network: String,
    pub cap_add: Vec<String>,
    pub cap_drop: Vec<String>,
    pub privileged: bool,
    pub labels: BTreeMap<String, String>,
    pub stop_signal: i32,
    pub stop_timeout: u32,
    /// "k8s-file", "none" or "passthrough".
    pub log_driver: String,
    pub log_max_size: Option<u64>,
    pub init: bool,
    /// `--memory`, in bytes.
    #[serde(default)]
    pub memory: Option<u64>,
    #[serde(default)]
    pub pids_limit: Option<i64>,
    pub interactive: bool,
    pub tty: bool,
    pub auto_remove: bool,
    #[serde(default)]
    pub pidfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Paused,
    Stopping,
    Exited,
    Removing,
}

impl Status {
    pub fn name(self) -> &'static str {
        match self {
            Status::Created => "created",
            Status::Running => "running",
            Status::Paused => "paused",
            Status::Stopping => "stopping",
            Status::Exited => "exited",
            Status::Removing => "removing",
        }
    }
}

/// Where a container is in its life: replaced at every transition.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ContainerState {
    pub status: Status,
    /// The container's first process, in the host's PID namespace.
    pub pid: i32,
    pub start_time: u64,
    /// The process that waits for it: `casco run` in the foreground, or the monitor.
    pub monitor_pid: i32,
    pub monitor_start: u64,
    pub boot_id: String,
    pub started_at: Option<Nanos>,
    pub finished_at: Option<Nanos>,
    pub exit_code: Option<i32>,
    pub oom_killed: bool,
    pub error: Option<String>,
    pub restart_count: u32,
    pub cgroup: Option<crate::cgroups::CgroupPaths>,
}

impl ContainerState {
    pub fn created() -> ContainerState {
        ContainerState {
            status: Status::Created,
            pid: 0,
            start_time: 0,
            monitor_pid: 0,
            monitor_start: 0,
            boot_id: String::new(),
            started_at: None,
            finished_at: None,
            exit_code: None,
            oom_killed: false,
            error: None,
            restart_count: 0,
            cgroup: None,
        }
    }

    pub fn is_running(&self) -> bool {
        matches!(self.status, Status::Running | Status::Paused | Status::Stopping)
    }
}

/// A container as read from disk.
#[derive(Debug, Clone)]
pub struct Container {
    pub config: ContainerConfig,
    pub state: ContainerState,
}

/// The error for an unknown container; callers branch on it (`--ignore`).
#[derive(Debug)]
pub struct ContainerNotFound(pub String);

impl std::fmt::Display for ContainerNotFound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "no container with name or ID \"{}\" found", self.0)
    }
}

impl std::error::Error for ContainerNotFound {}

pub fn is_not_found(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.downcast_ref::<ContainerNotFound>().is_some())
}

/// The current boot, so that a state from before a reboot is not believed.
pub fn boot_id() -> String {
    // Read once per process: `ps` asks for every running container.
    static BOOT_ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    BOOT_ID
        .get_or_init(|| {
            fs::read_to_string("/proc/sys/kernel/random/boot_id")
                .map(|s| s.trim().to_string())
                .unwrap_or_default()
        })
        .clone()
}

pub fn config_path(store: &Store, id: &str) -> PathBuf {
    store.container_dir(id).join("config.json")
}

pub fn state_path(store: &Store, id: &str) -> PathBuf {
    store.container_dir(id).join("state.json")
}

pub fn log_path(store: &Store, id: &str) -> PathBuf {
    store.container_dir(id).join("ctr.log")
}

/// The container's transition lock.
pub fn lock(store: &Store, id: &str) -> Result<Lock> {
    Lock::acquire(
        &store.container_dir(id).join("lock"),
        Mode::Exclusive,
        Some(&format!("container {}", &id[..12])),
    )
}

/// Reads a container; `None` when it does not exist (or is half-created).
pub fn load(store: &Store, id: &str) -> Result<Option<Container>> {
    let Some(config) = record::read_json::<ContainerConfig>(&config_path(store, id))? else {
        return Ok(None);
    };
    let state = record::read_json::<ContainerState>(&state_path(store, id))?.unwrap_or_else(ContainerState::created);
    let mut c = Container { config, state };
    refresh(&mut c);
    Ok(Some(c))
}

/// Corrects, in memory, a state that claims a process which is gone: its
/// monitor died without recording the end (kill -9, reboot).
pub fn refresh(c: &mut Container) {
    if !c.state.is_running() {
        return;
    }
    let alive = c.state.boot_id == boot_id() && crate::sys::process::process_matches(c.state.pid, c.state.start_time);
    if !alive {
        let monitor_alive = c.state.boot_id == boot_id()
            && c.state.monitor_pid > 0
            && crate::sys::process::process_matches(c.state.monitor_pid, c.state.monitor_start);
        if monitor_alive {
            // The monitor is about to record the exit.
            return;
        }
        c.state.status = Status::Exited;
        c.state.pid = 0;
        if c.state.exit_code.is_none() {
            // The container died with its monitor (SIGKILL by PDEATHSIG).
            c.state.exit_code = Some(137);
            c.state
                .error
                .get_or_insert_with(|| "the process watching the container was killed".into());
        }
        if c.state.finished_at.is_none() {
            c.state.finished_at = c.state.started_at;
        }
    }
}

pub fn save_state(store: &Store, id: &str, state: &ContainerState, durability: Durability) -> Result<()> {
    record::write_json(&state_path(store, id), state, durability)
}

/// Reads the state under the container's lock, lets `f` change it, writes it.
pub fn update_state<T>(store: &Store, id: &str, f: impl FnOnce(&mut Container) -> Result<T>) -> Result<T> {
    let _lock = lock(store, id)?;
    let mut c = load(store, id)?.ok_or_else(|| ContainerNotFound(id.to_string()))?;
    let out = f(&mut c)?;
    save_state(store, id, &c.state, Durability::Durable)?;
    Ok(out)
}

/// Every container ID with a complete record.
pub fn list_ids(store: &Store) -> Result<Vec<String>> {
    let dir = store.containers_dir();
    let mut v = Vec::new();
    for e in fs::read_dir(&dir).with_context(|| format!("read {}", dir.display()))? {
        let name = e?.file_name().to_string_lossy().into_owned();
        if ids::is_full_id(&name) {
            v.push(name);
        }
    }
    Ok(v)
}

/// Every container, newest first. Also sweeps what a killed casco left: a
/// container directory without its config whose lock nobody holds (its creator
/// died), and temp files and directories of dead processes.
pub fn list(store: &Store) -> Result<Vec<Container>> {
    let mut v = Vec::new();
    for id in list_ids(store)? {
        match load(store, &id) {
            Ok(Some(c)) => v.push(c),
            Ok(None) => sweep_half_created(store, &id),
            Err(e) => crate::output::warn(&format!("{e:#}")),
        }
    }
    crate::layers::store::clean_stale_tmp(store);
    v.sort_by(|a, b| {
        b.config
            .created
            .cmp(&a.config.created)
            .then(a.config.id.cmp(&b.config.id))
    });
    Ok(v)
}

fn sweep_half_created(store: &Store, id: &str) {
    let dir = store.container_dir(id);
    // The creator takes the lock right after mkdir and holds it until
    // config.json exists; the age check covers the instant in between.
    let young = fs::metadata(&dir)
        .and_then(|m| m.modified())
        .map(|t| t.elapsed().map(|e| e.as_secs() < 10).unwrap_or(true))
        .unwrap_or(true);
    if young {
        return;
    }
    if let Ok(Some(_lock)) = Lock::try_acquire(&dir.join("lock"), Mode::Exclusive)
        && !config_path(store, id).exists()
    {
        let _ = crate::layers::store::remove_tree(store, &dir);
    }
}

fn name_link(store: &Store, name: &str) -> PathBuf {
    store.container_names_dir().join(name)
}

/// Finds a container by name, full ID, or unique ID prefix.
pub fn resolve(store: &Store, query: &str) -> Result<Container> {
    if query.is_empty() {
        bail!("empty container name or ID");
    }
    if ids::validate_name(query).is_ok()
        && let Ok(target) = fs::read_link(name_link(store, query))
    {
        let id = target.to_string_lossy().into_owned();
        if ids::is_full_id(&id)
            && let Some(c) = load(store, &id)?
            && c.config.name == query
        {
            return Ok(c);
        }
    }
    if ids::is_hex(query) && query.len() <= 64 {
        if query.len() == 64 {
            if let Some(c) = load(store, query)? {
                return Ok(c);
            }
        } else {
            let matches: Vec<String> = list_ids(store)?
                .into_iter()
                .filter(|id| id.starts_with(query))
                .collect();
            let mut found = Vec::new();
            for id in matches {
                if let Some(c) = load(store, &id)? {
                    found.push(c);
                }
            }
            match found.len() {
                0 => {}
                1 => return Ok(found.pop().expect("one")),
                n => bail!("container ID prefix {query} is ambiguous: {n} containers match"),
            }
        }
    }
    Err(ContainerNotFound(query.to_string()).into())
}

/// Claims `name` for container `id`. The link is made only after the
/// container's directory and lock exist, so a link to a missing directory can
/// only be left by a crash; such a stale link is replaced under a lock on the
/// names directory.
pub fn claim_name(store: &Store, name: &str, id: &str) -> Result<()> {
    ids::validate_name(name)?;
    let link = name_link(store, name);
    match std::os::unix::fs::symlink(id, &link) {
        Ok(()) => return Ok(()),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e).with_context(|| format!("claim name {name}")),
    }
    let _names = Lock::acquire(&store.container_names_dir().join(".lock"), Mode::Exclusive, None)?;
    let in_use = || {
        anyhow::Error::new(crate::exit::Coded::new(
            crate::exit::ENGINE,
            format!("the container name \"{name}\" is already in use: remove that container or choose another name"),
        ))
    };
    let owner = match fs::read_link(&link) {
        Ok(t) => t.to_string_lossy().into_owned(),
        Err(e) if e.kind() == io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e).with_context(|| format!("read name {name}")),
    };
    if !owner.is_empty() && ids::is_full_id(&owner) {
        let dir = store.container_dir(&owner);
        if dir.exists() {
            // Alive, or being created by a process that holds its lock.
            let busy = Lock::try_acquire(&dir.join("lock"), Mode::Exclusive)?.is_none();
            let named = record::read_json::<ContainerConfig>(&dir.join("config.json"))
                .ok()
                .flatten()
                .is_some_and(|c| c.name == name);
            if busy || named {
                return Err(in_use());
            }
        }
    }
    let tmp = store
        .container_names_dir()
        .join(format!("{}{}-{name}", record::TMP_PREFIX, std::process::id()));
    let _ = fs::remove_file(&tmp);
    std::os::unix::fs::symlink(id, &tmp).with_context(|| format!("claim name {name}"))?;
    fs::rename(&tmp, &link).with_context(|| format!("claim name {name}"))?;
    Ok(())
}

/// Releases `name` if it still points at `id`.
pub fn release_name(store: &Store, name: &str, id: &str) {
    let link = name_link(store, name);
    if fs::read_link(&link).map(|t| t.to_string_lossy() == id).unwrap_or(false) {
        let _ = fs::remove_file(&link);
    }
}

/// Renames a container: new link, record, then the old link goes.
pub fn rename(store: &Store, c: &Container, new_name: &str) -> Result<()> {
    let _lock = lock(store, &c.config.id)?;
    claim_name(store, new_name, &c.config.id)?;
    let mut config = c.config.clone();
    let old = std::mem::replace(&mut config.name, new_name.to_string());
    if let Err(e) = record::write_json(&config_path(store, &config.id), &config, Durability::Durable) {
        release_name(store, new_name, &config.id);
        return Err(e);
    }
    release_name(store, &old, &config.id);
    Ok(())
}
