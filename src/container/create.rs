//! `create` (and the first half of `run`): a container record from the CLI's
//! options and the image's config. Every flag is checked before anything is
//! written, and a failure half-way removes what was made.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::Value;

use super::{Container, ContainerConfig, ContainerState, DEFAULT_PATH, claim_name};
use crate::cli::ContainerOptions;
use crate::image;
use crate::namespaces::userns::IdMapping;
use crate::namespaces::{MountKind, MountPlan};
use crate::store::lock::Mode;
use crate::store::record::{self, Durability};
use crate::store::{Driver, Store};
use crate::util::{ids, size, time};

/// Parses `--entrypoint`: a JSON array, or one command word.
fn parse_entrypoint(s: &str) -> Vec<String> {
    let t = s.trim();
    if t.is_empty() {
        return Vec::new();
    }
    if t.starts_with('[')
        && let Ok(v) = serde_json::from_str::<Vec<String>>(t)
    {
        return v;
    }
    vec![s.to_string()]
}

fn str_list(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_str().map(String::from)).collect())
        .unwrap_or_default()
}

/// Sets `KEY=value` in `env`, replacing an earlier value of KEY.
pub fn set_env(env: &mut Vec<String>, entry: String) {
    let key = entry.split_once('=').map(|x| x.0).unwrap_or(&entry).to_string();
    env.retain(|e| e.split_once('=').map(|x| x.0).unwrap_or(e) != key);
    env.push(entry);
}

/// `-e NAME=value`, or `-e NAME` to copy NAME from casco's environment (left
/// out when unset, as podman does).
fn env_flag(e: &str) -> Option<String> {
    if e.contains('=') {
        return Some(e.to_string());
    }
    std::env::var(e).ok().map(|v| format!("{e}={v}"))
}

/// Reads an `--env-file`: NAME=value lines, `#` comments, NAME alone copies.
pub fn read_env_file(path: &Path) -> Result<Vec<String>> {
    let text = fs::read_to_string(path).with_context(|| format!("read env file {}", path.display()))?;
    let mut v = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let l = line.trim_start();
        if l.is_empty() || l.starts_with('#') {
            continue;
        }
        let key = l.split_once('=').map(|x| x.0).unwrap_or(l);
        if key.is_empty() || key.contains(char::is_whitespace) {
            bail!("{}:{}: invalid variable name in {line:?}", path.display(), n + 1);
        }
        if let Some(e) = env_flag(l) {
            v.push(e);
        }
    }
    Ok(v)
}

fn absolute_dest(d: &str, flag: &str) -> Result<String> {
    if !d.starts_with('/') {
        bail!("{flag}: destination {d:?} is not an absolute path");
    }
    if d.split('/').any(|c| c == "..") {
        bail!("{flag}: destination {d:?} contains \"..\"");
    }
    Ok(d.to_string())
}

fn bind_source(s: &str, flag: &str) -> Result<PathBuf> {
    if !s.starts_with('/') && !s.starts_with('.') {
        bail!("{flag}: {s:?} is not a host path: named volumes are not supported yet, give an absolute path");
    }
    let p = std::path::absolute(s).with_context(|| format!("{flag}: {s}"))?;
    if !p.exists() {
        bail!("{flag}: the source path {} does not exist", p.display());
    }
    Ok(p)
}

fn new_bind(source: PathBuf, destination: String) -> MountPlan {
    MountPlan {
        destination,
        kind: MountKind::Bind {
            source,
            recursive: true,
        },
        readonly: false,
        propagation: Some("rprivate".into()),
        nosuid: false,
        nodev: false,
        noexec: false,
    }
}

/// `-v SRC:DST[:OPTS]`
fn parse_volume(v: &str) -> Result<MountPlan> {
    let parts: Vec<&str> = v.split(':').collect();
    let (src, dst, opts) = match parts.as_slice() {
        [s, d] => (*s, *d, ""),
        [s, d, o] => (*s, *d, *o),
        _ => bail!("-v {v:?}: want SOURCE:DESTINATION[:OPTIONS]"),
    };
    let mut m = new_bind(bind_source(src, "-v")?, absolute_dest(dst, "-v")?);
    for o in opts.split(',').filter(|o| !o.is_empty()) {
        match o {
            "ro" => m.readonly = true,
            "rw" => m.readonly = false,
            "z" | "Z" => {} // SELinux relabelling: no SELinux here
            "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave" => m.propagation = Some(o.into()),
            "bind" => {
                m.kind = MountKind::Bind {
                    source: bind_path(&m),
                    recursive: false,
                }
            }
            "rbind" => {}
            "nosuid" => m.nosuid = true,
            "nodev" => m.nodev = true,
            "noexec" => m.noexec = true,
            "suid" | "dev" | "exec" => {}
            other => bail!("-v {v:?}: unknown option {other:?}"),
        }
    }
    Ok(m)
}

