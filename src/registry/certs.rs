//! TLS settings for one registry: whether certificates are verified, extra
//! CA roots and a client certificate, read the way podman reads them.
//!
//! The directory is `--cert-dir DIR` when given, else the first of
//! `$XDG_CONFIG_HOME/containers/certs.d/HOST[:PORT]` (rootless only),
//! `/etc/containers/certs.d/HOST[:PORT]` and `/etc/docker/certs.d/HOST[:PORT]`
//! that exists. In it, every `*.crt` holds CA certificates, and every
//! `NAME.cert` is a client certificate whose key is `NAME.key`.
//!
//! ureq's rustls either trusts the bundled webpki roots or a list we give it,
//! not both: when a registry has extra CAs, the list is the system bundle
//! (/etc/ssl/certs/ca-certificates.crt or the like) plus those CAs, as Go's
//! `x509.SystemCertPool` plus `AppendCertsFromPEM` gives podman.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use ureq::tls::{Certificate, ClientCert, PemItem, PrivateKey, RootCerts, TlsConfig};

/// System CA bundles, in the order distributions put them.
const SYSTEM_BUNDLES: &[&str] = &[
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];

#[derive(Debug, Clone)]
pub struct TlsSettings {
    /// Verify the server's certificate (false: `--tls-verify=false`).
    pub verify: bool,
    /// Extra CA roots (`*.crt`).
    pub ca_certs: Vec<Certificate<'static>>,
    /// A client certificate chain and its key (`*.cert` + `*.key`).
    pub client_cert: Option<ClientCert>,
    /// The directory they came from, if any (for messages).
    pub dir: Option<PathBuf>,
}

impl Default for TlsSettings {
    /// Verified TLS with the default roots and no client certificate.
    fn default() -> TlsSettings {
        TlsSettings {
            verify: true,
            ca_certs: Vec::new(),
            client_cert: None,
            dir: None,
        }
    }
}

impl TlsSettings {
    /// The settings for `registry` (host[:port] as in references): from
    /// `cert_dir` when given, else from the certs.d directories.
    pub fn for_registry(registry: &str, cert_dir: Option<&Path>, verify: bool, rootless: bool) -> Result<TlsSettings> {
        let mut bases = Vec::new();
        if rootless {
            let config = std::env::var_os("XDG_CONFIG_HOME")
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")));
            if let Some(c) = config {
                bases.push(c.join("containers/certs.d"));
            }
        }
        bases.push(PathBuf::from("/etc/containers/certs.d"));
        bases.push(PathBuf::from("/etc/docker/certs.d"));
        Self::for_registry_in(registry, cert_dir, verify, &bases)
    }

    /// [`TlsSettings::for_registry`] with the certs.d directories given.
    pub fn for_registry_in(
        registry: &str,
        cert_dir: Option<&Path>,
        verify: bool,
        bases: &[PathBuf],
    ) -> Result<TlsSettings> {
        let dir = match cert_dir {
            Some(d) => Some(d.to_path_buf()),
            None => {
                if registry.is_empty() || registry.contains('/') || registry.starts_with('.') {
                    bail!("invalid registry name {registry:?} for a certs.d lookup");
                }
                bases.iter().map(|b| b.join(registry)).find(|d| d.is_dir())
            }
        };
        let mut s = TlsSettings {
            verify,
            ..TlsSettings::default()
        };
        if let Some(d) = dir {
            s.load_dir(&d)?;
            s.dir = Some(d);
        }
        Ok(s)
    }

