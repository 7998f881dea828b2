//! Container cgroups: where each container's cgroup lives, how processes join
//! it, its limits, freezing, killing everything in it, and removal.
//!
//! # Layouts
//!
//! What is mounted at /sys/fs/cgroup decides everything ([`detect`]):
//! - **Unified** (cgroup v2 only; most current hosts): one hierarchy, the
//!   container is one directory, controllers are switched on per level through
//!   cgroup.subtree_control ([`v2`]).
//! - **Hybrid**: a tmpfs with one cgroup v1 hierarchy per controller
//!   (/sys/fs/cgroup/memory, .../pids, ...) plus a cgroup2 mount at
//!   /sys/fs/cgroup/unified that holds no resource controllers. Limits are v1
//!   ([`v1`]); the container also gets a directory in the unified hierarchy
//!   so cgroup.kill and its cgroup namespace view work there too.
//! - **Legacy**: v1 hierarchies only.
//!
//! Rootless containers get a cgroup only on Unified hosts and only inside a
//! subtree delegated to the user; v1 cannot be delegated safely, so there they
//! get none (as with podman).
//!
//! # Joining
//!
//! The process that starts a container calls [`Manager::create`]; the forked
//! child that becomes the container then writes "0" (meaning "the writer") to
//! each of [`Cgroup::procs_files`] itself, before it execs and before it
//! unshares its cgroup namespace. Joining first means every process of the
//! container, including anything it forks at once, starts inside the cgroup
//! with no window outside it. Joining before `unshare(CLONE_NEWCGROUP)`
//! matters because a new cgroup namespace is rooted at the cgroup its creator
//! is in at that moment: the container then sees its own cgroup as "/", and
//! the host's hierarchy above it stays hidden. Joining afterwards would leave
//! the namespace rooted at the creator's cgroup, showing the container's
//! cgroup as a subdirectory and the host's cgroups around it.

mod files;
pub mod v1;
pub mod v2;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::sys::statfs::{CGROUP2_SUPER_MAGIC, TMPFS_MAGIC, statfs};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

/// Where cgroup filesystems are mounted on every Linux distribution.
pub const DEFAULT_ROOT: &str = "/sys/fs/cgroup";

/// The directory (below each hierarchy root) that holds the containers of a
/// rootful casco.
const PARENT: &str = "casco";

/// How long `kill_all` waits for a cgroup to empty, and `remove` retries EBUSY.
const KILL_TIMEOUT: Duration = Duration::from_secs(2);
const REMOVE_TIMEOUT: Duration = Duration::from_secs(1);

/// How the cgroup filesystems are mounted; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layout {
    Unified,
    Hybrid,
    Legacy,
}

/// statfs on `root` (normally /sys/fs/cgroup): a cgroup2 filesystem →
/// Unified; a tmpfs with a cgroup2 filesystem at `unified/` → Hybrid;
/// anything else → Legacy.
pub fn detect(root: &Path) -> Result<Layout> {
    let fs_type = statfs(root)
        .with_context(|| format!("statfs {}", root.display()))?
        .filesystem_type();
    if fs_type == CGROUP2_SUPER_MAGIC {
        return Ok(Layout::Unified);
    }
    if fs_type == TMPFS_MAGIC {
        let unified = root.join("unified");
        if statfs(&unified).is_ok_and(|s| s.filesystem_type() == CGROUP2_SUPER_MAGIC) {
            return Ok(Layout::Hybrid);
        }
    }
    Ok(Layout::Legacy)
}

/// podman's `CgroupVersion`: "v2" for Unified, "v1" otherwise.
pub fn version_name(layout: Layout) -> &'static str {
    match layout {
        Layout::Unified => "v2",
        Layout::Hybrid | Layout::Legacy => "v1",
    }
}

/// Refuses a container id that could not be a single path component.
fn validate_id(id: &str) -> Result<()> {
    if id.is_empty() || id == "." || id == ".." || id.contains(['/', '\0']) || id.len() > 200 {
        bail!("invalid cgroup name {id:?}: it must be one path component (no '/', not '.' or '..', 1-200 bytes)");
    }
    Ok(())
}

/// Resource limits for a container's cgroup. Fields stay `None` for "no
/// limit set"; more (cpu, cpuset, io, swap) come with the resource flags.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resources {
    /// Memory limit in bytes (v2 memory.max; v1 memory and memory+swap).
    pub memory: Option<u64>,
    /// Process limit; zero or negative means unlimited, as with podman.
    pub pids: Option<i64>,
}