fn bind_path(m: &MountPlan) -> PathBuf {
    match &m.kind {
        MountKind::Bind { source, .. } => source.clone(),
        MountKind::Tmpfs { .. } => PathBuf::new(),
    }
}

fn tmpfs_plan(dest: String, opts: &[&str], flag: &str) -> Result<MountPlan> {
    let mut data: Vec<String> = Vec::new();
    let mut m = MountPlan {
        destination: dest,
        kind: MountKind::Tmpfs { options: String::new() },
        readonly: false,
        propagation: None,
        nosuid: true,
        nodev: true,
        noexec: false,
    };
    for o in opts.iter().filter(|o| !o.is_empty()) {
        match *o {
            "ro" => m.readonly = true,
            "rw" => m.readonly = false,
            "noexec" => m.noexec = true,
            "exec" => m.noexec = false,
            "nosuid" => m.nosuid = true,
            "suid" => m.nosuid = false,
            "nodev" => m.nodev = true,
            "dev" => m.nodev = false,
            o if o.starts_with("size=") || o.starts_with("mode=") || o.starts_with("nr_inodes=") => {
                let (k, val) = o.split_once('=').expect("has =");
                match k {
                    "size" => {
                        size::parse_size(val).with_context(|| format!("{flag}: size"))?;
                    }
                    "mode" => {
                        u32::from_str_radix(val, 8).with_context(|| format!("{flag}: mode {val:?} is not octal"))?;
                    }
                    _ => {}
                }
                data.push(o.to_string());
            }
            o if o.starts_with("uid=") || o.starts_with("gid=") => data.push(o.to_string()),
            other => bail!("{flag}: unknown tmpfs option {other:?}"),
        }
    }
    if !data.iter().any(|d| d.starts_with("mode=")) {
        data.push("mode=1777".into());
    }
    m.kind = MountKind::Tmpfs {
        options: data.join(","),
    };
    Ok(m)
}

/// `--mount type=bind|tmpfs,source=..,destination=..,...`
fn parse_mount(s: &str) -> Result<MountPlan> {
    let mut kind = None;
    let mut src = None;
    let mut dst = None;
    let mut ro = false;
    let mut prop = None;
    let mut tmpfs_opts: Vec<String> = Vec::new();
    for part in s.split(',') {
        let (k, v) = part.split_once('=').map(|(k, v)| (k, Some(v))).unwrap_or((part, None));
        match (k, v) {
            ("type", Some(t)) => kind = Some(t.to_string()),
            ("source" | "src", Some(v)) => src = Some(v.to_string()),
            ("destination" | "dst" | "target", Some(v)) => dst = Some(v.to_string()),
            ("ro" | "readonly", None) => ro = true,
            ("ro" | "readonly", Some(v)) => ro = matches!(v, "true" | "1"),
            ("rw", None) => ro = false,
            ("bind-propagation", Some(p)) => prop = Some(p.to_string()),
            ("tmpfs-size", Some(v)) => tmpfs_opts.push(format!("size={v}")),
            ("tmpfs-mode", Some(v)) => tmpfs_opts.push(format!("mode={v}")),
            ("z" | "Z" | "relabel", _) | ("bind-nonrecursive", _) => {}
            _ => bail!("--mount {s:?}: unknown option {part:?}"),
        }
    }
    let dst = absolute_dest(
        &dst.with_context(|| format!("--mount {s:?}: destination= is required"))?,
        "--mount",
    )?;
    match kind.as_deref() {
        Some("bind") => {
            let src = src.with_context(|| format!("--mount {s:?}: source= is required for a bind mount"))?;
            let mut m = new_bind(bind_source(&src, "--mount")?, dst);
            m.readonly = ro;
            if let Some(p) = prop {
                if !matches!(
                    p.as_str(),
                    "private" | "rprivate" | "shared" | "rshared" | "slave" | "rslave"
                ) {
                    bail!("--mount {s:?}: unknown bind-propagation {p:?}");
                }
                m.propagation = Some(p);
            }
            Ok(m)
        }
        Some("tmpfs") => {
            let mut opts: Vec<&str> = tmpfs_opts.iter().map(String::as_str).collect();
            if ro {
                opts.push("ro");
            }
            tmpfs_plan(dst, &opts, "--mount")
        }
        Some("volume") => bail!("--mount type=volume: named volumes are not supported yet"),
        Some(t) => bail!("--mount {s:?}: unknown type {t:?}: use bind or tmpfs"),
        None => bail!("--mount {s:?}: type= is required"),
    }
}