    /// Adds the CAs and the client certificate of `dir` (which must exist
    /// when named by `--cert-dir`).
    fn load_dir(&mut self, dir: &Path) -> Result<()> {
        let entries = fs::read_dir(dir).with_context(|| format!("read certificate directory {}", dir.display()))?;
        let mut names: Vec<String> = Vec::new();
        for e in entries {
            let e = e.with_context(|| format!("read certificate directory {}", dir.display()))?;
            if let Some(n) = e.file_name().to_str() {
                names.push(n.to_string());
            }
        }
        names.sort();
        for n in &names {
            let path = dir.join(n);
            if n.ends_with(".crt") {
                let pem = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                let certs = certs_from_pem(&pem).with_context(|| format!("CA certificates in {}", path.display()))?;
                self.ca_certs.extend(certs);
            } else if let Some(stem) = n.strip_suffix(".cert") {
                let key_name = format!("{stem}.key");
                if !names.contains(&key_name) {
                    bail!("missing key {key_name} for client certificate {}", path.display());
                }
                if self.client_cert.is_some() {
                    bail!("more than one client certificate in {}", dir.display());
                }
                let pem = fs::read(&path).with_context(|| format!("read {}", path.display()))?;
                let chain = certs_from_pem(&pem).with_context(|| format!("client certificate {}", path.display()))?;
                let key_path = dir.join(&key_name);
                let key_pem = fs::read(&key_path).with_context(|| format!("read {}", key_path.display()))?;
                let key = PrivateKey::from_pem(&key_pem)
                    .map_err(|e| anyhow::anyhow!("{e}"))
                    .with_context(|| format!("private key {}", key_path.display()))?;
                self.client_cert = Some(ClientCert::new_with_certs(&chain, key));
            } else if let Some(stem) = n.strip_suffix(".key")
                && !names.contains(&format!("{stem}.cert"))
            {
                bail!("missing client certificate {stem}.cert for key {}", path.display());
            }
        }
        Ok(())
    }

    /// The ureq TLS configuration these settings describe.
    pub fn tls_config(&self) -> Result<TlsConfig> {
        let mut b = TlsConfig::builder()
            .disable_verification(!self.verify)
            .client_cert(self.client_cert.clone());
        if !self.ca_certs.is_empty() {
            let mut roots = system_roots();
            roots.extend(self.ca_certs.iter().cloned());
            b = b.root_certs(RootCerts::new_with_certs(&roots));
        }
        Ok(b.build())
    }
}

/// Every certificate in a PEM file; none is an error.
fn certs_from_pem(pem: &[u8]) -> Result<Vec<Certificate<'static>>> {
    let mut out = Vec::new();
    for item in ureq::tls::parse_pem(pem) {
        match item.map_err(|e| anyhow::anyhow!("{e}"))? {
            PemItem::Certificate(c) => out.push(c),
            _ => continue,
        }
    }
    if out.is_empty() {
        bail!("no PEM certificate found");
    }
    Ok(out)
}

