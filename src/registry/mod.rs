//! Talking to image registries: registries.conf, credentials, TLS settings,
//! the distribution protocol client and manifest parsing. Pull and push
//! orchestration lives in `crate::image::{pull, push}`; this module knows
//! nothing about the store.
//!
//! The types here are shared by the submodules.

pub mod auth;
pub mod base64;
pub mod config;

use std::fmt;

/// A user name and a secret (a password or, for a credential helper that
/// returns `<token>` as the user, an identity token).
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    pub username: String,
    pub password: String,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// One place an image can be fetched from or pushed to: a registry (as
/// named in references and registries.conf: `docker.io`, `localhost:5000`),
/// the repository path there, and whether TLS may be skipped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// host[:port] as written in the reference or registries.conf; the
    /// key for credentials and certs.d. docker.io's API host differs
    /// (see [`Endpoint::api_host`]).
    pub registry: String,
    /// The repository path, e.g. `library/busybox`.
    pub repository: String,
    /// registries.conf `insecure = true`: plain HTTP and unverified TLS allowed.
    pub insecure: bool,
}

impl Endpoint {
    /// The host the HTTP requests go to: docker.io's API lives on
    /// registry-1.docker.io.
    pub fn api_host(&self) -> &str {
        if self.registry == "docker.io" {
            "registry-1.docker.io"
        } else {
            &self.registry
        }
    }
}

pub mod certs;
pub mod client;
pub mod error;
pub mod manifest;

pub use error::RegistryError;
