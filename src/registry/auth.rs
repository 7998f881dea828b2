//! Registry credentials: auth.json files (podman's containers-auth.json(5),
//! also Docker's config.json) and docker-credential-* helpers.
//!
//! Where (see [`AuthPaths`]):
//! - written to `--authfile`, else `$REGISTRY_AUTH_FILE`, else
//!   `/run/containers/0/auth.json` for root, else
//!   `$XDG_RUNTIME_DIR/containers/auth.json`, else
//!   `/run/containers/UID/auth.json` (podman's defaults);
//! - read from that file, then `~/.config/containers/auth.json`
//!   ($XDG_CONFIG_HOME), then `$DOCKER_CONFIG/config.json` or
//!   `~/.docker/config.json`, the first file that knows the registry winning.
//!   An explicit auth file (flag or `$REGISTRY_AUTH_FILE`) is the only file
//!   read, as in podman.
//!
//! In each file, for a registry: `credHelpers[host]` first (a helper named
//! for that host), then `auths` (keys `host`, `host/namespace...`, or Docker's
//! `https://index.docker.io/v1/`; the most specific key that covers the
//! repository wins), then `credsStore` (the helper for every host). Writing
//! goes to a host's credHelper or the file's credsStore when one is set, else
//! into `auths` as `{"auth": base64(user:password)}`, keeping everything else
//! in the file. Files are written 0600, atomically (temp file, fsync, rename),
//! in directories created 0700.
//!
//! Helpers speak the docker-credential-helpers protocol: `get` and `erase`
//! read the server URL on stdin, `store` reads `{"ServerURL", "Username",
//! "Secret"}`; `get` prints that object; a missing entry is a failure whose
//! output says "credentials not found". A helper that returns the user
//! `<token>` hands back an identity token, kept as is in [`Credentials`]; an
//! `identitytoken` in auth.json is returned the same way.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::Credentials;
use super::base64;

/// The files and helper search path credentials come from.
/// [`AuthPaths::from_env`] fills it from the environment; tests fill it by hand.
#[derive(Debug, Clone, Default)]
pub struct AuthPaths {
    /// `--authfile` or `$REGISTRY_AUTH_FILE`: the only file read and written.
    pub authfile: Option<PathBuf>,
    /// Effective user ID (0 writes /run/containers/0/auth.json).
    pub euid: u32,
    /// `$XDG_RUNTIME_DIR`.
    pub runtime_dir: Option<PathBuf>,
    /// `$XDG_CONFIG_HOME`, else `$HOME/.config`.
    pub config_home: Option<PathBuf>,
    /// The directory of Docker's config.json: `$DOCKER_CONFIG`, else `$HOME/.docker`.
    pub docker_config: Option<PathBuf>,
    /// Where to look for `docker-credential-NAME` (`$PATH`).
    pub helper_dirs: Vec<PathBuf>,
}

impl AuthPaths {
    /// From the environment; `authfile` is `--authfile` (clap already folds in
    /// `$REGISTRY_AUTH_FILE`, which is read here too for library callers).
    pub fn from_env(authfile: Option<&Path>) -> AuthPaths {
        let env_path = |k: &str| std::env::var_os(k).filter(|v| !v.is_empty()).map(PathBuf::from);
        let home = env_path("HOME");
        AuthPaths {
            authfile: authfile
                .map(Path::to_path_buf)
                .or_else(|| env_path("REGISTRY_AUTH_FILE")),
            euid: crate::sys::geteuid(),
            runtime_dir: env_path("XDG_RUNTIME_DIR"),
            config_home: env_path("XDG_CONFIG_HOME").or_else(|| home.as_ref().map(|h| h.join(".config"))),
            docker_config: env_path("DOCKER_CONFIG").or_else(|| home.as_ref().map(|h| h.join(".docker"))),
            helper_dirs: std::env::var_os("PATH")
                .map(|p| std::env::split_paths(&p).collect())
                .unwrap_or_default(),
        }
    }

    /// The file `login` writes and `logout` edits.
    pub fn write_path(&self) -> PathBuf {
        if let Some(f) = &self.authfile {
            return f.clone();
        }
        if self.euid == 0 {
            return PathBuf::from("/run/containers/0/auth.json");
        }
        match &self.runtime_dir {
            Some(d) => d.join("containers/auth.json"),
            None => PathBuf::from(format!("/run/containers/{}/auth.json", self.euid)),
        }
    }