/// The system's CA bundle (empty when there is none).
fn system_roots() -> Vec<Certificate<'static>> {
    for p in SYSTEM_BUNDLES {
        if let Ok(pem) = fs::read(p)
            && let Ok(certs) = certs_from_pem(&pem)
        {
            return certs;
        }
    }
    Vec::new()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::process::Command;

    fn openssl(dir: &Path, args: &[&str]) {
        let out = Command::new("openssl")
            .args(args)
            .current_dir(dir)
            .output()
            .expect("these tests need the openssl command (package openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// A CA (ca.crt, ca.key), a server certificate for 127.0.0.1 and
    /// localhost signed by it (server.crt, server.key) and a client
    /// certificate (client.cert, client.key), in `dir`.
    pub(crate) fn make_certs(dir: &Path) {
        openssl(
            dir,
            &[
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:prime256v1",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=casco test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ],
        );
        fs::write(
            dir.join("ext.cnf"),
            "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        fs::write(dir.join("client.cnf"), "extendedKeyUsage=clientAuth\n").unwrap();
        for (name, subj, ext) in [
            ("server", "/CN=localhost", "ext.cnf"),
            ("client", "/CN=casco client", "client.cnf"),
        ] {
            openssl(
                dir,
                &[
                    "req",
                    "-newkey",
                    "ec",
                    "-pkeyopt",
                    "ec_paramgen_curve:prime256v1",
                    "-nodes",
                    "-subj",
                    subj,
                    "-keyout",
                    &format!("{name}.key"),
                    "-out",
                    &format!("{name}.csr"),
                ],
            );
            openssl(
                dir,
                &[
                    "x509",
                    "-req",
                    "-in",
                    &format!("{name}.csr"),
                    "-CA",
                    "ca.crt",
                    "-CAkey",
                    "ca.key",
                    "-CAcreateserial",
                    "-days",
                    "2",
                    "-extfile",
                    ext,
                    "-out",
                    &format!("{name}.crt"),
                ],
            );
        }
        fs::rename(dir.join("client.crt"), dir.join("client.cert")).unwrap();
    }

    #[test]
    fn certs_dir_gives_cas_and_client_cert() {
        let made = tempfile::tempdir().unwrap();
        make_certs(made.path());
        let base = tempfile::tempdir().unwrap();
        let host = base.path().join("localhost:5000");
        fs::create_dir(&host).unwrap();
        fs::copy(made.path().join("ca.crt"), host.join("ca.crt")).unwrap();
        fs::copy(made.path().join("client.cert"), host.join("client.cert")).unwrap();
        fs::copy(made.path().join("client.key"), host.join("client.key")).unwrap();
        fs::write(host.join("README"), "ignored").unwrap();

        let bases = [base.path().join("absent"), base.path().to_path_buf()];
        let s = TlsSettings::for_registry_in("localhost:5000", None, true, &bases).unwrap();
        assert_eq!(s.dir.as_deref(), Some(host.as_path()));
        assert_eq!(s.ca_certs.len(), 1);
        let cc = s.client_cert.as_ref().expect("client certificate");
        assert_eq!(cc.certs().len(), 1);
        let cfg = s.tls_config().unwrap();
        assert!(!cfg.disable_verification());
        assert!(cfg.client_cert().is_some());
        match cfg.root_certs() {
            // The system bundle plus ours, ours last.
            RootCerts::Specific(list) => assert_eq!(list.last().unwrap().der(), s.ca_certs[0].der()),
            other => panic!("expected specific roots, got {other:?}"),
        }

        // Another host has no directory: defaults.
        let none = TlsSettings::for_registry_in("other:5000", None, false, &bases).unwrap();
        assert!(none.dir.is_none() && none.ca_certs.is_empty() && none.client_cert.is_none());
        let cfg = none.tls_config().unwrap();
        assert!(cfg.disable_verification());
        assert!(matches!(cfg.root_certs(), RootCerts::WebPki));

        // --cert-dir wins over certs.d.
        let only_ca = tempfile::tempdir().unwrap();
        fs::copy(made.path().join("ca.crt"), only_ca.path().join("extra.crt")).unwrap();
        let s = TlsSettings::for_registry_in("localhost:5000", Some(only_ca.path()), true, &bases).unwrap();
        assert_eq!(s.ca_certs.len(), 1);
        assert!(s.client_cert.is_none());
    }

    #[test]
    fn broken_cert_dirs_are_errors() {
        let made = tempfile::tempdir().unwrap();
        make_certs(made.path());
        let d = tempfile::tempdir().unwrap();
        // A key without its certificate.
        fs::copy(made.path().join("client.key"), d.path().join("client.key")).unwrap();
        let err = TlsSettings::for_registry_in("h", Some(d.path()), true, &[]).unwrap_err();
        assert!(
            format!("{err:#}").contains("missing client certificate client.cert"),
            "{err:#}"
        );
        // A certificate without its key.
        fs::remove_file(d.path().join("client.key")).unwrap();
        fs::copy(made.path().join("client.cert"), d.path().join("client.cert")).unwrap();
        let err = TlsSettings::for_registry_in("h", Some(d.path()), true, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("missing key client.key"), "{err:#}");
        // A .crt that holds no certificate.
        let e = tempfile::tempdir().unwrap();
        fs::write(e.path().join("ca.crt"), "garbage").unwrap();
        let err = TlsSettings::for_registry_in("h", Some(e.path()), true, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("ca.crt"), "{err:#}");
        // A --cert-dir that does not exist.
        let err = TlsSettings::for_registry_in("h", Some(&e.path().join("nope")), true, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("nope"), "{err:#}");
        // A registry name that would leave certs.d.
        assert!(TlsSettings::for_registry_in("../etc", None, true, &[d.path().to_path_buf()]).is_err());
    }
}
