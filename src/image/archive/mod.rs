//! `save` and `load`: images to and from archives that other engines read
//! and write. Three formats:
//!
//! - **docker-archive**, what `docker save`, `podman save` and skopeo's
//!   `docker-archive:` write: a tar holding `manifest.json`
//!   (`[{"Config": "<hex>.json", "RepoTags": [...], "Layers": ["<hex>.tar", ...]}]`),
//!   the configs, and every layer as an uncompressed tar named after its diff
//!   ID. Layers are decompressed on the way out, whatever their compression
//!   in the store, so `docker load` reads them (it takes no zstd).
//! - **oci-archive** and **oci-dir**: an OCI image layout (`oci-layout`,
//!   `index.json`, `blobs/sha256/<hex>`) holding the stored manifest, config
//!   and layer blobs byte for byte, so every digest survives.
//!
//! What podman 4.3.1 and skopeo 1.9 write, as seen on this machine:
//! - `podman save` (docker-archive) names layers `<diff-id-hex>.tar` and the
//!   config `<config-hex>.json`, every entry mode 0444, uid 0, mtime 0. It
//!   also writes a legacy (docker 1.9) directory per layer, `<v1-id>/` with
//!   `VERSION` ("1.0"), `json` and `layer.tar`, a symlink to `../<diff-id-hex>.tar`,
//!   and `repositories` (`{"repo": {"tag": "<v1-id of the top layer>"}}`).
//!   RepoTags are full names ("localhost/x:1", "docker.io/library/alpine:3",
//!   never shortened); an image saved by ID has `"RepoTags": []`. Without
//!   `--multi-image-archive`, podman 4.3.1 merges the tags of several images
//!   into the first image's entry (a bug): casco always writes one entry per
//!   image, as docker does.
//! - skopeo's `docker-archive:f.tar:foo/bar:v6` writes `docker.io/foo/bar:v6`;
//!   `docker save` writes `foo/bar:v6` and `x:tag` for docker.io/library/x.
//!   Both podman and docker read a name without a domain as docker.io's (and a
//!   one-component path as `library/`'s).
//! - `podman save --format oci-archive|oci-dir` puts the full name in the
//!   `org.opencontainers.image.ref.name` annotation ("localhost/x:1"), recompresses
//!   layers with gzip, and writes only the first image when given several.
//!   skopeo's `oci:DIR:v5` puts just "v5" there. `podman load` reads that
//!   annotation as a local name: "v5" becomes `localhost/v5:latest`,
//!   "foo/bar:v6" `localhost/foo/bar:v6`; casco does the same.
//! - casco writes every image it is given into one OCI layout (one index
//!   entry per name). `podman load` 4.3.1 refuses a layout holding more than
//!   one image ("more than one image in oci, choose an image"); skopeo takes
//!   one with `oci-archive:FILE:NAME`. A one-image oci-archive loads in podman.
//! - `podman load` prints `Loaded image: NAME` per name in archive order, and
//!   `Loaded image: sha256:<id>` for an image without names.

mod load;
mod save;
mod spool;

#[cfg(test)]
mod tests;

use std::io::Write;
use std::path::PathBuf;

use anyhow::{Result, bail};

pub use load::{load, load_dir};
pub use save::save;

/// Media types and file names of the formats; kept here rather than shared
/// with the registry code so that the two can change independently.
pub(crate) mod media {
    pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
    pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
    pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
    pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
    /// The annotation an OCI layout names an image by.
    pub const REF_NAME: &str = "org.opencontainers.image.ref.name";
    /// containerd's (and docker 25's) full-name annotation in an OCI layout.
    pub const CONTAINERD_NAME: &str = "io.containerd.image.name";
    pub const OCI_LAYOUT_FILE: &str = "oci-layout";
    pub const OCI_LAYOUT_VERSION: &str = "1.0.0";
}

/// Manifests, configs, `index.json` and `manifest.json` larger than this are
/// refused before they are read (a real one is a few KiB).
const MAX_JSON: u64 = 4 << 20;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DockerArchive,
    OciArchive,
    OciDir,
}

impl Format {
    pub fn parse(s: &str) -> Result<Format> {
        match s {
            "docker-archive" => Ok(Format::DockerArchive),
            "oci-archive" => Ok(Format::OciArchive),
            "oci-dir" => Ok(Format::OciDir),
            _ => bail!("unknown archive format {s:?}: use docker-archive, oci-archive or oci-dir"),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Format::DockerArchive => "docker-archive",
            Format::OciArchive => "oci-archive",
            Format::OciDir => "oci-dir",
        }
    }
}

/// Where `save` writes.
pub enum SaveTo {
    /// A file (archive formats: written beside it and renamed into place, so a
    /// failed save leaves nothing; a device or pipe is written directly), or a
    /// directory that is absent or empty (oci-dir).
    Path(PathBuf),
    /// A stream, such as standard output (archive formats only).
    Writer(Box<dyn Write>),
}