    /// The files read, in order.
    pub fn read_paths(&self) -> Vec<PathBuf> {
        let mut v = vec![self.write_path()];
        if self.authfile.is_some() {
            return v;
        }
        if let Some(c) = &self.config_home {
            v.push(c.join("containers/auth.json"));
        }
        if let Some(d) = &self.docker_config {
            v.push(d.join("config.json"));
        }
        v
    }
}

/// Credentials for `host` (or `host/repository`, to honour namespaced keys),
/// from the files and helpers of [`AuthPaths::from_env`]`(authfile)`.
pub fn credentials_for(host: &str, authfile: Option<&Path>) -> Result<Option<Credentials>> {
    AuthStore::new(AuthPaths::from_env(authfile)).credentials_for(host)
}

/// Stores credentials for `host` (`login`).
pub fn store(host: &str, creds: &Credentials, authfile: Option<&Path>) -> Result<()> {
    AuthStore::new(AuthPaths::from_env(authfile)).store(host, creds)
}

/// Removes the credentials for `host` from the write file (`logout`);
/// `Ok(false)` when there were none there.
pub fn erase(host: &str, authfile: Option<&Path>) -> Result<bool> {
    AuthStore::new(AuthPaths::from_env(authfile)).erase(host)
}

/// Removes every credential from the write file (`logout -a`).
pub fn erase_all(authfile: Option<&Path>) -> Result<()> {
    AuthStore::new(AuthPaths::from_env(authfile)).erase_all()
}

/// The user name stored for `host` (`login --get-login`).
pub fn stored_user(host: &str, authfile: Option<&Path>) -> Result<Option<String>> {
    AuthStore::new(AuthPaths::from_env(authfile)).stored_user(host)
}

/// The file `login` writes to.
pub fn auth_file_path(authfile: Option<&Path>) -> PathBuf {
    AuthPaths::from_env(authfile).write_path()
}

/// Parses `--creds USER:PASSWORD` (the password may hold ':'). The password
/// never appears in an error.
pub fn parse_creds(s: &str) -> Result<Credentials> {
    match s.split_once(':') {
        Some(("", _)) => bail!("--creds: the user name before ':' is empty"),
        Some((user, pass)) => Ok(Credentials {
            username: user.to_string(),
            password: pass.to_string(),
        }),
        None if s.is_empty() => bail!("--creds: give USER:PASSWORD"),
        None => bail!("--creds {s}: a password is needed (USER:PASSWORD); casco does not prompt for it"),
    }
}

/// The docker-credential-helpers message for a missing entry.
const NOT_FOUND: &str = "credentials not found";

/// Docker's own key for Docker Hub, which its helpers store under.
const DOCKER_HUB_LEGACY_KEY: &str = "https://index.docker.io/v1/";

#[derive(Serialize, Deserialize)]
struct HelperCreds {
    #[serde(rename = "ServerURL", default)]
    server_url: String,
    #[serde(rename = "Username", default)]
    username: String,
    #[serde(rename = "Secret", default)]
    secret: String,
}

/// Normalises an auth.json key or a registry name: no URL scheme (a URL key is
/// Docker's, which names only a host), no trailing '/', docker.io for Docker
/// Hub's other names.
fn normalize_key(key: &str) -> String {
    let key = key.trim();
    let (url, rest) = match key.strip_prefix("https://").or_else(|| key.strip_prefix("http://")) {
        Some(r) => (true, r),
        None => (false, key),
    };
    let rest = if url {
        rest.split('/').next().unwrap_or(rest)
    } else {
        rest.trim_end_matches('/')
    };
    let (host, path) = match rest.split_once('/') {
        Some((h, p)) => (h, Some(p)),
        None => (rest, None),
    };
    let host = match host {
        "index.docker.io" | "registry-1.docker.io" => "docker.io",
        h => h,
    };
    match path {
        Some(p) => format!("{host}/{p}"),
        None => host.to_string(),
    }
}