/// Everything from the flags that does not need the store, validated.
struct Checked {
    mounts: Vec<MountPlan>,
    network: String,
    log_driver: String,
    log_max_size: Option<u64>,
    stop_signal: Option<i32>,
    labels: BTreeMap<String, String>,
    env_files: Vec<String>,
    memory: Option<u64>,
}

fn check_options(o: &ContainerOptions) -> Result<Checked> {
    if let Some(n) = &o.name {
        ids::validate_name(n)?;
    }
    let network = match o.network.as_deref() {
        None | Some("") | Some("host") => "host".to_string(),
        Some("none") => "none".to_string(),
        Some(other) => {
            bail!("--network {other}: only host and none are available (private networks are not built yet)")
        }
    };
    let log_driver = match o.log_driver.as_deref() {
        None | Some("") | Some("k8s-file") => "k8s-file",
        Some("none") => "none",
        Some("passthrough") => "passthrough",
        Some("journald") => bail!("--log-driver journald is not supported: use k8s-file, none or passthrough"),
        Some(other) => bail!("unknown --log-driver {other:?}: use k8s-file, none or passthrough"),
    }
    .to_string();
    if log_driver == "passthrough" && o.tty {
        bail!("--log-driver passthrough cannot be used with --tty");
    }
    let mut log_max_size = None;
    for opt in &o.log_opt {
        match opt.split_once('=') {
            Some(("max-size", v)) => log_max_size = Some(size::parse_size(v).context("--log-opt max-size")?),
            Some(("path" | "tag", _)) => bail!("--log-opt {opt}: not supported yet"),
            _ => bail!("unknown --log-opt {opt:?}: casco supports max-size=SIZE"),
        }
    }
    let stop_signal = o.stop_signal.as_deref().map(super::signal::parse_signal).transpose()?;
    let mut mounts = Vec::new();
    for v in &o.volume {
        mounts.push(parse_volume(v)?);
    }
    for m in &o.mount {
        mounts.push(parse_mount(m)?);
    }
    for t in &o.tmpfs {
        let (d, opts) = t.split_once(':').unwrap_or((t.as_str(), ""));
        let opts: Vec<&str> = opts.split(',').collect();
        mounts.push(tmpfs_plan(absolute_dest(d, "--tmpfs")?, &opts, "--tmpfs")?);
    }
    let mut seen = std::collections::HashSet::new();
    for m in &mounts {
        if !seen.insert(m.destination.trim_end_matches('/').to_string()) {
            bail!("{} is mounted twice", m.destination);
        }
    }
    crate::namespaces::capability_set(o.privileged, &o.cap_add, &o.cap_drop)?;
    let mut labels = BTreeMap::new();
    for l in &o.label {
        let (k, v) = l.split_once('=').unwrap_or((l.as_str(), ""));
        if k.is_empty() {
            bail!("invalid --label {l:?}");
        }
        labels.insert(k.to_string(), v.to_string());
    }
    let mut env_files = Vec::new();
    for f in &o.env_file {
        env_files.extend(read_env_file(f)?);
    }
    if let Some(h) = &o.hostname
        && (h.is_empty() || h.len() > 64 || !h.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
    {
        bail!("invalid --hostname {h:?}");
    }
    match o.userns.as_deref() {
        None | Some("") | Some("host") | Some("keep-id") | Some("auto") => {}
        Some(other) => bail!("unknown --userns {other:?}: use host, keep-id or auto"),
    }
    if o.userns.as_deref() == Some("host") && crate::sys::geteuid() != 0 {
        bail!("--userns=host needs root: rootless containers always run in a user namespace");
    }
    if let Some(f) = &o.cidfile
        && f.exists()
    {
        bail!("the container ID file {} already exists", f.display());
    }
    let memory = match o.memory.as_deref() {
        None => None,
        Some(m) => {
            let bytes = size::parse_size(m).context("--memory")?;
            // The kernel needs room for the process itself; podman refuses below 6 MB.
            if bytes < 6 * 1024 * 1024 {
                bail!("--memory {m}: the minimum is 6m");
            }
            Some(bytes)
        }
    };
    if (memory.is_some() || o.pids_limit.is_some_and(|n| n > 0)) && crate::sys::geteuid() != 0 {
        let layout = crate::cgroups::detect(Path::new(crate::cgroups::DEFAULT_ROOT)).ok();
        if layout != Some(crate::cgroups::Layout::Unified) {
            bail!(
                "resource limits need cgroup v2 rootless: this host has cgroup v1 controllers, which only root can use"
            );
        }
    }
    Ok(Checked {
        mounts,
        network,
        log_driver,
        log_max_size,
        stop_signal,
        labels,
        env_files,
        memory,
    })
}

fn hosts_file(hostname: &str, name: &str, network: &str) -> String {
    let mut s = String::new();
    if network == "host" {
        if let Ok(h) = fs::read_to_string("/etc/hosts") {
            s.push_str(&h);
            if !s.ends_with('\n') {
                s.push('\n');
            }
        }
    } else {
        s.push_str("127.0.0.1\tlocalhost localhost.localdomain\n::1\tlocalhost localhost.localdomain\n");
    }
    s.push_str(&format!("127.0.1.1\t{hostname} {name}\n"));
    s
}

fn resolv_conf() -> String {
    fs::read_to_string("/etc/resolv.conf").unwrap_or_default()
}

/// Makes the container (record, name, directories); does not start it.
pub fn create(store: &Store, opts: &ContainerOptions, image_ref: &str, command: &[String]) -> Result<Container> {
    let checked = check_options(opts)?;
    let (img, matched_name) = image::resolve_named(store, image_ref)?;
    // rmi waits for this lock, so the image cannot go while we create from it.
    let _image_lock = image::lock(store, &img.id, Mode::Shared)?;
    let base = Base {
        id: img.id.clone(),
        name: matched_name.unwrap_or_else(|| image_ref.to_string()),
        layers: img.layers.clone(),
        config: image::config(store, &img)?,
    };
    create_checked(store, opts, checked, &base, command)
}

/// What a container is made from: an image, or (for `build`) the layers and
/// config of a build step.
pub struct Base {
    pub id: String,
    /// The image as the user named it (podman's ImageName).
    pub name: String,
    /// Chain IDs, bottom first.
    pub layers: Vec<String>,
    /// The whole image config (`config`, `rootfs`, `history`...).
    pub config: Value,
}

/// [`create`] from layers and a config rather than a stored image. The caller
/// keeps the layers from being collected (the layer GC lock, shared).
pub fn create_from(store: &Store, opts: &ContainerOptions, base: &Base, command: &[String]) -> Result<Container> {
    let checked = check_options(opts)?;
    create_checked(store, opts, checked, base, command)
}

fn create_checked(
    store: &Store,
    opts: &ContainerOptions,
    checked: Checked,
    base: &Base,
    command: &[String],
) -> Result<Container> {
    let icfg = base.config.get("config").cloned().unwrap_or(Value::Null);

    let (entrypoint, mut cmd) = match &opts.entrypoint {
        Some(e) => (parse_entrypoint(e), Vec::new()),
        None => (str_list(&icfg["Entrypoint"]), str_list(&icfg["Cmd"])),
    };
    if !command.is_empty() {
        cmd = command.to_vec();
    }
    let args: Vec<String> = entrypoint.iter().chain(cmd.iter()).cloned().collect();
    if args.is_empty() {
        bail!("no command or entrypoint given, and the image has no CMD or ENTRYPOINT");
    }

    let id = ids::random_id();
    let hostname = opts.hostname.clone().unwrap_or_else(|| id[..12].to_string());
    let mut env: Vec<String> = Vec::new();
    let image_env = str_list(&icfg["Env"]);
    if !image_env.iter().any(|e| e.starts_with("PATH=")) {
        env.push(format!("PATH={DEFAULT_PATH}"));
    }
    for e in image_env {
        set_env(&mut env, e);
    }
    set_env(&mut env, "container=casco".into());
    // podman sets TERM whether or not there is a terminal.
    set_env(&mut env, "TERM=xterm".into());
    set_env(&mut env, format!("HOSTNAME={hostname}"));
    for e in checked.env_files {
        set_env(&mut env, e);
    }
    for e in &opts.env {
        if let Some(e) = env_flag(e) {
            set_env(&mut env, e);
        }
    }
    let workdir = opts
        .workdir
        .clone()
        .or_else(|| icfg["WorkingDir"].as_str().filter(|s| !s.is_empty()).map(String::from))
        .unwrap_or_else(|| "/".into());
    if !workdir.starts_with('/') {
        bail!("the working directory {workdir:?} is not an absolute path");
    }
    // keep-id runs as the caller's own IDs unless --user says otherwise (podman).
    let keep_id_user = (opts.userns.as_deref() == Some("keep-id")).then(|| format!("{}:{}", store.uid, store.gid));
    let user = opts
        .user
        .clone()
        .or(keep_id_user)
        .or_else(|| icfg["User"].as_str().map(String::from))
        .unwrap_or_default();
    let stop_signal = match checked.stop_signal {
        Some(s) => s,
        None => icfg["StopSignal"]
            .as_str()
            .map(super::signal::parse_signal)
            .transpose()
            .context("the image's STOPSIGNAL")?
            .unwrap_or(libc::SIGTERM),
    };
    let mut labels: BTreeMap<String, String> = icfg["Labels"]
        .as_object()
        .map(|m| {
            m.iter()
                .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                .collect()
        })
        .unwrap_or_default();
    labels.extend(checked.labels);

    let id_mapping = if store.rootless {
        let base = store.id_mapping().clone();
        match opts.userns.as_deref() {
            Some("keep-id") => Some(base.keep_id(store.uid, store.gid)?),
            _ => Some(base),
        }
    } else {
        None
    };
    if opts.userns.as_deref() == Some("keep-id") && !store.rootless {
        bail!("--userns=keep-id is only meaningful rootless");
    }

    let now = time::now_nanos();
    let auto_name = opts.name.is_none();
    let mut name = opts.name.clone().unwrap_or_else(ids::random_name);
    let config = |name: &str| ContainerConfig {
        id: id.clone(),
        name: name.to_string(),
        created: now,
        image_id: base.id.clone(),
        image_name: base.name.clone(),
        layers: base.layers.clone(),
        driver: store.driver(),
        id_mapping: id_mapping.clone(),
        entrypoint: entrypoint.clone(),
        cmd: cmd.clone(),
        args: args.clone(),
        env: env.clone(),
        workdir: workdir.clone(),
        user: user.clone(),
        group_add: opts.group_add.clone(),
        hostname: hostname.clone(),
        mounts: checked.mounts.clone(),
        read_only: opts.read_only,
        network: checked.network.clone(),
        cap_add: opts.cap_add.clone(),
        cap_drop: opts.cap_drop.clone(),
        privileged: opts.privileged,
        labels: labels.clone(),
        stop_signal,
        stop_timeout: opts.stop_timeout.unwrap_or(10),
        log_driver: checked.log_driver.clone(),
        log_max_size: checked.log_max_size,
        init: opts.init,
        memory: checked.memory,
        pids_limit: opts.pids_limit.filter(|n| *n > 0),
        interactive: opts.interactive,
        tty: opts.tty,
        auto_remove: opts.rm,
        pidfile: opts
            .pidfile
            .as_ref()
            .map(|p| std::path::absolute(p).unwrap_or_else(|_| p.clone())),
    };

    let dir = store.container_dir(&id);
    fs::create_dir(&dir).with_context(|| format!("create {}", dir.display()))?;
    let built = (|| -> Result<Container> {
        let _lock = super::lock(store, &id)?;
        // A --rm container is gone when it ends: it need not survive a power cut.
        let durability = if opts.rm {
            Durability::CrashSafe
        } else {
            Durability::Durable
        };
        // Name first: the lock marks this directory as in progress for a
        // concurrent claimant; a generated name retries on collision.
        let mut tries = 0;
        loop {
            match claim_name(store, &name, &id) {
                Ok(()) => break,
                Err(e) if auto_name && tries < 20 => {
                    tries += 1;
                    name = ids::random_name();
                    if tries == 20 {
                        return Err(e);
                    }
                }
                Err(e) => return Err(e),
            }
        }
        let mut cfg = config(&name);
        // keep-id shifts every ID: the image's files need their owners
        // rewritten for it, which takes a private copy (as podman makes).
        if opts.userns.as_deref() == Some("keep-id") {
            cfg.driver = Driver::Vfs;
        }
        match cfg.driver {
            Driver::Overlay => {
                for d in ["upper", "work", "merged"] {
                    fs::create_dir(dir.join(d)).with_context(|| format!("create {}/{d}", dir.display()))?;
                }
            }
            Driver::Vfs => build_vfs_rootfs(store, &cfg)?,
        }
        let userdata = dir.join("userdata");
        fs::create_dir(&userdata).with_context(|| format!("create {}", userdata.display()))?;
        fs::write(userdata.join("hostname"), format!("{hostname}\n")).context("write hostname")?;
        fs::write(userdata.join("hosts"), hosts_file(&hostname, &name, &cfg.network)).context("write hosts")?;
        fs::write(userdata.join("resolv.conf"), resolv_conf()).context("write resolv.conf")?;
        record::write_json(&super::state_path(store, &id), &ContainerState::created(), durability)?;
        // config.json last: its presence makes the container exist for readers.
        record::write_json(&super::config_path(store, &id), &cfg, durability)?;
        Ok(Container {
            config: cfg,
            state: ContainerState::created(),
        })
    })();
    let c = match built {
        Ok(c) => c,
        Err(e) => {
            super::release_name(store, &name, &id);
            let _ = crate::layers::store::remove_tree(store, &dir);
            return Err(e);
        }
    };
    if let Some(f) = &opts.cidfile {
        fs::write(f, &id).with_context(|| format!("write the container ID file {}", f.display()))?;
    }
    Ok(c)
}

/// The vfs driver: a private, merged copy of every layer.
fn build_vfs_rootfs(store: &Store, cfg: &ContainerConfig) -> Result<()> {
    let dest = store.container_dir(&cfg.id).join("rootfs");
    fs::create_dir(&dest).with_context(|| format!("create {}", dest.display()))?;
    let layers: Vec<PathBuf> = cfg
        .layers
        .iter()
        .map(|l| crate::layers::store::diff_dir(store, l))
        .collect::<Result<_>>()?;
    let opts = crate::layers::unpack::UnpackOptions {
        rootless: store.rootless,
    };
    if store.rootless {
        let d = dest.clone();
        let base = store.id_mapping().clone();
        let target = cfg.id_mapping.clone().filter(|m| *m != base);
        crate::namespaces::userns::run_in_userns(store.id_mapping(), move || {
            crate::layers::merge::merge_layers(&layers, &d, &opts)?;
            if let Some(t) = &target {
                shift_owners(&d, &base, t)?;
            }
            Ok(())
        })
    } else {
        crate::layers::merge::merge_layers(&layers, &dest, &opts)
    }
}

/// Rewrites owners under `dir` so that each file keeps its container owner
/// under mapping `to` instead of `from`. Runs as root of a user namespace with
/// mapping `from`, where it sees (and sets) IDs in `from`'s terms.
fn shift_owners(dir: &Path, from: &IdMapping, to: &IdMapping) -> Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    // Container ID k must end up as host ID to(k), which `from` calls from⁻¹(to(k)).
    let uid = |k: u32| to.host_uid(k).and_then(|h| from.container_uid(h)).unwrap_or(k);
    let gid = |k: u32| to.host_gid(k).and_then(|h| from.container_gid(h)).unwrap_or(k);
    let mut stack = vec![dir.to_path_buf()];
    while let Some(p) = stack.pop() {
        let md = fs::symlink_metadata(&p).with_context(|| format!("stat {}", p.display()))?;
        let (u, g) = (uid(md.uid()), gid(md.gid()));
        if (u, g) != (md.uid(), md.gid()) {
            std::os::unix::fs::lchown(&p, Some(u), Some(g)).with_context(|| format!("chown {}", p.display()))?;
            // chown clears set-user-ID and set-group-ID bits: put them back.
            if !md.file_type().is_symlink() && md.mode() & 0o6000 != 0 {
                fs::set_permissions(&p, fs::Permissions::from_mode(md.mode() & 0o7777))
                    .with_context(|| format!("chmod {}", p.display()))?;
            }
        }
        if md.is_dir() {
            for e in fs::read_dir(&p).with_context(|| format!("read {}", p.display()))? {
                stack.push(e?.path());
            }
        }
    }
    Ok(())
}