/// Where a container's cgroup is, as kept in its record. Paths are absolute.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct CgroupPaths {
    pub layout: Layout,
    /// The cgroup's path relative to its hierarchy root, e.g. "/casco/<id>".
    pub relative: String,
    /// The directory in the unified (v2) hierarchy: the whole cgroup on
    /// Unified, the extra one on Hybrid, absent on Legacy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub unified: Option<PathBuf>,
    /// v1: controller name → the cgroup's directory in that controller's
    /// hierarchy. Co-mounted controllers share a directory.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub controllers: BTreeMap<String, PathBuf>,
}

impl CgroupPaths {
    /// Every distinct cgroup directory, the unified one first.
    fn dirs(&self) -> Vec<&Path> {
        let mut dirs: Vec<&Path> = self.unified.iter().map(PathBuf::as_path).collect();
        for dir in self.controllers.values() {
            if !dirs.contains(&dir.as_path()) {
                dirs.push(dir);
            }
        }
        dirs
    }

    fn v1(&self, controller: &str) -> Option<&Path> {
        self.controllers.get(controller).map(PathBuf::as_path)
    }
}

/// Makes and re-opens container cgroups under one cgroup root.
#[derive(Debug, Clone)]
pub struct Manager {
    root: PathBuf,
    layout: Layout,
    /// /proc/self/cgroup: where the current process is (rootless placement).
    self_cgroup: PathBuf,
    /// The user whose delegated subtree a rootless cgroup must be in.
    uid: u32,
}

impl Manager {
    /// A manager for the cgroup filesystem(s) at `root`, mounted as `layout`.
    pub fn new(root: &Path, layout: Layout) -> Manager {
        Manager {
            root: root.to_owned(),
            layout,
            self_cgroup: PathBuf::from("/proc/self/cgroup"),
            uid: crate::sys::geteuid(),
        }
    }

    /// The manager for this host: /sys/fs/cgroup with its detected layout.
    pub fn system() -> Result<Manager> {
        let root = Path::new(DEFAULT_ROOT);
        Ok(Manager::new(root, detect(root)?))
    }

    /// Reads the current process's cgroup from `path` instead of
    /// /proc/self/cgroup, and checks delegation against `uid` instead of the
    /// effective uid (for fake trees).
    pub fn with_process(mut self, self_cgroup: &Path, uid: u32) -> Manager {
        self.self_cgroup = self_cgroup.to_owned();
        self.uid = uid;
        self
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Makes the cgroup for container `id`: `casco/<id>` below each hierarchy
    /// root when rootful (see [`v1::create`], [`v2::create`]). Rootless gets
    /// one only on Unified inside a delegated subtree ([`v2::create_rootless`]),
    /// else `Ok(None)`. A create that fails half-way removes what it made.
    ///
    /// With `controllers` false, a hybrid host gets only the node in the
    /// unified hierarchy and a legacy host none: a process is born into a v2
    /// cgroup for free (clone3 CLONE_INTO_CGROUP), but moving it into v1
    /// cgroups costs an RCU grace period (5-10 ms) on the start path, paid only
    /// by containers that set resource limits.
    pub fn create(&self, id: &str, rootless: bool, controllers: bool) -> Result<Option<Cgroup>> {
        validate_id(id)?;
        if rootless {
            return self.create_rootless(id);
        }
        let mut paths = CgroupPaths {
            layout: self.layout,
            relative: format!("/{PARENT}/{id}"),
            unified: None,
            controllers: BTreeMap::new(),
        };
        if !controllers && self.layout == Layout::Legacy {
            return Ok(None);
        }
        let result = match self.layout {
            Layout::Unified => v2::create(&self.root, PARENT, id).map(|dir| paths.unified = Some(dir)),
            Layout::Legacy => v1::create(&self.root, PARENT, id, &mut paths.controllers),
            Layout::Hybrid => {
                if controllers {
                    v1::create(&self.root, PARENT, id, &mut paths.controllers)
                } else {
                    Ok(())
                }
            }
            .and_then(|()| {
                let unified = self.root.join("unified");
                if unified.join("cgroup.procs").is_file() {
                    paths.unified = Some(v2::create(&unified, PARENT, id)?);
                }
                Ok(())
            }),
        };
        let cgroup = Cgroup { paths };
        if let Err(e) = result {
            let _ = cgroup.remove();
            return Err(e.context(format!("create cgroup {}", cgroup.relative_path())));
        }
        if cgroup.paths.dirs().is_empty() {
            bail!("no cgroup controllers are mounted under {}", self.root.display());
        }
        Ok(Some(cgroup))
    }

    fn create_rootless(&self, id: &str) -> Result<Option<Cgroup>> {
        if self.layout != Layout::Unified {
            return Ok(None);
        }
        let self_cgroup = files::read(&self.self_cgroup)?;
        let made = v2::create_rootless(&self.root, &self_cgroup, self.uid, id)
            .with_context(|| format!("create rootless cgroup for {id}"))?;
        Ok(made.map(|(dir, relative)| Cgroup {
            paths: CgroupPaths {
                layout: self.layout,
                relative,
                unified: Some(dir),
                controllers: BTreeMap::new(),
            },
        }))
    }

    /// Re-opens an existing container cgroup from its record; makes nothing.
    pub fn open(&self, paths: &CgroupPaths) -> Cgroup {
        Cgroup { paths: paths.clone() }
    }
}

/// One container's cgroup (a directory per hierarchy).
#[derive(Debug, Clone)]
pub struct Cgroup {
    paths: CgroupPaths,
}

impl Cgroup {
    pub fn paths(&self) -> &CgroupPaths {
        &self.paths
    }

