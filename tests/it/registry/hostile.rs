//! A small hostile registry: a std TcpListener on 127.0.0.1 and a thread per
//! connection, speaking just enough of the distribution protocol (`/v2/`,
//! manifests and blobs by path, GET and HEAD, one request per connection)
//! to serve what a real registry never would: wrong digests, truncated or
//! endless or stalled blobs, oversized manifests. It can also demand Bearer
//! tokens (with its own token endpoint) and redirect blobs elsewhere, as
//! Docker Hub and registries on object storage do. Stops on drop.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::oci::{Image, MT_OCI_MANIFEST, sha256};

/// How the server answers one path.
#[derive(Clone)]
pub enum Reply {
    /// 200 with these bytes, this Content-Type, and Docker-Content-Digest
    /// when given.
    Full {
        content_type: String,
        body: Vec<u8>,
        digest: Option<String>,
    },
    /// Content-Length says `declared`, only `body` is sent, then the
    /// connection closes.
    Truncated { declared: u64, body: Vec<u8> },
    /// No Content-Length; zeros until the client goes away (or `cap` bytes,
    /// so a test that goes wrong still ends).
    Endless { cap: u64 },
    /// Content-Length says `declared`, `body` is sent, then nothing more while
    /// the connection stays open (until the server stops).
    Stall { declared: u64, body: Vec<u8> },
    /// The whole body, `chunk` bytes every `every`.
    Slow {
        body: Vec<u8>,
        chunk: usize,
        every: Duration,
    },
    /// The first reply for the first request, the second for the second, ...;
    /// the last one for every request after that.
    Sequence(Vec<Reply>),
    /// 307 to this path on the same server.
    Redirect(String),
}

/// Bearer token authentication: every `/v2/` request needs
/// `Authorization: Bearer TOKEN`; without it the answer is 401 with a
/// `WWW-Authenticate: Bearer realm=".../token",service=...,scope=...`
/// challenge; `GET /token` hands out the token (only to `basic` credentials,
/// base64 `user:pass`, when set).
#[derive(Clone)]
pub struct Bearer {
    pub token: String,
    pub basic: Option<String>,
}

struct Shared {
    routes: Mutex<HashMap<String, Reply>>,
    stop: AtomicBool,
    /// Body bytes written, over all responses.
    sent: AtomicU64,
    /// "METHOD PATH" of every request, in order.
    requests: Mutex<Vec<String>>,
    /// GET requests per path, for `Reply::Sequence`.
    hits: Mutex<HashMap<String, usize>>,
    bearer: Mutex<Option<Bearer>>,
    /// The query strings of the token requests, in order.
    token_requests: Mutex<Vec<String>>,
    port: u16,
}

/// See the module doc.
pub struct Hostile {
    port: u16,
    shared: Arc<Shared>,
    acceptor: Option<thread::JoinHandle<()>>,
}

impl Hostile {
    pub fn start() -> Hostile {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the hostile server");
        let port = listener.local_addr().expect("local addr").port();
        let shared = Arc::new(Shared {
            routes: Mutex::new(HashMap::new()),
            stop: AtomicBool::new(false),
            sent: AtomicU64::new(0),
            requests: Mutex::new(Vec::new()),
            hits: Mutex::new(HashMap::new()),
            bearer: Mutex::new(None),
            token_requests: Mutex::new(Vec::new()),
            port,
        });
        let s = Arc::clone(&shared);
        let acceptor = thread::spawn(move || {
            for conn in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(conn) = conn else { continue };
                let s = Arc::clone(&s);
                thread::spawn(move || serve(conn, &s));
            }
        });
        let h = Hostile {
            port,
            shared,
            acceptor: Some(acceptor),
        };
        h.route(
            "/v2/",
            Reply::Full {
                content_type: "application/json".into(),
                body: b"{}".to_vec(),
                digest: None,
            },
        );
        h
    }

    /// `127.0.0.1:PORT`.
    pub fn host(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// `127.0.0.1:PORT/REPO`.
    pub fn image(&self, repo: &str) -> String {
        format!("{}/{repo}", self.host())
    }

    /// Answers requests for exactly `path` with `reply`.
    pub fn route(&self, path: &str, reply: Reply) {
        self.shared.routes.lock().unwrap().insert(path.to_string(), reply);
    }

    /// Serves `image` as `repo:tag` (its manifest by tag and by digest, its
    /// config and layers), honestly; callers then override paths to lie.
    pub fn serve_image(&self, repo: &str, tag: &str, image: &Image) {
        self.serve_manifest(repo, tag, &image.manifest, MT_OCI_MANIFEST);
        self.serve_blob(repo, &image.config);
        for l in &image.layers {
            self.serve_blob(repo, &l.blob);
        }
    }

    /// Serves `bytes` as the manifest `repo:tag` and `repo@DIGEST`.
    pub fn serve_manifest(&self, repo: &str, tag: &str, bytes: &[u8], media_type: &str) {
        let digest = sha256(bytes);
        let reply = Reply::Full {
            content_type: media_type.into(),
            body: bytes.to_vec(),
            digest: Some(digest.clone()),
        };
        self.route(&manifest_path(repo, tag), reply.clone());
        self.route(&manifest_path(repo, &digest), reply);
    }

    /// Serves `bytes` as the blob of its own digest.
    pub fn serve_blob(&self, repo: &str, bytes: &[u8]) {
        let digest = sha256(bytes);
        self.route(
            &blob_path(repo, &digest),
            Reply::Full {
                content_type: "application/octet-stream".into(),
                body: bytes.to_vec(),
                digest: Some(digest),
            },
        );
    }

    /// Demands Bearer tokens from now on (see [`Bearer`]).
    pub fn require_bearer(&self, bearer: Bearer) {
        *self.shared.bearer.lock().unwrap() = Some(bearer);
    }

    /// The query strings of the token requests so far.
    pub fn token_requests(&self) -> Vec<String> {
        self.shared.token_requests.lock().unwrap().clone()
    }

    /// Body bytes sent so far, over every response.
    pub fn sent(&self) -> u64 {
        self.shared.sent.load(Ordering::SeqCst)
    }

    /// The requests so far, as "METHOD PATH" lines.
    pub fn requests(&self) -> Vec<String> {
        self.shared.requests.lock().unwrap().clone()
    }
}