/// `host/a/b` → `["host/a/b", "host/a", "host"]`.
fn key_chain(query: &str) -> Vec<String> {
    let q = normalize_key(query);
    let mut v = vec![q.clone()];
    let mut cur = q.as_str();
    while let Some((head, _)) = cur.rsplit_once('/') {
        v.push(head.to_string());
        cur = head;
    }
    v
}

fn host_of(query: &str) -> String {
    let q = normalize_key(query);
    q.split('/').next().unwrap_or(&q).to_string()
}

fn read_doc(path: &Path) -> Result<Option<Map<String, Value>>> {
    let data = match fs::read(path) {
        Ok(d) => d,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("read {}", path.display())),
    };
    if data.iter().all(u8::is_ascii_whitespace) {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_slice(&data).with_context(|| format!("parse {}", path.display()))? {
        Value::Object(m) => Ok(Some(m)),
        _ => bail!("parse {}: not a JSON object", path.display()),
    }
}

/// Writes `doc` to `path`: 0600, temp file + fsync + rename, parents 0700.
fn write_doc(path: &Path, doc: &Map<String, Value>) -> Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("create directory {}", dir.display()))?;
    let mut data = serde_json::to_vec_pretty(doc).context("encode auth file")?;
    data.push(b'\n');
    let mut r = [0u8; 6];
    crate::sys::random_bytes(&mut r);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(
        ".tmp-{}-{}-{name}",
        std::process::id(),
        crate::util::ids::hex(&r)
    ));
    let result = (|| -> io::Result<()> {
        let mut f = OpenOptions::new().write(true).create_new(true).mode(0o600).open(&tmp)?;
        f.write_all(&data)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)?;
        File::open(dir)?.sync_all()
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e).with_context(|| format!("write {}", path.display()));
    }
    Ok(())
}

/// The helper named for `host` in `credHelpers`.
fn cred_helper_for(doc: &Map<String, Value>, host: &str) -> Option<String> {
    let helpers = doc.get("credHelpers")?.as_object()?;
    helpers
        .iter()
        .find(|(k, _)| normalize_key(k) == host)
        .and_then(|(_, v)| v.as_str())
        .map(str::to_string)
}