    /// The cgroup.procs file of every directory: the container's first process
    /// writes "0" to each of them to join (see the module documentation). The
    /// caller turns them into C strings before it forks, so that the child
    /// only has to open(2) and write(2).
    pub fn procs_files(&self) -> Vec<PathBuf> {
        self.paths.dirs().into_iter().map(|d| d.join("cgroup.procs")).collect()
    }

    /// The cgroup v2 directory, which a new process can be created in
    /// directly (clone3 with CLONE_INTO_CGROUP), without a migration.
    pub fn v2_dir(&self) -> Option<&Path> {
        self.paths.unified.as_deref()
    }

    /// The cgroup.procs files of the v1 hierarchies, which a process must be
    /// moved into by writing.
    pub fn v1_procs_files(&self) -> Vec<PathBuf> {
        self.paths
            .controllers
            .values()
            .map(|d| d.join("cgroup.procs"))
            .collect()
    }

    /// Moves process `pid` (an `exec` into a running container) into the cgroup.
    pub fn add_pid(&self, pid: i32) -> Result<()> {
        for file in self.procs_files() {
            files::write(&file, &pid.to_string()).with_context(|| format!("move process {pid} into cgroup"))?;
        }
        Ok(())
    }

    /// Every process in the cgroup and its child cgroups, sorted. On v1 this is
    /// read from the pids (else memory) hierarchy. A cgroup that no longer
    /// exists has none.
    pub fn pids(&self) -> Result<Vec<i32>> {
        let dir = self
            .paths
            .v1("pids")
            .or_else(|| self.paths.v1("memory"))
            .or(self.paths.unified.as_deref())
            .or_else(|| self.paths.dirs().first().copied());
        match dir {
            Some(dir) => files::collect_pids(dir),
            None => Ok(Vec::new()),
        }
    }

    /// How many processes the kernel's OOM killer has killed in this cgroup
    /// (v2 memory.events, v1 memory.oom_control). 0 when the cgroup has no
    /// memory controller, since then no memory limit applied.
    pub fn oom_kills(&self) -> Result<u64> {
        match (self.paths.layout, &self.paths.unified) {
            (Layout::Unified, Some(dir)) => v2::oom_kills(dir),
            _ => self.paths.v1("memory").map_or(Ok(0), v1::oom_kills),
        }
    }

    /// Applies every limit that `resources` sets; unset ones are left alone.
    pub fn apply(&self, resources: &Resources) -> Result<()> {
        if let Some(bytes) = resources.memory {
            self.set_memory_limit(bytes)?;
        }
        if let Some(n) = resources.pids {
            self.set_pids_limit(n)?;
        }
        Ok(())
    }

    /// v2 memory.max (swap left alone); v1 memory.limit_in_bytes and, with swap
    /// accounting, memory.memsw.limit_in_bytes to the same value.
    pub fn set_memory_limit(&self, bytes: u64) -> Result<()> {
        match self.limit_dir("memory")? {
            (dir, true) => v2::set_memory_limit(dir, bytes),
            (dir, false) => v1::set_memory_limit(dir, bytes),
        }
        .with_context(|| format!("set memory limit of cgroup {}", self.relative_path()))
    }

