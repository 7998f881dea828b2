//! The store: where casco keeps images, layers and containers for one user.
//!
//! ```text
//! ROOT/                          (/var/lib/casco, or ~/.local/share/casco rootless)
//!   storage.json                 driver chosen when the store was made
//!   blobs/sha256/<hex>           content-addressed blobs: manifests, configs, layer tars
//!   layers/<chain-id-hex>/       one unpacked layer, shared by every user of it
//!       diff/  layer.json
//!   images/<id>.json             image records (id = config digest hex)
//!   images/<id>.lock             held shared while a container is created from it
//!   image-names/<escaped ref>    symlink → image id: the names index
//!   containers/<id>/             config.json, state.json, lock, userdata
//!   container-names/<name>       symlink → container id
//!   tmp/                         staging for layers and imports (same filesystem)
//! RUNROOT/                       (/run/casco, or $XDG_RUNTIME_DIR/casco): sockets, rootfs mount points
//! ```
//!
//! There is no global lock and no database file: every record has its own lock
//! and is replaced atomically; names are symlinks created with link(2)'s
//! all-or-nothing semantics.

pub mod lock;
pub mod record;

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};

use crate::cli::GlobalArgs;
use record::Durability;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Driver {
    /// overlayfs over shared layer directories.
    Overlay,
    /// A private copy of every layer for each container.
    Vfs,
}

impl Driver {
    pub fn parse(s: &str) -> Result<Driver> {
        match s {
            "overlay" | "overlay2" => Ok(Driver::Overlay),
            "vfs" => Ok(Driver::Vfs),
            _ => bail!("unknown storage driver {s:?}: use overlay or vfs"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Driver::Overlay => "overlay",
            Driver::Vfs => "vfs",
        }
    }
}

/// What a store records about itself when it is made.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StorageConfig {
    pub driver: Driver,
    /// Why overlay was not chosen, when it was not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fallback_reason: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Store {
    pub root: PathBuf,
    pub runroot: PathBuf,
    /// casco runs as an ordinary user: containers get a user namespace.
    pub rootless: bool,
    pub uid: u32,
    pub gid: u32,
    pub config: StorageConfig,
    mapping: std::sync::OnceLock<crate::namespaces::userns::IdMapping>,
}

static OWNER_PID: OnceLock<u32> = OnceLock::new();

/// The PID that temporary names in the store carry: the casco process that
/// owns the work. A helper child (rootless work in a user namespace) keeps
/// its parent's value, so a temp dir it makes is not swept as stale when it
/// exits while its parent still has to commit it.
pub fn owner_pid() -> u32 {
    *OWNER_PID.get_or_init(std::process::id)
}

impl Store {
    /// Opens (making on first use) the store named by the global flags.
    pub fn open(global: &GlobalArgs) -> Result<Store> {
        owner_pid();
        let uid = crate::sys::geteuid();
        let gid = crate::sys::getegid();
        let rootless = uid != 0;
        let root = match &global.root {
            Some(r) => absolute(r)?,
            None => default_root(rootless)?,
        };
        let runroot = match &global.runroot {
            Some(r) => absolute(r)?,
            None => default_runroot(rootless, uid)?,
        };
        let config_path = root.join("storage.json");
        let config = match record::read_json::<StorageConfig>(&config_path)? {
            Some(c) => c,
            None => Self::initialise(&root, global.storage_driver.as_deref(), rootless)?,
        };
        if let Some(d) = &global.storage_driver {
            let want = Driver::parse(d)?;
            if want != config.driver {
                bail!(
                    "the store at {} uses the {} driver, not {}: use another --root, or `casco system reset` first",
                    root.display(),
                    config.driver.name(),
                    want.name()
                );
            }
        }
        let store = Store {
            root,
            runroot,
            rootless,
            uid,
            gid,
            config,
            mapping: Default::default(),
        };
        fs::create_dir_all(&store.runroot).with_context(|| format!("create run root {}", store.runroot.display()))?;
        Ok(store)
    }

    /// A store whose settings are already known (a re-exec'd monitor).
    pub fn from_parts(root: PathBuf, runroot: PathBuf, rootless: bool, config: StorageConfig) -> Store {
        Store {
            root,
            runroot,
            rootless,
            uid: crate::sys::geteuid(),
            gid: crate::sys::getegid(),
            config,
            mapping: Default::default(),
        }
    }

