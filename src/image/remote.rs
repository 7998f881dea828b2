//! Where an image reference leads: registries.conf (search registries,
//! aliases, mirrors, blocked and insecure registries), the per-call flags
//! (`--tls-verify`, `--cert-dir`, `--creds`, `--authfile`) and the stored
//! credentials, turned into a ready [`Client`] for a pull or a push.

use std::path::PathBuf;

use anyhow::{Result, bail};

use crate::cli::RegistryOptions;
use crate::image::reference::Reference;
use crate::registry::certs::TlsSettings;
use crate::registry::client::{Client, ClientOptions};
use crate::registry::config::RegistriesConf;
use crate::registry::{Credentials, Endpoint, RegistryError, auth};

/// Uploads above this size go in chunks.
const CHUNK_SIZE: u64 = 16 << 20;

/// The registry settings of one casco invocation.
pub struct Remote {
    conf: RegistriesConf,
    tls_verify: Option<bool>,
    cert_dir: Option<PathBuf>,
    creds: Option<Credentials>,
    authfile: Option<PathBuf>,
    rootless: bool,
}

impl Remote {
    /// Reads registries.conf and takes the call's flags.
    pub fn new(opts: &RegistryOptions, rootless: bool) -> Result<Remote> {
        let creds = opts.creds.as_deref().map(auth::parse_creds).transpose()?;
        Ok(Remote {
            conf: RegistriesConf::load()?,
            tls_verify: opts.tls_verify,
            cert_dir: opts.cert_dir.clone(),
            creds,
            authfile: opts.authfile.clone(),
            rootless,
        })
    }

    /// The fully qualified references a name given by the user may mean, in
    /// the order to try them (aliases, then each unqualified-search
    /// registry).
    pub fn candidates(&self, name: &str) -> Result<Vec<Reference>> {
        let name = name.strip_prefix("docker://").unwrap_or(name);
        self.conf.candidates(name)
    }

    /// Runs `f` on each candidate of `name` in turn (see [`Remote::candidates`])
    /// until one is not "not found"; returns its result, or the last "not
    /// found".
    pub fn first_found<T>(&self, name: &str, mut f: impl FnMut(&Reference) -> Result<T>) -> Result<T> {
        let mut last = None;
        for cand in self.candidates(name)? {
            match f(&cand) {
                Err(e) if RegistryError::is_not_found(&e) => last = Some(e),
                r => return r,
            }
        }
        Err(last.unwrap_or_else(|| anyhow::anyhow!("{name}: no registry to look in")))
    }

    /// A client for pulling `r`: the first mirror that answers, else the
    /// registry itself.
    pub fn client_for_pull(&self, r: &Reference) -> Result<Client> {
        let endpoints = self.conf.endpoints(r)?;
        let Some((last, mirrors)) = endpoints.split_last() else {
            bail!("{r}: no registry endpoint to pull from");
        };
        for ep in mirrors {
            match self.client(ep.clone()).and_then(|c| c.ping().map(|_| c)) {
                Ok(c) => return Ok(c),
                Err(e) => crate::output::debug(|| format!("mirror {} for {r} unusable: {e:#}", ep.registry)),
            }
        }
        self.client(last.clone())
    }

    /// A client for pushing to `r`: the registry itself, never a mirror.
    pub fn client_for_push(&self, r: &Reference) -> Result<Client> {
        self.client(self.conf.push_endpoint(r)?)
    }

    /// A client for a registry itself (login): no repository.
    pub fn client_for_registry(&self, registry: &str) -> Result<Client> {
        let ep = Endpoint {
            registry: registry.to_string(),
            repository: String::new(),
            insecure: self.conf.is_insecure(registry),
        };
        self.client(ep)
    }

    /// Builds the client of one endpoint, with the TLS settings and the
    /// credentials that apply to its registry.
    pub fn client(&self, ep: Endpoint) -> Result<Client> {
        let verify = self.tls_verify.unwrap_or(!ep.insecure);
        let tls = TlsSettings::for_registry(&ep.registry, self.cert_dir.as_deref(), verify, self.rootless)?;
        let creds = match &self.creds {
            Some(c) => Some(c.clone()),
            None => auth::credentials_for(&ep.registry, self.authfile.as_deref())?,
        };
        let insecure = !verify;
        Client::new(
            ep,
            ClientOptions {
                tls,
                creds,
                insecure,
                chunk_size: CHUNK_SIZE,
            },
        )
    }

    /// The registry `login` uses when none is named: the first
    /// unqualified-search registry.
    pub fn default_registry(&self) -> Option<String> {
        self.conf.search.first().cloned()
    }

    /// Overrides the credentials (login checks the ones it was given).
    pub fn with_creds(mut self, creds: Credentials) -> Remote {
        self.creds = Some(creds);
        self
    }
}