    /// pids.max; `n <= 0` lifts the limit.
    pub fn set_pids_limit(&self, n: i64) -> Result<()> {
        let max = u64::try_from(n).ok().filter(|&n| n > 0);
        match self.limit_dir("pids")? {
            (dir, true) => v2::set_pids_limit(dir, max),
            (dir, false) => v1::set_pids_limit(dir, max),
        }
        .with_context(|| format!("set pids limit of cgroup {}", self.relative_path()))
    }

    /// The directory holding `controller`'s files, and whether it is v2.
    fn limit_dir(&self, controller: &str) -> Result<(&Path, bool)> {
        if let (Layout::Unified, Some(dir)) = (self.paths.layout, &self.paths.unified) {
            return Ok((dir, true));
        }
        match self.paths.v1(controller) {
            Some(dir) => Ok((dir, false)),
            None => bail!(
                "cgroup {} has no {controller} controller (it is not mounted)",
                self.relative_path()
            ),
        }
    }

    /// Stops every process in the cgroup (v1 freezer, else v2 cgroup.freeze)
    /// and returns once the kernel reports them frozen.
    pub fn freeze(&self) -> Result<()> {
        match self.freezer()? {
            (dir, false) => v1::freeze(dir),
            (dir, true) => v2::freeze(dir),
        }
    }

    pub fn thaw(&self) -> Result<()> {
        match self.freezer()? {
            (dir, false) => v1::thaw(dir),
            (dir, true) => v2::thaw(dir),
        }
    }

    /// The directory whose freezer to use, and whether it is v2.
    fn freezer(&self) -> Result<(&Path, bool)> {
        if let Some(dir) = self.paths.v1("freezer") {
            return Ok((dir, false));
        }
        match &self.paths.unified {
            Some(dir) => Ok((dir, true)),
            None => bail!("cgroup {} has no freezer (not mounted)", self.relative_path()),
        }
    }

    /// SIGKILLs every process in the cgroup and waits until it is empty. Uses
    /// cgroup.kill where the kernel has it (one atomic write, no race with
    /// forks); otherwise freezes the cgroup when it can (so nothing forks or
    /// exits between reading the pids and signalling them), signals each pid,
    /// thaws, and repeats until no process is left.
    pub fn kill_all(&self) -> Result<()> {
        let mut used_cgroup_kill = false;
        if let Some(dir) = &self.paths.unified {
            used_cgroup_kill = v2::kill(dir).with_context(|| format!("kill cgroup {}", self.relative_path()))?;
        }
        let deadline = Instant::now() + KILL_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            let pids = self.pids()?;
            if pids.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!(
                    "processes {pids:?} are still in cgroup {} after SIGKILL",
                    self.relative_path()
                );
            }
            // A process killed through cgroup.kill can take a moment to leave;
            // signal by hand only when it is missing or not enough.
            if !used_cgroup_kill || pause >= Duration::from_millis(64) {
                self.signal_each(Signal::SIGKILL)?;
            }
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_millis(100));
        }
    }

    fn signal_each(&self, signal: Signal) -> Result<()> {
        // Best effort: a cgroup whose freezer is missing or stuck is still
        // signalled, only with a race against forks.
        let frozen = self.freeze().is_ok();
        let mut result = Ok(());
        for pid in self.pids()? {
            // Never 0 or negative: kill(2) would take those as process groups.
            if pid <= 0 {
                continue;
            }
            match kill(Pid::from_raw(pid), signal) {
                Ok(()) | Err(nix::errno::Errno::ESRCH) => {}
                Err(e) => {
                    result = Err(anyhow::Error::new(e).context(format!(
                        "send {signal} to process {pid} of cgroup {}",
                        self.relative_path()
                    )));
                }
            }
        }
        if frozen {
            self.thaw()?;
        }
        result
    }

    /// Removes the cgroup's directory in every hierarchy, with any child
    /// cgroups the container made. rmdir fails with EBUSY while processes
    /// remain, so this retries for about a second: call [`Cgroup::kill_all`]
    /// first. Directories already gone count as removed, so a second remove,
    /// or one after a crash half-way, succeeds.
    pub fn remove(&self) -> Result<()> {
        let deadline = Instant::now() + REMOVE_TIMEOUT;
        for dir in self.paths.dirs() {
            files::remove_tree(dir, deadline)?;
        }
        Ok(())
    }

    /// The cgroup's path relative to its hierarchy root, e.g. "/casco/<id>",
    /// for `info` and `inspect`.
    pub fn relative_path(&self) -> String {
        self.paths.relative.clone()
    }
}

#[cfg(test)]
mod tests;