pub fn manifest_path(repo: &str, reference: &str) -> String {
    format!("/v2/{repo}/manifests/{reference}")
}

pub fn blob_path(repo: &str, digest: &str) -> String {
    format!("/v2/{repo}/blobs/{digest}")
}

impl Drop for Hostile {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the acceptor.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
        if let Some(t) = self.acceptor.take() {
            let _ = t.join();
        }
    }
}

/// Reads one request and answers it; the connection closes after it.
fn serve(conn: TcpStream, s: &Shared) {
    let _ = conn.set_read_timeout(Some(Duration::from_secs(30)));
    let mut reader = BufReader::new(match conn.try_clone() {
        Ok(c) => c,
        Err(_) => return,
    });
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 {
        return;
    }
    // Headers: only Authorization matters (no request here has a body).
    let mut authorization = String::new();
    loop {
        let mut h = String::new();
        match reader.read_line(&mut h) {
            Ok(0) | Err(_) => return,
            Ok(_) if h == "\r\n" || h == "\n" => break,
            Ok(_) => {
                if let Some((k, v)) = h.split_once(':')
                    && k.trim().eq_ignore_ascii_case("authorization")
                {
                    authorization = v.trim().to_string();
                }
            }
        }
    }
    let mut parts = line.split_whitespace();
    let method = parts.next().unwrap_or_default().to_string();
    let target = parts.next().unwrap_or_default();
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let path = path.to_string();
    s.requests.lock().unwrap().push(format!("{method} {path}"));
    let head = method == "HEAD";
    let common = "Docker-Distribution-Api-Version: registry/2.0\r\nConnection: close\r\n";
    let bearer = s.bearer.lock().unwrap().clone();
    if let Some(b) = bearer {
        let mut w = &conn;
        if path == "/token" {
            s.token_requests.lock().unwrap().push(query.to_string());
            let allowed = b
                .basic
                .as_ref()
                .is_none_or(|basic| authorization == format!("Basic {basic}"));
            let (status, body) = if allowed {
                (
                    "200 OK",
                    format!(
                        "{{\"token\":\"{0}\",\"access_token\":\"{0}\",\"expires_in\":300}}",
                        b.token
                    ),
                )
            } else {
                (
                    "401 Unauthorized",
                    r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#.to_string(),
                )
            };
            let _ = write!(
                w,
                "HTTP/1.1 {status}\r\n{common}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            return;
        }
        if path.starts_with("/v2/") && authorization != format!("Bearer {}", b.token) {
            // The scope names the repository: /v2/REPO/(manifests|blobs)/...
            let repo = path
                .strip_prefix("/v2/")
                .and_then(|r| r.rsplit_once("/manifests/").or_else(|| r.rsplit_once("/blobs/")))
                .map(|(r, _)| r.to_string());
            let scope = repo
                .map(|r| format!(",scope=\"repository:{r}:pull\""))
                .unwrap_or_default();
            let body = r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#;
            let _ = write!(
                w,
                "HTTP/1.1 401 Unauthorized\r\n{common}Content-Type: application/json\r\n\
                 WWW-Authenticate: Bearer realm=\"http://127.0.0.1:{}/token\",service=\"casco-hostile\"{scope}\r\n\
                 Content-Length: {}\r\n\r\n",
                s.port,
                body.len()
            );
            if !head {
                let _ = w.write_all(body.as_bytes());
            }
            return;
        }
    }
    let mut reply = s.routes.lock().unwrap().get(&path).cloned();
    if let Some(Reply::Sequence(seq)) = &reply {
        // HEAD requests do not advance the sequence; they see its current step.
        let mut hits = s.hits.lock().unwrap();
        let n = hits.entry(path.clone()).or_insert(0);
        let step = (*n).min(seq.len().saturating_sub(1));
        if !head {
            *n += 1;
        }
        reply = seq.get(step).cloned();
    }
    let mut w = conn;
    let _ = w.set_write_timeout(Some(Duration::from_secs(30)));
    let Some(reply) = reply else {
        let body = br#"{"errors":[{"code":"NAME_UNKNOWN","message":"not served here"}]}"#;
        let _ = write!(
            w,
            "HTTP/1.1 404 Not Found\r\n{common}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        if !head {
            let _ = w.write_all(body);
        }
        return;
    };
    let count = |n: usize| {
        s.sent.fetch_add(n as u64, Ordering::SeqCst);
    };
    match reply {
        Reply::Full {
            content_type,
            body,
            digest,
        } => {
            let digest = digest
                .map(|d| format!("Docker-Content-Digest: {d}\r\n"))
                .unwrap_or_default();
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: {content_type}\r\n{digest}Content-Length: {}\r\n\r\n",
                body.len()
            );
            if !head {
                // In pieces, so a client that stops reading (a size limit) is seen.
                for piece in body.chunks(64 * 1024) {
                    if w.write_all(piece).is_err() {
                        return;
                    }
                    count(piece.len());
                }
            }
        }
        Reply::Truncated { declared, body } => {
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
            );
            if !head && w.write_all(&body).is_ok() {
                count(body.len());
            }
            let _ = w.flush();
            let _ = w.shutdown(std::net::Shutdown::Both);
        }
        Reply::Endless { cap } => {
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: application/octet-stream\r\n\r\n"
            );
            if head {
                return;
            }
            let zeros = vec![0u8; 64 * 1024];
            let mut total = 0u64;
            while total < cap && !s.stop.load(Ordering::SeqCst) {
                if w.write_all(&zeros).is_err() {
                    return;
                }
                total += zeros.len() as u64;
                count(zeros.len());
            }
        }
        Reply::Stall { declared, body } => {
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: application/octet-stream\r\nContent-Length: {declared}\r\n\r\n"
            );
            if head {
                return;
            }
            if w.write_all(&body).is_ok() {
                count(body.len());
            }
            let _ = w.flush();
            // Hold the connection open, silent, until the client closes it or
            // the server stops (at most 10 minutes).
            let _ = w.set_read_timeout(Some(Duration::from_millis(200)));
            let deadline = Instant::now() + Duration::from_secs(600);
            let mut buf = [0u8; 256];
            while !s.stop.load(Ordering::SeqCst) && Instant::now() < deadline {
                match std::io::Read::read(&mut reader, &mut buf) {
                    Ok(0) => return,
                    Ok(_) => {}
                    Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
                    Err(_) => return,
                }
            }
        }
        Reply::Redirect(location) => {
            let _ = write!(
                w,
                "HTTP/1.1 307 Temporary Redirect\r\n{common}Location: http://127.0.0.1:{}{location}\r\nContent-Length: 0\r\n\r\n",
                s.port
            );
        }
        // Resolved above; a sequence inside a sequence is not supported.
        Reply::Sequence(_) => {
            let _ = write!(
                w,
                "HTTP/1.1 500 Internal Server Error\r\n{common}Content-Length: 0\r\n\r\n"
            );
        }
        Reply::Slow { body, chunk, every } => {
            let _ = write!(
                w,
                "HTTP/1.1 200 OK\r\n{common}Content-Type: application/octet-stream\r\nContent-Length: {}\r\n\r\n",
                body.len()
            );
            if head {
                return;
            }
            for piece in body.chunks(chunk.max(1)) {
                if s.stop.load(Ordering::SeqCst) || w.write_all(piece).is_err() {
                    return;
                }
                count(piece.len());
                thread::sleep(every);
            }
        }
    }
    let _ = w.flush();
}