    /// Makes the directory tree and chooses the storage driver, once.
    fn initialise(root: &Path, driver: Option<&str>, rootless: bool) -> Result<StorageConfig> {
        for d in [
            "blobs/sha256",
            "layers",
            "images",
            "image-names",
            "containers",
            "container-names",
            "tmp",
        ] {
            let p = root.join(d);
            fs::create_dir_all(&p).with_context(|| format!("create {}", p.display()))?;
        }
        let config = match driver {
            Some(d) => StorageConfig {
                driver: Driver::parse(d)?,
                fallback_reason: None,
            },
            None => match crate::layers::overlay::probe(&root.join("tmp"), rootless) {
                Ok(()) => StorageConfig {
                    driver: Driver::Overlay,
                    fallback_reason: None,
                },
                Err(e) => StorageConfig {
                    driver: Driver::Vfs,
                    fallback_reason: Some(format!("{e:#}")),
                },
            },
        };
        let path = root.join("storage.json");
        // Two first uses at once both probe; the first rename wins and the second
        // reads back what won, so every process agrees on the driver.
        let tmp = root.join(format!("{}storage-{}.json", record::TMP_PREFIX, std::process::id()));
        record::write_json(&tmp, &config, Durability::Durable)?;
        match fs::hard_link(&tmp, &path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
        let _ = fs::remove_file(&tmp);
        record::read_json(&path)?.with_context(|| format!("{} vanished", path.display()))
    }

    /// The user-namespace mapping rootless containers and helpers use (read
    /// from /etc/subuid and /etc/subgid once; warns once when it is a single ID).
    pub fn id_mapping(&self) -> &crate::namespaces::userns::IdMapping {
        self.mapping.get_or_init(|| {
            let (m, warning) = crate::namespaces::userns::default_mapping(self.uid, self.gid);
            if let Some(w) = warning {
                crate::output::warn(&w);
            }
            m
        })
    }

    /// Runs `f` where store files can be written with any owner: directly as
    /// root, or rootless as root of a user namespace with the store's mapping
    /// (a child process; `f`'s result travels back as JSON).
    pub fn in_context<T, F>(&self, f: F) -> Result<T>
    where
        T: Serialize + serde::de::DeserializeOwned,
        F: FnOnce() -> Result<T>,
    {
        if self.rootless {
            crate::namespaces::userns::run_in_userns(self.id_mapping(), f)
        } else {
            f()
        }
    }

    pub fn driver(&self) -> Driver {
        self.config.driver
    }

    pub fn blobs_dir(&self) -> PathBuf {
        self.root.join("blobs/sha256")
    }
    pub fn layers_dir(&self) -> PathBuf {
        self.root.join("layers")
    }
    pub fn images_dir(&self) -> PathBuf {
        self.root.join("images")
    }
    pub fn image_names_dir(&self) -> PathBuf {
        self.root.join("image-names")
    }
    pub fn containers_dir(&self) -> PathBuf {
        self.root.join("containers")
    }
    pub fn container_names_dir(&self) -> PathBuf {
        self.root.join("container-names")
    }
    pub fn tmp_dir(&self) -> PathBuf {
        self.root.join("tmp")
    }
    pub fn container_dir(&self, id: &str) -> PathBuf {
        self.containers_dir().join(id)
    }
    /// Per-container directory in the run root (attach socket, rootfs mount point).
    pub fn container_run_dir(&self, id: &str) -> PathBuf {
        self.runroot.join("containers").join(id)
    }
}

fn absolute(p: &Path) -> Result<PathBuf> {
    if p.is_absolute() {
        Ok(p.to_path_buf())
    } else {
        Ok(std::env::current_dir().context("current directory")?.join(p))
    }
}

fn default_root(rootless: bool) -> Result<PathBuf> {
    if !rootless {
        return Ok(PathBuf::from("/var/lib/casco"));
    }
    if let Some(d) = std::env::var_os("XDG_DATA_HOME").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("casco"));
    }
    match std::env::var_os("HOME").filter(|d| !d.is_empty()) {
        Some(h) => Ok(PathBuf::from(h).join(".local/share/casco")),
        None => bail!("neither XDG_DATA_HOME nor HOME is set: pass --root"),
    }
}

fn default_runroot(rootless: bool, uid: u32) -> Result<PathBuf> {
    if !rootless {
        return Ok(PathBuf::from("/run/casco"));
    }
    if let Some(d) = std::env::var_os("XDG_RUNTIME_DIR").filter(|d| !d.is_empty()) {
        return Ok(PathBuf::from(d).join("casco"));
    }
    // podman falls back to /tmp/podman-run-UID; do the same, owner-only.
    let p = PathBuf::from(format!("/tmp/casco-run-{uid}"));
    Ok(p)
}