fn creds_store(doc: &Map<String, Value>) -> Option<String> {
    doc.get("credsStore")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Credentials in an `auths` entry; `None` for an empty entry (Docker leaves
/// `{}` for hosts whose secret is in its credsStore).
fn entry_credentials(entry: &Value, path: &Path, key: &str) -> Result<Option<Credentials>> {
    let field = |f: &str| entry.get(f).and_then(Value::as_str).unwrap_or("");
    if !field("identitytoken").is_empty() {
        return Ok(Some(Credentials {
            username: "<token>".to_string(),
            password: field("identitytoken").to_string(),
        }));
    }
    let auth = field("auth");
    if auth.is_empty() {
        if !field("username").is_empty() {
            return Ok(Some(Credentials {
                username: field("username").to_string(),
                password: field("password").to_string(),
            }));
        }
        return Ok(None);
    }
    let bad = || {
        format!(
            "{}: the \"auth\" of {key:?} is not base64(user:password)",
            path.display()
        )
    };
    let decoded = base64::decode(auth).with_context(bad)?;
    let text = String::from_utf8(decoded).ok().with_context(bad)?;
    let (user, pass) = text.split_once(':').with_context(bad)?;
    Ok(Some(Credentials {
        username: user.to_string(),
        password: pass.to_string(),
    }))
}

/// Reads and writes credentials for one [`AuthPaths`].
#[derive(Debug, Clone)]
pub struct AuthStore {
    paths: AuthPaths,
}

impl AuthStore {
    pub fn new(paths: AuthPaths) -> AuthStore {
        AuthStore { paths }
    }

    pub fn paths(&self) -> &AuthPaths {
        &self.paths
    }

    /// Credentials for `query` (`host` or `host/repository`): the first file
    /// that knows it wins; `None` when none does.
    pub fn credentials_for(&self, query: &str) -> Result<Option<Credentials>> {
        let host = host_of(query);
        let chain = key_chain(query);
        for path in self.paths.read_paths() {
            let Some(doc) = read_doc(&path)? else { continue };
            if let Some(helper) = cred_helper_for(&doc, &host) {
                return self
                    .helper_get(&helper, &host)
                    .with_context(|| format!("credential helper {helper:?} for {host} ({})", path.display()));
            }
            if let Some(auths) = doc.get("auths").and_then(Value::as_object) {
                for want in &chain {
                    for (key, entry) in auths {
                        if normalize_key(key) == *want
                            && let Some(c) = entry_credentials(entry, &path, key)?
                        {
                            return Ok(Some(c));
                        }
                    }
                }
            }
            if let Some(helper) = creds_store(&doc) {
                // A broken credsStore (Docker Desktop's "desktop" copied to a
                // server is common) must not stop pulls that need no login.
                match self.helper_get(&helper, &host) {
                    Ok(Some(c)) => return Ok(Some(c)),
                    Ok(None) => {}
                    Err(e) => crate::output::warn(&format!(
                        "credsStore {helper:?} in {}: {e:#}; going on without it",
                        path.display()
                    )),
                }
            }
        }
        Ok(None)
    }

    /// The user name stored for `query` (a helper's identity token has none).
    pub fn stored_user(&self, query: &str) -> Result<Option<String>> {
        Ok(self
            .credentials_for(query)?
            .map(|c| c.username)
            .filter(|u| u != "<token>"))
    }

    /// Stores `creds` for `key` (`host` or `host/namespace`) in the write file,
    /// or in its credential helper.
    pub fn store(&self, key: &str, creds: &Credentials) -> Result<()> {
        let path = self.paths.write_path();
        let key = normalize_key(key);
        let host = host_of(&key);
        let mut doc = read_doc(&path)?.unwrap_or_default();
        if let Some(helper) = cred_helper_for(&doc, &host).or_else(|| creds_store(&doc)) {
            let input = serde_json::to_vec(&HelperCreds {
                server_url: key.clone(),
                username: creds.username.clone(),
                secret: creds.password.clone(),
            })
            .context("encode helper request")?;
            self.run_helper(&helper, "store", &input)
                .with_context(|| format!("credential helper {helper:?}: store {key}"))?;
            return Ok(());
        }
        let auths = doc.entry("auths").or_insert_with(|| Value::Object(Map::new()));
        let Some(auths) = auths.as_object_mut() else {
            bail!("{}: \"auths\" is not an object", path.display());
        };
        auths.retain(|k, _| normalize_key(k) != key);
        let token = base64::encode(format!("{}:{}", creds.username, creds.password).as_bytes());
        auths.insert(key, serde_json::json!({ "auth": token }));
        write_doc(&path, &doc)
    }

    /// Removes `key`'s credentials from the write file (and its helper);
    /// `Ok(false)` when there were none.
    pub fn erase(&self, key: &str) -> Result<bool> {
        let path = self.paths.write_path();
        let key = normalize_key(key);
        let host = host_of(&key);
        let Some(mut doc) = read_doc(&path)? else {
            return Ok(false);
        };
        if let Some(helper) = cred_helper_for(&doc, &host) {
            return self.helper_erase(&helper, &key);
        }
        let mut removed = false;
        if let Some(auths) = doc.get_mut("auths").and_then(Value::as_object_mut) {
            let before = auths.len();
            auths.retain(|k, _| normalize_key(k) != key);
            removed = auths.len() != before;
        }
        if removed {
            write_doc(&path, &doc)?;
        }
        if let Some(helper) = creds_store(&doc) {
            removed |= self.helper_erase(&helper, &key)?;
        }
        Ok(removed)
    }

    /// Empties `auths` in the write file and erases the hosts of its
    /// `credHelpers` from their helpers. A `credsStore` is left alone: it may
    /// hold other tools' secrets and the protocol's `list` is not used.
    pub fn erase_all(&self) -> Result<()> {
        let path = self.paths.write_path();
        let Some(mut doc) = read_doc(&path)? else { return Ok(()) };
        let helpers: Vec<(String, String)> = doc
            .get("credHelpers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect()
            })
            .unwrap_or_default();
        for (host, helper) in helpers {
            self.helper_erase(&helper, &host)?;
        }
        if doc.get("auths").is_some() {
            doc.insert("auths".to_string(), Value::Object(Map::new()));
            write_doc(&path, &doc)?;
        }
        Ok(())
    }

    fn helper_get(&self, helper: &str, host: &str) -> Result<Option<Credentials>> {
        let mut urls = vec![host.to_string()];
        if host == "docker.io" {
            urls.push(DOCKER_HUB_LEGACY_KEY.to_string());
        }
        for url in urls {
            let Some(out) = self.run_helper(helper, "get", url.as_bytes())? else {
                continue;
            };
            let c: HelperCreds = serde_json::from_slice(&out)
                .with_context(|| format!("docker-credential-{helper} get {url}: output is not the expected JSON"))?;
            if c.username.is_empty() && c.secret.is_empty() {
                continue;
            }
            return Ok(Some(Credentials {
                username: c.username,
                password: c.secret,
            }));
        }
        Ok(None)
    }

    fn helper_erase(&self, helper: &str, key: &str) -> Result<bool> {
        Ok(self
            .run_helper(helper, "erase", key.as_bytes())
            .with_context(|| format!("credential helper {helper:?}: erase {key}"))?
            .is_some())
    }

    /// Runs `docker-credential-NAME ACTION` with `input` on stdin: its stdout,
    /// or `None` when it reports that it has no such credentials.
    fn run_helper(&self, name: &str, action: &str, input: &[u8]) -> Result<Option<Vec<u8>>> {
        if name.is_empty() || name.contains('/') {
            bail!("invalid credential helper name {name:?}");
        }
        let exe = format!("docker-credential-{name}");
        let path = self
            .paths
            .helper_dirs
            .iter()
            .map(|d| d.join(&exe))
            .find(|p| fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
            .with_context(|| format!("{exe} not found in $PATH"))?;
        let mut child = Command::new(&path)
            .arg(action)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("run {}", path.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            // A helper that exits without reading leaves a broken pipe: its
            // exit status says what happened.
            match stdin.write_all(input) {
                Err(e) if e.kind() != io::ErrorKind::BrokenPipe => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e).with_context(|| format!("write to {}", path.display()));
                }
                _ => {}
            }
        }
        let out = child
            .wait_with_output()
            .with_context(|| format!("wait for {}", path.display()))?;
        if out.status.success() {
            return Ok(Some(out.stdout));
        }
        let msg = String::from_utf8_lossy(if out.stdout.is_empty() {
            &out.stderr
        } else {
            &out.stdout
        })
        .trim()
        .to_string();
        if msg.contains(NOT_FOUND) {
            return Ok(None);
        }
        bail!("{exe} {action} failed ({}): {msg}", out.status);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    fn creds(u: &str, p: &str) -> Credentials {
        Credentials {
            username: u.into(),
            password: p.into(),
        }
    }

    /// Paths under `dir` for a rootless user with every location set.
    fn paths(dir: &Path) -> AuthPaths {
        AuthPaths {
            authfile: None,
            euid: 1000,
            runtime_dir: Some(dir.join("run")),
            config_home: Some(dir.join("home/.config")),
            docker_config: Some(dir.join("home/.docker")),
            helper_dirs: vec![dir.join("bin")],
        }
    }

    fn write_json(path: &Path, v: Value) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    fn auth(u: &str, p: &str) -> Value {
        serde_json::json!({ "auth": base64::encode(format!("{u}:{p}").as_bytes()) })
    }

    /// A docker-credential-fake that keeps one file per server URL next to
    /// itself and logs every call. Written by `cp` so that this (threaded)
    /// test process never holds the executable open for writing, which would
    /// make exec fail with ETXTBSY in a child forked meanwhile.
    fn fake_helper(dir: &Path) -> PathBuf {
        let bin = dir.join("bin");
        fs::create_dir_all(&bin).unwrap();
        let src = dir.join("helper.sh");
        fs::write(
            &src,
            r#"#!/bin/sh
d=$(dirname "$0")
input=$(cat)
echo "$1 $input" >> "$d/log"
case "$1" in
get)
    if [ -f "$d/creds-$input" ]; then cat "$d/creds-$input"; else echo "credentials not found in native keychain"; exit 1; fi ;;
store)
    url=$(printf '%s' "$input" | sed 's/.*"ServerURL":"\([^"]*\)".*/\1/')
    printf '%s' "$input" > "$d/creds-$url" ;;
erase)
    if [ -f "$d/creds-$input" ]; then rm "$d/creds-$input"; else echo "credentials not found in native keychain"; exit 1; fi ;;
*)
    echo "unknown action $1" >&2; exit 2 ;;
