//! A real registry for the tests: Debian's `docker-registry` (the CNCF
//! distribution registry, 2.8) started on 127.0.0.1 with a free port and its
//! storage in a private temp dir; plain HTTP, or TLS with a CA and server
//! certificate made by openssl and bcrypt htpasswd authentication. Killed and
//! removed on drop. Also skopeo, run against it, to put images in and read
//! them back.

// Test-harness diagnostics go to stderr, where the test runner captures them.
#![allow(clippy::print_stderr)]

use std::fs;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use super::oci::{Image, sha256};

/// The tools these tests run beside casco, and the package each comes in.
const TOOLS: &[(&str, &str)] = &[
    ("/usr/bin/docker-registry", "docker-registry"),
    ("/usr/bin/skopeo", "skopeo"),
    ("/usr/bin/htpasswd", "apache2-utils"),
    ("/usr/bin/openssl", "openssl"),
];

/// Panics, saying how to get it, when a tool the registry tests need is missing.
pub fn require_tools() {
    for (path, package) in TOOLS {
        assert!(
            Path::new(path).exists(),
            "{path} is missing: the registry tests need the {package} package (run `bash .ci/setup` as root)"
        );
    }
}

fn set_mode(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

/// A fresh directory in the temp dir, `casco-test-<pid>-<what><n>` (the
/// harness removes those of dead test processes).
fn fresh_dir(what: &str) -> PathBuf {
    static N: AtomicUsize = AtomicUsize::new(0);
    let n = N.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("casco-test-{}-{what}{n}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
    set_mode(&dir, 0o755);
    dir
}

/// Runs a host command to completion; panics with its output if it fails.
#[track_caller]
pub fn must_run(cmd: &mut Command) -> std::process::Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("cannot start {cmd:?}: {e}"));
    if !out.status.success() {
        panic!(
            "{cmd:?} failed ({})\n--- stdout ---\n{}\n--- stderr ---\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    out
}

/// The CA and the server certificate (subjectAltName IP:127.0.0.1), made
/// with openssl once per test process: `ca.crt`, `server.crt`, `server.key`.
struct Pki {
    dir: PathBuf,
}

fn pki() -> &'static Pki {
    static PKI: OnceLock<Pki> = OnceLock::new();
    PKI.get_or_init(|| {
        require_tools();
        let dir = fresh_dir("pki");
        // Arguments split on whitespace (none of them holds a space).
        let ossl = |args: &str| {
            must_run(Command::new("openssl").args(args.split_whitespace()).current_dir(&dir));
        };
        let ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
        ossl(&format!(
            "req -x509 {ec} -keyout ca.key -out ca.crt -days 3 -subj /CN=casco-test-CA \
             -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign"
        ));
        ossl(&format!(
            "req {ec} -keyout server.key -out server.csr -subj /CN=127.0.0.1"
        ));
        fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n\
             keyUsage=critical,digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .expect("write server.ext");
        ossl(
            "x509 -req -in server.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out server.crt -days 3 \
             -extfile server.ext",
        );
        for f in ["ca.crt", "server.crt"] {
            set_mode(&dir.join(f), 0o644);
        }
        Pki { dir }
    })
}

/// A docker-registry process. See the module doc.
pub struct Registry {
    child: Child,
    dir: PathBuf,
    port: u16,
    tls: bool,
    creds: Option<(String, String)>,
}

impl Registry {
    /// Plain HTTP, no authentication.
    pub fn start_plain() -> Registry {
        Registry::start(false, None)
    }

    /// HTTPS with the test CA's certificate for IP 127.0.0.1, and basic
    /// authentication of `user` with `pass` (bcrypt htpasswd).
    pub fn start_tls_auth(user: &str, pass: &str) -> Registry {
        Registry::start(true, Some((user.to_string(), pass.to_string())))
    }

    fn start(tls: bool, creds: Option<(String, String)>) -> Registry {
        require_tools();
        let dir = fresh_dir("registry");
        fs::create_dir(dir.join("data")).expect("create the registry's storage dir");
        let mut auth = String::new();
        if let Some((user, pass)) = &creds {
            let out = must_run(Command::new("htpasswd").args(["-Bbn", user, pass]));
            fs::write(dir.join("htpasswd"), &out.stdout).expect("write htpasswd");
            auth = format!(
                "auth:\n  htpasswd:\n    realm: casco-test\n    path: {}\n",
                dir.join("htpasswd").display()
            );
        }
        let mut tls_conf = String::new();
        if tls {
            let p = pki();
            tls_conf = format!(
                "  tls:\n    certificate: {}\n    key: {}\n",
                p.dir.join("server.crt").display(),
                p.dir.join("server.key").display()
            );
            // The certificates a client trusts: only the CA, world-readable.
            let certs = dir.join("certs");
            fs::create_dir(&certs).expect("create certs dir");
            fs::copy(p.dir.join("ca.crt"), certs.join("ca.crt")).expect("copy ca.crt");
            set_mode(&certs, 0o755);
            set_mode(&certs.join("ca.crt"), 0o644);
        }
        let mut last_log = String::new();
        // A port picked by binding port 0 can be taken by someone else before the
        // registry binds it: then try another.
        for _attempt in 0..5 {
            let port = TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .map(|a| a.port())
                .expect("find a free port");
            let config = format!(
                "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n\
                 storage:\n  filesystem:\n    rootdirectory: {data}\n  delete:\n    enabled: true\n\
                 http:\n  addr: 127.0.0.1:{port}\n  secret: casco-test-secret\n{tls_conf}{auth}",
                data = dir.join("data").display()
            );
            let conf_path = dir.join("config.yml");
            fs::write(&conf_path, config).expect("write the registry config");
            let log_path = dir.join("registry.log");
            let log = fs::File::create(&log_path).expect("create the registry log");
            let child = Command::new("docker-registry")
                .arg("serve")
                .arg(&conf_path)
                .env_clear()
                .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
                .stdin(Stdio::null())
                .stdout(log.try_clone().expect("dup log fd"))
                .stderr(log)
                .spawn()
                .unwrap_or_else(|e| panic!("start docker-registry: {e}"));
            let mut reg = Registry {
                child,
                dir: dir.clone(),
                port,
                tls,
                creds: creds.clone(),
            };
            if reg.wait_ready(&log_path) {
                return reg;
            }
            last_log = fs::read_to_string(&log_path).unwrap_or_default();
            // Drop would remove the dir: kill only, keep the dir for the next try.
            let _ = reg.child.kill();
            let _ = reg.child.wait();
            std::mem::forget(reg);
        }
        panic!("docker-registry did not start in 5 tries; last log:\n{last_log}");
    }

    /// Waits up to 10 s until the registry listens (and, for plain HTTP,
    /// answers `GET /v2/` as a registry). False if it exited first.
    fn wait_ready(&mut self, log_path: &Path) -> bool {
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            let log = fs::read_to_string(log_path).unwrap_or_default();
            if log.contains("listening on") && self.answers() {
                return true;
            }
            thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn answers(&self) -> bool {
        let Ok(mut s) = TcpStream::connect(("127.0.0.1", self.port)) else {
            return false;
        };
        if self.tls {
            return true;
        }
        let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
        if s.write_all(b"GET /v2/ HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").is_err() {
            return false;
        }
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        reply.to_ascii_lowercase().contains("docker-distribution-api-version")
    }

    /// `127.0.0.1:PORT`: the registry part of a reference, and the key of its
    /// credentials and of its certs.d directory.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/REPO[:TAG]`.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// A directory holding only the CA certificate as `ca.crt` (world-readable),
    /// for `--cert-dir`. TLS registries only.
    pub fn certs_dir(&self) -> PathBuf {
        assert!(self.tls, "certs_dir() of a plain-HTTP registry");
        self.dir.join("certs")
    }

    /// The CA certificate, PEM.
    pub fn ca_pem(&self) -> Vec<u8> {
        fs::read(self.certs_dir().join("ca.crt")).expect("read ca.crt")
    }

    /// `user:pass`, for `--creds`.
    pub fn creds(&self) -> String {
        let (u, p) = self
            .creds
            .as_ref()
            .expect("creds() of a registry without authentication");
        format!("{u}:{p}")
    }

    /// What the registry logged so far.
    pub fn log(&self) -> String {
        fs::read_to_string(self.dir.join("registry.log")).unwrap_or_default()
    }

    /// skopeo with a private HOME (no host credentials), the permissive policy,
    /// and for the registry side given (`src` or `dest`), how to reach it: TLS
    /// verification off for plain HTTP, the CA and the credentials for TLS.
    pub fn skopeo(&self, verb: &str, side: &str) -> Command {
        let mut c = Command::new("skopeo");
        c.env_clear()
            .env("PATH", "/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.dir)
            .env("TMPDIR", &self.dir)
            .args(["--insecure-policy", verb]);
        let flag = |name: &str| {
            if side.is_empty() {
                format!("--{name}")
            } else {
                format!("--{side}-{name}")
            }
        };
        if self.tls {
            c.arg(format!("{}={}", flag("cert-dir"), self.certs_dir().display()));
        } else {
            c.arg(format!("{}=false", flag("tls-verify")));
        }
        if self.creds.is_some() {
            c.arg(flag("creds")).arg(self.creds());
        }
        c
    }

    /// `skopeo copy [--all] SRC docker://REGISTRY/DEST`.
    pub fn skopeo_push(&self, src: &str, dest: &str, all: bool) {
        let mut c = self.skopeo("copy", "dest");
        if all {
            c.arg("--all");
        }
        must_run(c.arg(src).arg(format!("docker://{}", self.image(dest))));
    }

    /// `skopeo copy docker://REGISTRY/SRC DEST`.
    pub fn skopeo_pull(&self, src: &str, dest: &str) {
        must_run(
            self.skopeo("copy", "src")
                .arg(format!("docker://{}", self.image(src)))
                .arg(dest),
        );
    }

    /// `skopeo inspect --raw docker://REGISTRY/REF`: the manifest's exact bytes.
    pub fn raw_manifest(&self, reference: &str) -> Vec<u8> {
        must_run(
            self.skopeo("inspect", "")
                .arg("--raw")
                .arg(format!("docker://{}", self.image(reference))),
        )
        .stdout
    }

    /// `skopeo inspect --config --raw docker://REGISTRY/REF`: the config's exact bytes.
    pub fn raw_config(&self, reference: &str) -> Vec<u8> {
        must_run(
            self.skopeo("inspect", "")
                .args(["--config", "--raw"])
                .arg(format!("docker://{}", self.image(reference))),
        )
        .stdout
    }

    /// Pushes a one-image OCI layout (made in `scratch`) to `dest` with skopeo.
    pub fn push_image(&self, image: &Image, scratch: &Path, dest: &str) {
        let layout = scratch.join(format!("layout-{}", &image.id()[..12]));
        super::oci::write_layout(&layout, &[(image, "t")]);
        self.skopeo_push(&format!("oci:{}:t", layout.display()), dest, false);
    }

    /// Pushes `image` as `repo:tag` byte for byte, over plain HTTP with no
    /// client in between (skopeo would recompress an uncompressed layer):
    /// each blob with POST + PUT, then the manifest. Plain registries only.
    pub fn http_push(&self, image: &Image, repo: &str, tag: &str) {
        assert!(!self.tls, "http_push() speaks plain HTTP only");
        let mut blobs: Vec<&[u8]> = image.layers.iter().map(|l| l.blob.as_slice()).collect();
        blobs.push(&image.config);
        for blob in blobs {
            let (status, headers, body) = self.http("POST", &format!("/v2/{repo}/blobs/uploads/"), &[], &[]);
            assert_eq!(
                status,
                202,
                "start a blob upload to {repo}: {headers}{}",
                String::from_utf8_lossy(&body)
            );
            let location = header(&headers, "location").unwrap_or_else(|| panic!("no Location in {headers}"));
            // Location may be absolute (http://host:port/v2/...): keep the path.
            let path = match location.find("/v2/") {
                Some(i) => &location[i..],
                None => panic!("odd upload Location {location}"),
            };
            let sep = if path.contains('?') { '&' } else { '?' };
            let put = format!("{path}{sep}digest={}", sha256(blob));
            let (status, headers, body) = self.http("PUT", &put, &[("Content-Type", "application/octet-stream")], blob);
            assert_eq!(
                status,
                201,
                "upload a blob to {repo}: {headers}{}",
                String::from_utf8_lossy(&body)
            );
        }
        let (status, headers, body) = self.http(
            "PUT",
            &format!("/v2/{repo}/manifests/{tag}"),
            &[("Content-Type", super::oci::MT_OCI_MANIFEST)],
            &image.manifest,
        );
        assert_eq!(
            status,
            201,
            "put the manifest {repo}:{tag}: {headers}{}",
            String::from_utf8_lossy(&body)
        );
    }

    /// One HTTP/1.1 request over a fresh connection (closed after it):
    /// status, the header block as text, and the body.
    pub fn http(&self, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String, Vec<u8>) {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).expect("connect to the registry");
        let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
        let mut req = format!(
            "{method} {path} HTTP/1.1\r\nHost: {}\r\nConnection: close\r\nContent-Length: {}\r\n",
            self.host(),
            body.len()
        );
        for (k, v) in headers {
            req.push_str(&format!("{k}: {v}\r\n"));
        }
        req.push_str("\r\n");
        s.write_all(req.as_bytes()).expect("send a request");
        s.write_all(body).expect("send a request body");
        let mut reply = Vec::new();
        s.read_to_end(&mut reply).expect("read a reply");
        let split = reply
            .windows(4)
            .position(|w| w == b"\r\n\r\n")
            .expect("a reply with headers");
        let head = String::from_utf8_lossy(&reply[..split + 4]).into_owned();
        let status = head.split_whitespace().nth(1).and_then(|c| c.parse().ok()).unwrap_or(0);
        (status, head, reply[split + 4..].to_vec())
    }
}

/// A header's value from a header block (case-insensitive name).
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if thread::panicking() {
            let log = self.log();
            let tail: Vec<&str> = log.lines().rev().take(30).collect();
            eprintln!(
                "registry {} (dir {} kept), last log lines:\n{}",
                self.host(),
                self.dir.display(),
                tail.into_iter().rev().collect::<Vec<_>>().join("\n")
            );
            return;
        }
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// A CA certificate placed at `/etc/containers/certs.d/HOST:PORT/ca.crt` for
/// the lifetime of the guard (root tests; the port makes the path unique).
pub struct SystemCertsD {
    dir: PathBuf,
}

impl SystemCertsD {
    pub fn install(reg: &Registry) -> SystemCertsD {
        let dir = PathBuf::from("/etc/containers/certs.d").join(reg.host());
        fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("create {}: {e}", dir.display()));
        fs::write(dir.join("ca.crt"), reg.ca_pem()).unwrap_or_else(|e| panic!("write {}/ca.crt: {e}", dir.display()));
        SystemCertsD { dir }
    }
}

impl Drop for SystemCertsD {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}