esac
"#,
        )
        .unwrap();
        let exe = bin.join("docker-credential-fake");
        let st = Command::new("cp").arg(&src).arg(&exe).status().unwrap();
        assert!(st.success());
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        bin
    }

    #[test]
    fn parse_creds_forms() {
        assert_eq!(parse_creds("u:p").unwrap(), creds("u", "p"));
        assert_eq!(parse_creds("u:p:a:ss").unwrap(), creds("u", "p:a:ss"));
        assert_eq!(parse_creds("u:").unwrap(), creds("u", ""));
        let e = parse_creds("alice").unwrap_err().to_string();
        assert!(e.contains("password is needed"), "{e}");
        let e = parse_creds(":secret").unwrap_err().to_string();
        assert!(!e.contains("secret"), "the password leaked: {e}");
        assert!(parse_creds("").is_err());
    }

    #[test]
    fn write_path_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = paths(dir.path());
        assert_eq!(p.write_path(), dir.path().join("run/containers/auth.json"));
        p.runtime_dir = None;
        assert_eq!(p.write_path(), Path::new("/run/containers/1000/auth.json"));
        p.euid = 0;
        p.runtime_dir = Some(dir.path().join("run"));
        assert_eq!(p.write_path(), Path::new("/run/containers/0/auth.json"));
        p.authfile = Some(dir.path().join("mine.json"));
        assert_eq!(p.write_path(), dir.path().join("mine.json"));
        assert_eq!(p.read_paths(), [dir.path().join("mine.json")]);
    }

    #[test]
    fn store_read_erase_round_trip() {
        let dir = tempfile::tempdir().unwrap();
        let s = AuthStore::new(paths(dir.path()));
        assert_eq!(s.credentials_for("localhost:5000").unwrap(), None);
        assert!(!s.erase("localhost:5000").unwrap());

        s.store("localhost:5000", &creds("alice", "pa:ss")).unwrap();
        s.store("quay.io", &creds("bob", "x")).unwrap();
        let file = dir.path().join("run/containers/auth.json");
        let meta = fs::metadata(&file).unwrap();
        assert_eq!(meta.mode() & 0o777, 0o600);
        assert_eq!(fs::metadata(file.parent().unwrap()).unwrap().mode() & 0o777, 0o700);
        let doc: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["auths"]["localhost:5000"]["auth"], base64::encode(b"alice:pa:ss"));
        // No temp files are left behind.
        assert_eq!(fs::read_dir(file.parent().unwrap()).unwrap().count(), 1);

        assert_eq!(
            s.credentials_for("localhost:5000").unwrap(),
            Some(creds("alice", "pa:ss"))
        );
        assert_eq!(
            s.credentials_for("localhost:5000/ns/repo").unwrap(),
            Some(creds("alice", "pa:ss"))
        );
        assert_eq!(s.stored_user("quay.io").unwrap().as_deref(), Some("bob"));

        // Storing again replaces.
        s.store("localhost:5000", &creds("alice", "new")).unwrap();
        assert_eq!(
            s.credentials_for("localhost:5000").unwrap(),
            Some(creds("alice", "new"))
        );

        assert!(s.erase("localhost:5000").unwrap());
        assert_eq!(s.credentials_for("localhost:5000").unwrap(), None);
        assert_eq!(s.stored_user("quay.io").unwrap().as_deref(), Some("bob"));
        assert!(!s.erase("localhost:5000").unwrap());

        s.erase_all().unwrap();
        assert_eq!(s.credentials_for("quay.io").unwrap(), None);
        assert_eq!(fs::metadata(&file).unwrap().mode() & 0o777, 0o600);
    }

    #[test]
    fn store_keeps_unrelated_content() {
        let dir = tempfile::tempdir().unwrap();
        let mut p = paths(dir.path());
        let file = dir.path().join("explicit/dir/auth.json");
        p.authfile = Some(file.clone());
        write_json(
            &file,
            serde_json::json!({ "auths": { "a.io": auth("a", "b") }, "HttpHeaders": { "X": "y" } }),
        );
        let s = AuthStore::new(p);
        s.store("b.io", &creds("c", "d")).unwrap();
        let doc: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["HttpHeaders"]["X"], "y");
        assert_eq!(s.credentials_for("a.io").unwrap(), Some(creds("a", "b")));
        assert_eq!(s.credentials_for("b.io").unwrap(), Some(creds("c", "d")));
    }

    #[test]
    fn read_order_and_docker_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = paths(dir.path());
        write_json(
            &dir.path().join("run/containers/auth.json"),
            serde_json::json!({ "auths": { "one.io": auth("run", "1") } }),
        );
        write_json(
            &dir.path().join("home/.config/containers/auth.json"),
            serde_json::json!({ "auths": { "one.io": auth("config", "2"), "two.io": auth("config", "2") } }),
        );
        write_json(
            &dir.path().join("home/.docker/config.json"),
            serde_json::json!({ "auths": {
                "one.io": auth("docker", "3"), "two.io": auth("docker", "3"), "three.io": auth("docker", "3"),
                "https://index.docker.io/v1/": auth("hub", "4"),
                "empty.io": {},
            } }),
        );
        let s = AuthStore::new(p.clone());
        assert_eq!(s.credentials_for("one.io").unwrap(), Some(creds("run", "1")));
        assert_eq!(s.credentials_for("two.io").unwrap(), Some(creds("config", "2")));
        assert_eq!(s.credentials_for("three.io").unwrap(), Some(creds("docker", "3")));
        assert_eq!(s.credentials_for("docker.io").unwrap(), Some(creds("hub", "4")));
        assert_eq!(s.credentials_for("empty.io").unwrap(), None);
        assert_eq!(s.credentials_for("four.io").unwrap(), None);

        // An explicit file is the only one read.
        let mut only = p;
        only.authfile = Some(dir.path().join("none.json"));
        assert_eq!(AuthStore::new(only).credentials_for("three.io").unwrap(), None);
    }

    #[test]
    fn namespaced_keys_most_specific_first() {
        let dir = tempfile::tempdir().unwrap();
        write_json(
            &dir.path().join("run/containers/auth.json"),
            serde_json::json!({ "auths": {
                "r.io": auth("host", "1"), "r.io/team": auth("team", "2"), "r.io/team/app": auth("app", "3"),
            } }),
        );
        let s = AuthStore::new(paths(dir.path()));
        assert_eq!(s.credentials_for("r.io/team/app").unwrap(), Some(creds("app", "3")));
        assert_eq!(s.credentials_for("r.io/team/other").unwrap(), Some(creds("team", "2")));
        assert_eq!(s.credentials_for("r.io/solo").unwrap(), Some(creds("host", "1")));
        assert_eq!(s.credentials_for("r.io").unwrap(), Some(creds("host", "1")));
    }

    #[test]
    fn identity_tokens_and_bad_entries() {
        let dir = tempfile::tempdir().unwrap();
        write_json(
            &dir.path().join("run/containers/auth.json"),
            serde_json::json!({ "auths": {
                "t.io": { "auth": base64::encode(b"u:p"), "identitytoken": "tok" },
                "bad.io": { "auth": "!!!" },
            } }),
        );
        let s = AuthStore::new(paths(dir.path()));
        assert_eq!(s.credentials_for("t.io").unwrap(), Some(creds("<token>", "tok")));
        assert_eq!(s.stored_user("t.io").unwrap(), None);
        let e = format!("{:#}", s.credentials_for("bad.io").unwrap_err());
        assert!(e.contains("bad.io") && e.contains("auth.json"), "{e}");
    }

    #[test]
    fn corrupt_file_is_an_error_naming_it() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("run/containers/auth.json");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, "{not json").unwrap();
        let s = AuthStore::new(paths(dir.path()));
        let e = format!("{:#}", s.credentials_for("x.io").unwrap_err());
        assert!(e.contains("auth.json"), "{e}");
        assert!(s.store("x.io", &creds("a", "b")).is_err());
    }

    #[test]
    fn cred_helpers_get_store_erase() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_helper(dir.path());
        let file = dir.path().join("run/containers/auth.json");
        write_json(
            &file,
            serde_json::json!({ "auths": { "h.io": auth("file", "x") }, "credHelpers": { "h.io": "fake" } }),
        );
        let s = AuthStore::new(paths(dir.path()));
        // credHelpers wins over auths for its host, and knows nothing yet.
        assert_eq!(s.credentials_for("h.io").unwrap(), None);
        s.store("h.io", &creds("helper", "s3:cret")).unwrap();
        assert!(bin.join("creds-h.io").exists());
        assert_eq!(
            s.credentials_for("h.io/some/repo").unwrap(),
            Some(creds("helper", "s3:cret"))
        );
        assert_eq!(s.stored_user("h.io").unwrap().as_deref(), Some("helper"));
        // The file itself was not touched by the helper's store.
        let doc: Value = serde_json::from_slice(&fs::read(&file).unwrap()).unwrap();
        assert_eq!(doc["auths"]["h.io"], auth("file", "x"));
        assert!(s.erase("h.io").unwrap());
        assert!(!bin.join("creds-h.io").exists());
        assert!(!s.erase("h.io").unwrap());
        let log = fs::read_to_string(bin.join("log")).unwrap();
        assert!(
            log.contains("store {\"ServerURL\":\"h.io\",\"Username\":\"helper\",\"Secret\":\"s3:cret\"}"),
            "{log}"
        );
        assert!(log.contains("erase h.io"), "{log}");

        // erase_all erases the credHelpers' hosts too.
        s.store("h.io", &creds("again", "p")).unwrap();
        s.erase_all().unwrap();
        assert!(!bin.join("creds-h.io").exists());
        assert_eq!(s.credentials_for("h.io").unwrap(), None);
    }

    #[test]
    fn creds_store_after_auths() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_helper(dir.path());
        write_json(
            &dir.path().join("home/.docker/config.json"),
            serde_json::json!({ "auths": { "f.io": auth("file", "1"), "docker.io": {} }, "credsStore": "fake" }),
        );
        let s = AuthStore::new(paths(dir.path()));
        assert_eq!(s.credentials_for("f.io").unwrap(), Some(creds("file", "1")));
        assert_eq!(s.credentials_for("s.io").unwrap(), None);
        fs::write(
            bin.join("creds-s.io"),
            r#"{"ServerURL":"s.io","Username":"store","Secret":"2"}"#,
        )
        .unwrap();
        assert_eq!(s.credentials_for("s.io").unwrap(), Some(creds("store", "2")));
        // docker.io: the helper is asked for "docker.io", then Docker's URL.
        assert_eq!(s.credentials_for("docker.io").unwrap(), None);
        let log = fs::read_to_string(bin.join("log")).unwrap();
        assert!(
            log.contains("get docker.io\n") && log.contains("get https://index.docker.io/v1/\n"),
            "{log}"
        );
    }

    #[test]
    fn creds_store_receives_logins_and_a_missing_helper_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let bin = fake_helper(dir.path());
        let file = dir.path().join("run/containers/auth.json");
        write_json(&file, serde_json::json!({ "credsStore": "fake" }));
        let s = AuthStore::new(paths(dir.path()));
        s.store("c.io", &creds("u", "p")).unwrap();
        assert!(bin.join("creds-c.io").exists());
        assert_eq!(s.credentials_for("c.io").unwrap(), Some(creds("u", "p")));
        assert!(s.erase("c.io").unwrap());

        write_json(&file, serde_json::json!({ "credHelpers": { "m.io": "missing" } }));
        let e = format!("{:#}", s.credentials_for("m.io").unwrap_err());
        assert!(e.contains("docker-credential-missing not found"), "{e}");
        write_json(&file, serde_json::json!({ "credHelpers": { "m.io": "../evil" } }));
        assert!(s.credentials_for("m.io").is_err());
    }

    #[test]
    fn key_normalisation() {
        assert_eq!(normalize_key("https://index.docker.io/v1/"), "docker.io");
        assert_eq!(normalize_key("http://localhost:5000/v2/"), "localhost:5000");
        assert_eq!(normalize_key("registry-1.docker.io"), "docker.io");
        assert_eq!(normalize_key("quay.io/ns/"), "quay.io/ns");
        assert_eq!(key_chain("q.io/a/b"), ["q.io/a/b", "q.io/a", "q.io"]);
    }
}
