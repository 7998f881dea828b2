//! Tests of the registry client against small HTTP servers run in the test
//! (std TcpListener, one thread per connection): the auth dance, redirects,
//! Range resumption, uploads, limits and error mapping.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::*;
use crate::registry::manifest::{DOCKER_MANIFEST, OCI_MANIFEST};

#[derive(Debug, Clone)]
struct Request {
    method: String,
    /// Path and query.
    target: String,
    headers: HashMap<String, String>,
    body: Vec<u8>,
}

impl Request {
    fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }
    fn query(&self, k: &str) -> Option<String> {
        let q = self.target.split_once('?')?.1;
        q.split('&')
            .find_map(|kv| kv.strip_prefix(&format!("{k}=")).map(unescape))
    }
    fn header(&self, k: &str) -> Option<&str> {
        self.headers.get(&k.to_ascii_lowercase()).map(String::as_str)
    }
}

fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%'
            && i + 2 < b.len()
            && let Ok(v) = u8::from_str_radix(&s[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap()
}

#[derive(Default)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// Announce the whole body but send only this much, then close.
    cut_after: Option<usize>,
    /// Send no Content-Length: the body ends when the connection closes.
    until_close: bool,
    /// Send the headers, then nothing for this long.
    stall: Option<Duration>,
}

impl Reply {
    fn new(status: u16) -> Reply {
        Reply {
            status,
            ..Reply::default()
        }
    }
    fn header(mut self, k: &str, v: impl Into<String>) -> Reply {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn body(mut self, b: impl Into<Vec<u8>>) -> Reply {
        self.body = b.into();
        self
    }
}

type Handler = Arc<dyn Fn(&Request) -> Reply + Send + Sync>;

/// A test server on 127.0.0.1; it records every request.
struct Server {
    port: u16,
    log: Arc<Mutex<Vec<Request>>>,
}

impl Server {
    fn start(handler: impl Fn(&Request) -> Reply + Send + Sync + 'static) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let log = Arc::new(Mutex::new(Vec::new()));
        let handler: Handler = Arc::new(handler);
        let l = log.clone();
        std::thread::spawn(move || {
            for conn in listener.incoming() {
                let Ok(conn) = conn else { return };
                let (h, l) = (handler.clone(), l.clone());
                std::thread::spawn(move || serve(conn, h, l));
            }
        });
        Server { port, log }
    }

    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr())
    }

    fn requests(&self) -> Vec<Request> {
        self.log.lock().unwrap().clone()
    }

    fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|r| r.path() == path).count()
    }
}

fn serve(conn: TcpStream, handler: Handler, log: Arc<Mutex<Vec<Request>>>) {
    let mut w = conn.try_clone().unwrap();
    let mut r = BufReader::new(conn);
    loop {
        let mut line = String::new();
        // A TLS ClientHello (the https attempt) is not a request line.
        match r.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let mut parts = line.split_whitespace();
        let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
            return;
        };
        let (method, target) = (method.to_string(), target.to_string());
        let mut headers = HashMap::new();
        loop {
            let mut h = String::new();
            if r.read_line(&mut h).unwrap_or(0) == 0 {
                return;
            }
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.insert(k.trim().to_ascii_lowercase(), v.trim().to_string());
            }
        }
        let len: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
        let mut body = vec![0; len];
        if r.read_exact(&mut body).is_err() {
            return;
        }
        let req = Request {
            method,
            target,
            headers,
            body,
        };
        log.lock().unwrap().push(req.clone());
        let reply = handler(&req);
        let mut head = format!("HTTP/1.1 {} X\r\n", reply.status);
        for (k, v) in &reply.headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        if reply.until_close {
            head.push_str("Connection: close\r\n");
        } else {
            head.push_str(&format!("Content-Length: {}\r\n", reply.body.len()));
        }
        head.push_str("\r\n");
        if w.write_all(head.as_bytes()).is_err() {
            return;
        }
        if let Some(d) = reply.stall {
            std::thread::sleep(d);
            return;
        }
        let send = if req.method == "HEAD" {
            &[][..]
        } else {
            &reply.body[..reply.cut_after.unwrap_or(reply.body.len())]
        };
        // Slow clients and early closes are both fine here.
        let _ = w.write_all(send);
        let _ = w.flush();
        if reply.cut_after.is_some() || reply.until_close {
            let _ = w.shutdown(std::net::Shutdown::Both);
            return;
        }
    }
}

fn endpoint(s: &Server, repo: &str) -> Endpoint {
    Endpoint {
        registry: s.addr(),
        repository: repo.into(),
        insecure: true,
    }
}

fn client(s: &Server, creds: Option<(&str, &str)>) -> Client {
    client_with(s, creds, DEFAULT_CHUNK_SIZE)
}

fn client_with(s: &Server, creds: Option<(&str, &str)>, chunk_size: u64) -> Client {
    let creds = creds.map(|(u, p)| Credentials {
        username: u.into(),
        password: p.into(),
    });
    let opts = ClientOptions {
        tls: TlsSettings::default(),
        creds,
        insecure: true,
        chunk_size,
    };
    Client::new(endpoint(s, "lib/x"), opts).unwrap()
}

fn manifest_bytes() -> Vec<u8> {
    let d = |c: char| format!("sha256:{}", c.to_string().repeat(64));
    serde_json::to_vec(&serde_json::json!({
        "schemaVersion": 2, "mediaType": DOCKER_MANIFEST,
        "config": {"mediaType": manifest::DOCKER_CONFIG, "digest": d('a'), "size": 2},
        "layers": [{"mediaType": manifest::DOCKER_LAYER_GZIP, "digest": d('b'), "size": 3}],
    }))
    .unwrap()
}

fn read_all(mut r: impl Read) -> io::Result<Vec<u8>> {
    let mut v = Vec::new();
    r.read_to_end(&mut v)?;
    Ok(v)
}

#[test]
fn www_authenticate_parsing() {
    let c = parse_www_authenticate(
        r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull,push""#,
    );
    assert_eq!(
        c,
        Some(Challenge::Bearer {
            realm: "https://auth.docker.io/token".into(),
            service: Some("registry.docker.io".into()),
            scope: Some("repository:library/busybox:pull,push".into()),
        })
    );
    // Unquoted values, odd case and spacing, an escaped quote.
    let c = parse_www_authenticate(r#"bearer  Realm=https://r.example/t , service = "a \"b\"""#);
    assert_eq!(
        c,
        Some(Challenge::Bearer {
            realm: "https://r.example/t".into(),
            service: Some("a \"b\"".into()),
            scope: None
        })
    );
    assert_eq!(
        parse_www_authenticate(r#"Basic realm="Registry Realm""#),
        Some(Challenge::Basic)
    );
    assert_eq!(parse_www_authenticate("Basic"), Some(Challenge::Basic));
    // Several challenges: Bearer is preferred.
    let c = parse_www_authenticate(r#"Basic realm="x", Bearer realm="https://t.example/token",service="s""#);
    assert!(
        matches!(c, Some(Challenge::Bearer { ref realm, .. }) if realm == "https://t.example/token"),
        "{c:?}"
    );
    // A Bearer challenge without a realm cannot be answered.
    assert_eq!(parse_www_authenticate(r#"Bearer service="s""#), None);
    assert_eq!(parse_www_authenticate("Negotiate abc=="), None);
    assert_eq!(parse_www_authenticate(""), None);
}

#[test]
fn url_helpers() {
    assert_eq!(
        resolve("http://h:1/v2/x/blobs/uploads/", "/v2/x/blobs/uploads/u?s=1").unwrap(),
        "http://h:1/v2/x/blobs/uploads/u?s=1"
    );
    assert_eq!(resolve("http://h:1/v2/a/b?q=1", "c").unwrap(), "http://h:1/v2/a/c");
    assert_eq!(
        resolve("https://h/v2/", "//s3.example/b").unwrap(),
        "https://s3.example/b"
    );
    assert_eq!(resolve("https://h/v2/", "http://o/b").unwrap(), "http://o/b");
    assert_eq!(origin("https://h:5000/v2/x?y"), "https://h:5000");
    assert_eq!(origin("https://h:5000"), "https://h:5000");
    assert_eq!(enc("sha256:ab/c d"), "sha256%3Aab/c%20d");
    assert_eq!(
        with_query("http://h/u?_state=a", "digest=d"),
        "http://h/u?_state=a&digest=d"
    );
    assert_eq!(crate::registry::base64::encode(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(crate::registry::base64::encode(b"ab"), "YWI=");
    assert_eq!(crate::registry::base64::encode(b"a"), "YQ==");
    assert_eq!(
        next_link(r#"</v2/x/tags/list?last=b&n=2>; rel="next""#).as_deref(),
        Some("/v2/x/tags/list?last=b&n=2")
    );
    assert_eq!(next_link(r#"<http://a/p>; rel="prev""#), None);
    assert!(check_repo("library/busybox").is_ok());
    for bad in ["", "a//b", "../x", "a/..", "A", "a?b", "a b", "a/b/"] {
        assert!(check_repo(bad).is_err(), "{bad}");
    }
    assert!(check_reference("v1.2_3-x").is_ok());
    for bad in ["", "a/b", "sha256:xyz", "-x", "a?b"] {
        assert!(check_reference(bad).is_err(), "{bad}");
    }
}

/// A registry with a Bearer token service at /token that accepts user:pass
/// and hands out the token in `valid`.
fn bearer_registry(valid: Arc<Mutex<String>>, issued: Arc<Mutex<u32>>) -> Server {
    let port = Arc::new(Mutex::new(0u16));
    let p = port.clone();
    let manifest = manifest_bytes();
    let s = Server::start(move |r| {
        let realm = format!("http://127.0.0.1:{}/token", p.lock().unwrap());
        let challenge = format!(r#"Bearer realm="{realm}",service="test-registry""#);
        match r.path() {
            "/token" => {
                if r.header("authorization")
                    != Some(&basic_auth(&Credentials {
                        username: "user".into(),
                        password: "pass".into(),
                    }))
                {
                    return Reply::new(401).body(r#"{"details":"bad credentials"}"#);
                }
                if r.query("service").as_deref() != Some("test-registry") {
                    return Reply::new(400);
                }
                let mut n = issued.lock().unwrap();
                *n += 1;
                let t = format!("T{n}");
                *valid.lock().unwrap() = t.clone();
                Reply::new(200).body(format!(r#"{{"access_token":"{t}","expires_in":300}}"#))
            }
            "/v2/" if r.header("authorization") != Some(format!("Bearer {}", valid.lock().unwrap()).as_str()) => {
                Reply::new(401).header("WWW-Authenticate", challenge)
            }
            "/v2/" => Reply::new(200),
            _ => {
                let want = format!("Bearer {}", valid.lock().unwrap());
                if r.header("authorization") != Some(want.as_str()) {
                    return Reply::new(401)
                        .header(
                            "WWW-Authenticate",
                            format!(r#"{challenge},scope="repository:lib/x:pull""#),
                        )
                        .body(r#"{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}"#);
                }
                if r.path() == "/v2/lib/x/manifests/latest" {
                    Reply::new(200)
                        .header("Content-Type", DOCKER_MANIFEST)
                        .body(manifest.clone())
                } else {
                    Reply::new(404).body(r#"{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}"#)
                }
            }
        }
    });
    *port.lock().unwrap() = s.port;
    s
}

#[test]
fn bearer_auth_dance_caches_and_refreshes_tokens() {
    let valid = Arc::new(Mutex::new(String::from("none yet")));
    let issued = Arc::new(Mutex::new(0));
    let s = bearer_registry(valid.clone(), issued.clone());
    let c = client(&s, Some(("user", "pass")));
    let f = c
        .get_manifest("lib/x", "latest", &[DOCKER_MANIFEST, OCI_MANIFEST])
        .unwrap();
    assert_eq!(f.bytes, manifest_bytes());
    assert_eq!(f.media_type, DOCKER_MANIFEST);
    assert_eq!(f.digest, digest_of(&manifest_bytes()));
    let token_req = s.requests().into_iter().find(|r| r.path() == "/token").unwrap();
    assert_eq!(token_req.query("scope").as_deref(), Some("repository:lib/x:pull"));
    let m = s
        .requests()
        .into_iter()
        .find(|r| r.path() == "/v2/lib/x/manifests/latest")
        .unwrap();
    assert_eq!(
        m.header("accept"),
        Some(format!("{DOCKER_MANIFEST}, {OCI_MANIFEST}").as_str())
    );
    assert!(m.header("user-agent").unwrap().starts_with("casco/"), "{m:?}");

    // The token is reused.
    c.get_manifest("lib/x", "latest", &[DOCKER_MANIFEST]).unwrap();
    assert_eq!(*issued.lock().unwrap(), 1);
    assert_eq!(s.count("/v2/"), 1, "one ping for the client's life");

    // The registry stops honouring it: one 401, a new token, success.
    *valid.lock().unwrap() = "revoked".into();
    c.get_manifest("lib/x", "latest", &[DOCKER_MANIFEST]).unwrap();
    assert_eq!(*issued.lock().unwrap(), 2);

    // 404 with MANIFEST_UNKNOWN is NotFound; HEAD says None.
    let e = c.get_manifest("lib/x", "nosuch", &[DOCKER_MANIFEST]).unwrap_err();
    assert!(RegistryError::is_not_found(&e), "{e:#}");
    assert!(format!("{e:#}").contains("manifest unknown"), "{e:#}");
    assert_eq!(c.head_manifest("lib/x", "nosuch", &[DOCKER_MANIFEST]).unwrap(), None);

    // Wrong credentials: the token service refuses; typed Unauthorized.
    let bad = client(&s, Some(("user", "wrong")));
    let e = bad.get_manifest("lib/x", "latest", &[DOCKER_MANIFEST]).unwrap_err();
    assert!(RegistryError::is_unauthorized(&e), "{e:#}");
    assert!(
        format!("{e:#}").contains(&format!("authentication failed for {}", s.addr())),
        "{e:#}"
    );
    assert!(RegistryError::is_unauthorized(&bad.ping().unwrap_err()));
    c.ping().unwrap();
}

#[test]
fn basic_auth_is_sent_and_refused() {
    let s = Server::start(|r| {
        let good = super::basic_auth(&Credentials {
            username: "u".into(),
            password: "p".into(),
        });
        if r.header("authorization") != Some(good.as_str()) {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="reg""#);
        }
        match r.path() {
            "/v2/" => Reply::new(200),
            "/v2/lib/x/tags/list" => Reply::new(200).body(r#"{"name":"lib/x","tags":["a"]}"#),
            _ => Reply::new(404),
        }
    });
    let c = client(&s, Some(("u", "p")));
    c.ping().unwrap();
    assert_eq!(c.list_tags("lib/x").unwrap(), vec!["a"]);
    let e = client(&s, Some(("u", "nope"))).list_tags("lib/x").unwrap_err();
    assert!(RegistryError::is_unauthorized(&e), "{e:#}");
    let e = client(&s, None).list_tags("lib/x").unwrap_err();
    assert!(RegistryError::is_unauthorized(&e), "{e:#}");
    // Basic credentials are sent again with each request, not retried on 401.
    let before = s.requests().len();
    let _ = client(&s, Some(("u", "nope"))).list_tags("lib/x");
    assert_eq!(s.requests().len() - before, 2, "a ping and one try");
}

#[test]
fn blob_redirect_drops_authorization_and_range_resumes() {
    let blob: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let digest = digest_of(&blob);
    let b = blob.clone();
    // Blob storage: honours Range, or (?ignore) serves the whole blob.
    let storage = Server::start(move |r| {
        let range = r
            .header("range")
            .and_then(|v| v.strip_prefix("bytes="))
            .and_then(|v| v.strip_suffix('-'));
        match (range.and_then(|s| s.parse::<usize>().ok()), r.query("ignore").is_some()) {
            (Some(start), false) => Reply::new(206)
                .header("Content-Range", format!("bytes {start}-{}/{}", b.len() - 1, b.len()))
                .body(b[start..].to_vec()),
            _ => Reply::new(200).body(b.clone()),
        }
    });
    let storage_url = storage.url();
    let d = digest.clone();
    let s = Server::start(move |r| {
        if r.path() == "/v2/" {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        if r.header("authorization").is_none() {
            return Reply::new(401).header("WWW-Authenticate", r#"Basic realm="r""#);
        }
        if r.path() == format!("/v2/lib/x/blobs/{d}") {
            let q = if r.header("x-ignore").is_some() {
                "&ignore=1"
            } else {
                ""
            };
            return Reply::new(307).header("Location", format!("{storage_url}/store/blob?sig=abc{q}"));
        }
        Reply::new(404)
    });
    let c = client(&s, Some(("u", "p")));
    assert_eq!(read_all(c.get_blob("lib/x", &digest, 0).unwrap()).unwrap(), blob);
    let hit = storage.requests();
    assert_eq!(hit[0].path(), "/store/blob");
    assert!(hit.iter().all(|r| r.header("authorization").is_none()), "{hit:?}");
    assert!(
        s.requests()
            .iter()
            .filter(|r| r.path() != "/v2/")
            .all(|r| r.header("authorization").is_some())
    );

    // From an offset: a Range request, a 206, the tail.
    assert_eq!(
        read_all(c.get_blob("lib/x", &digest, 70_000).unwrap()).unwrap(),
        &blob[70_000..]
    );
    assert_eq!(storage.requests().last().unwrap().header("range"), Some("bytes=70000-"));
}

#[test]
fn range_ignored_and_truncated_bodies() {
    let blob: Vec<u8> = (0..50_000u32).map(|i| (i % 13) as u8).collect();
    let digest = digest_of(&blob);
    let b = blob.clone();
    let cut = Arc::new(Mutex::new(true));
    let cut2 = cut.clone();
    let s = Server::start(move |r| {
        if r.path() == "/v2/" {
            return Reply::new(200);
        }
        // The first answer breaks off after 20000 bytes; Range is ignored.
        let mut reply = Reply::new(200).body(b.clone());
        if std::mem::replace(&mut *cut2.lock().unwrap(), false) {
            reply.cut_after = Some(20_000);
        }
        reply
    });
    let c = client(&s, None);
    let mut r = c.get_blob("lib/x", &digest, 0).unwrap();
    let mut got = Vec::new();
    let err = r.read_to_end(&mut got).unwrap_err();
    assert!(got.len() <= 20_000, "a short body must fail, not end early ({err})");
    // Resume where it broke: the server ignores Range, the client skips.
    let tail = read_all(c.get_blob("lib/x", &digest, got.len() as u64).unwrap()).unwrap();
    got.extend(tail);
    assert_eq!(got, blob);
    assert!(!*cut.lock().unwrap());
}

#[test]
fn stalled_body_times_out() {
    let s = Server::start(|r| {
        if r.path() == "/v2/" {
            return Reply::new(200);
        }
        Reply {
            stall: Some(Duration::from_secs(20)),
            ..Reply::new(200).body(vec![0u8; 1000])
        }
    });
    let opts = ClientOptions {
        insecure: true,
        ..ClientOptions::default()
    };
    let c = Client::with_timeout(endpoint(&s, "lib/x"), opts, Duration::from_secs(1)).unwrap();
    let started = Instant::now();
    let d = format!("sha256:{}", "0".repeat(64));
    let res = c.get_blob("lib/x", &d, 0).and_then(|r| read_all(r).map_err(Into::into));
    assert!(res.is_err());
    assert!(started.elapsed() < Duration::from_secs(10), "{:?}", started.elapsed());
}

#[test]
fn manifest_limits_and_digest_checks() {
    let m = manifest_bytes();
    let good = digest_of(&m);
    let m2 = m.clone();
    let s = Server::start(move |r| match r.path() {
        "/v2/" => Reply::new(200),
        "/v2/lib/x/manifests/big" => Reply::new(200).body(vec![b' '; (MAX_MANIFEST + 1) as usize]),
        "/v2/lib/x/manifests/endless" => Reply {
            until_close: true,
            ..Reply::new(200).body(vec![b' '; 6 << 20])
        },
        "/v2/lib/x/manifests/lying" => Reply::new(200)
            .header("Docker-Content-Digest", format!("sha256:{}", "f".repeat(64)))
            .body(m2.clone()),
        p if p.starts_with("/v2/lib/x/manifests/") => Reply::new(200)
            .header("Content-Type", "application/json; charset=utf-8")
            .body(m2.clone()),
        _ => Reply::new(404),
    });
    let c = client(&s, None);
    for tag in ["big", "endless"] {
        let e = c.get_manifest("lib/x", tag, &[OCI_MANIFEST]).unwrap_err();
        assert!(
            matches!(e.downcast_ref::<RegistryError>(), Some(RegistryError::TooLarge { .. })),
            "{tag}: {e:#}"
        );
    }
    let e = c.get_manifest("lib/x", "lying", &[OCI_MANIFEST]).unwrap_err();
    assert!(format!("{e:#}").contains("digest mismatch"), "{e:#}");
    // By digest: it must hash to that digest.
    let f = c.get_manifest("lib/x", &good, &[OCI_MANIFEST]).unwrap();
    assert_eq!(f.digest, good);
    // A generic content type: the manifest's mediaType is used.
    assert_eq!(f.media_type, DOCKER_MANIFEST);
    let other = format!("sha256:{}", "e".repeat(64));
    let e = c.get_manifest("lib/x", &other, &[OCI_MANIFEST]).unwrap_err();
    assert!(format!("{e:#}").contains(&format!("expected {other}")), "{e:#}");
    // Bad input never reaches the server.
    let before = s.requests().len();
    assert!(c.get_manifest("lib/x", "sha256:../../x", &[]).is_err());
    assert!(c.get_blob("lib/x", "sha256:ABC", 0).is_err());
    assert!(c.get_manifest("../x", "latest", &[]).is_err());
    assert_eq!(s.requests().len(), before);
}

type Shared = Arc<Mutex<HashMap<String, Vec<u8>>>>;

/// A registry that keeps uploads in memory and checks their digests.
fn upload_registry() -> (Server, Shared) {
    let blobs: Shared = Arc::new(Mutex::new(HashMap::new()));
    let sessions: Shared = Arc::new(Mutex::new(HashMap::new()));
    let port = Arc::new(Mutex::new(0u16));
    let (b, p) = (blobs.clone(), port.clone());
    let s = Server::start(move |r| {
        let path = r.path().to_string();
        if path == "/v2/" {
            return Reply::new(200);
        }
        if r.method == "POST" && path == "/v2/lib/x/blobs/uploads/" {
            if let Some(d) = r.query("mount") {
                assert_eq!(r.query("from").as_deref(), Some("other/repo"));
                return if b.lock().unwrap().contains_key(&d) {
                    Reply::new(201)
                } else {
                    sessions.lock().unwrap().insert("m".into(), Vec::new());
                    Reply::new(202).header("Location", "/v2/lib/x/blobs/uploads/m")
                };
            }
            let id = format!("u{}", sessions.lock().unwrap().len());
            sessions.lock().unwrap().insert(id.clone(), Vec::new());
            // A relative Location first.
            return Reply::new(202).header("Location", format!("/v2/lib/x/blobs/uploads/{id}?_state=s0"));
        }
        if let Some(id) = path.strip_prefix("/v2/lib/x/blobs/uploads/") {
            let mut sess = sessions.lock().unwrap();
            if r.method == "DELETE" {
                sess.remove(id);
                return Reply::new(204);
            }
            let Some(data) = sess.get_mut(id) else {
                return Reply::new(404);
            };
            if r.method == "PATCH" {
                let range = r.header("content-range").unwrap_or("");
                let want = format!("{}-{}", data.len(), data.len() + r.body.len() - 1);
                if range != want {
                    return Reply::new(416).body(format!("range {range}, want {want}"));
                }
                data.extend_from_slice(&r.body);
                // An absolute Location next.
                return Reply::new(202)
                    .header(
                        "Location",
                        format!(
                            "http://127.0.0.1:{}/v2/lib/x/blobs/uploads/{id}?_state=s{}",
                            p.lock().unwrap(),
                            data.len()
                        ),
                    )
                    .header("Range", format!("0-{}", data.len() - 1));
            }
            if r.method == "PUT" {
                data.extend_from_slice(&r.body);
                let d = r.query("digest").unwrap_or_default();
                if digest_of(data) != d {
                    return Reply::new(400)
                        .body(r#"{"errors":[{"code":"DIGEST_INVALID","message":"digest did not match"}]}"#);
                }
                b.lock().unwrap().insert(d.clone(), std::mem::take(data));
                return Reply::new(201).header("Docker-Content-Digest", d);
            }
        }
        if let Some(d) = path.strip_prefix("/v2/lib/x/blobs/") {
            return match b.lock().unwrap().get(d) {
                Some(data) => Reply::new(200).body(data.clone()),
                None => Reply::new(404),
            };
        }
        if let Some(tag) = path.strip_prefix("/v2/lib/x/manifests/") {
            assert_eq!(r.header("content-type"), Some(OCI_MANIFEST));
            let d = digest_of(&r.body);
            b.lock().unwrap().insert(format!("manifest:{tag}"), r.body.clone());
            return Reply::new(201).header("Docker-Content-Digest", d);
        }
        Reply::new(404)
    });
    *port.lock().unwrap() = s.port;
    (s, blobs)
}

#[test]
fn chunked_and_monolithic_uploads() {
    let (s, blobs) = upload_registry();
    let data: Vec<u8> = (0..25u8).collect();
    let digest = digest_of(&data);
    let c = client_with(&s, None, 10);
    assert_eq!(c.blob_exists("lib/x", &digest).unwrap(), None);
    c.upload_blob("lib/x", &digest, 25, Box::new(io::Cursor::new(data.clone())))
        .unwrap();
    assert_eq!(blobs.lock().unwrap().get(&digest), Some(&data));
    let patches: Vec<String> = s
        .requests()
        .iter()
        .filter(|r| r.method == "PATCH")
        .map(|r| r.header("content-range").unwrap().to_string())
        .collect();
    assert_eq!(patches, ["0-9", "10-19", "20-24"]);
    let put = s.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert!(
        put.body.is_empty() && put.target.contains("_state=s25&digest=sha256%3A"),
        "{put:?}"
    );
    assert_eq!(c.blob_exists("lib/x", &digest).unwrap(), Some(25));

    // Monolithic: one PUT with the body.
    let small = b"hello world".to_vec();
    let sd = digest_of(&small);
    let before = s.requests().len();
    client(&s, None)
        .upload_blob(
            "lib/x",
            &sd,
            small.len() as u64,
            Box::new(io::Cursor::new(small.clone())),
        )
        .unwrap();
    let reqs: Vec<Request> = s.requests()[before..]
        .iter()
        .filter(|r| r.path() != "/v2/")
        .cloned()
        .collect();
    assert_eq!(
        reqs.iter().map(|r| r.method.as_str()).collect::<Vec<_>>(),
        ["POST", "PUT"]
    );
    assert_eq!(reqs[1].body, small);

    // A source shorter or longer than announced is an error.
    let e = c
        .upload_blob("lib/x", &sd, 20, Box::new(io::Cursor::new(small.clone())))
        .unwrap_err();
    assert!(
        format!("{e:#}").to_lowercase().contains("short") || format!("{e:#}").contains("PUT"),
        "{e:#}"
    );
    let e = c
        .upload_blob("lib/x", &sd, 5, Box::new(io::Cursor::new(small.clone())))
        .unwrap_err();
    assert!(
        format!("{e:#}").contains("400") || format!("{e:#}").contains("more than"),
        "{e:#}"
    );
    // A wrong digest is refused by the registry, with its message.
    let e = c
        .upload_blob("lib/x", &digest, 11, Box::new(io::Cursor::new(small.clone())))
        .unwrap_err();
    assert!(format!("{e:#}").contains("digest did not match"), "{e:#}");

    // Mounts: 201 when the registry has the blob, 202 (and the session closed) otherwise.
    assert!(c.mount_blob("lib/x", &digest, "other/repo").unwrap());
    let none = format!("sha256:{}", "9".repeat(64));
    assert!(!c.mount_blob("lib/x", &none, "other/repo").unwrap());
    assert_eq!(s.requests().last().unwrap().method, "DELETE");

    // Manifests: the digest comes back.
    let m = manifest_bytes();
    assert_eq!(c.put_manifest("lib/x", "v1", OCI_MANIFEST, &m).unwrap(), digest_of(&m));
    assert_eq!(blobs.lock().unwrap().get("manifest:v1"), Some(&m));
}

#[test]
fn tags_follow_link_pagination() {
    let s = Server::start(|r| match (r.path(), r.query("last").as_deref()) {
        ("/v2/", _) => Reply::new(200),
        ("/v2/lib/x/tags/list", None) => Reply::new(200)
            .header("Link", r#"</v2/lib/x/tags/list?last=b&n=2>; rel="next""#)
            .body(r#"{"name":"lib/x","tags":["a","b"]}"#),
        ("/v2/lib/x/tags/list", Some("b")) => Reply::new(200).body(r#"{"name":"lib/x","tags":["c"]}"#),
        _ => Reply::new(404).body(r#"{"errors":[{"code":"NAME_UNKNOWN","message":"repository name not known"}]}"#),
    });
    let c = client(&s, None);
    assert_eq!(c.list_tags("lib/x").unwrap(), ["a", "b", "c"]);
    let e = c.list_tags("lib/y").unwrap_err();
    assert!(RegistryError::is_not_found(&e), "{e:#}");
}

#[test]
fn plain_http_only_when_insecure() {
    let s = Server::start(|_| Reply::new(200));
    // insecure: https fails against a plain server, http is used.
    client(&s, None).ping().unwrap();
    // Secure: the https failure is the answer.
    let opts = ClientOptions::default();
    let ep = Endpoint {
        registry: s.addr(),
        repository: "lib/x".into(),
        insecure: false,
    };
    let e = Client::new(ep, opts).unwrap().ping().unwrap_err();
    assert!(format!("{e:#}").contains("https://"), "{e:#}");
    // Not a registry at all.
    let web = Server::start(|_| Reply::new(404));
    let e = client(&web, None).ping().unwrap_err();
    assert!(format!("{e:#}").contains("does not answer as a registry"), "{e:#}");
}

#[test]
fn client_is_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<Client>();
}

/// `openssl s_server -WWW` in a directory: a TLS server (one connection at
/// a time) that serves files, enough for a ping and a blob.
struct TlsServer {
    child: std::process::Child,
    port: u16,
}

impl TlsServer {
    fn start(dir: &std::path::Path, certs: &std::path::Path, require_client_cert: bool) -> TlsServer {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut cmd = std::process::Command::new("openssl");
        cmd.args(["s_server", "-quiet", "-WWW", "-accept", &format!("127.0.0.1:{port}")])
            .arg("-cert")
            .arg(certs.join("server.crt"))
            .arg("-key")
            .arg(certs.join("server.key"))
            .current_dir(dir)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        if require_client_cert {
            cmd.arg("-Verify").arg("1").arg("-CAfile").arg(certs.join("ca.crt"));
        }
        let child = cmd
            .spawn()
            .expect("this test needs the openssl command (package openssl)");
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "openssl s_server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
        TlsServer { child, port }
    }
}

impl Drop for TlsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn tls_trust_comes_from_the_certs_dir() {
    let certs = tempfile::tempdir().unwrap();
    crate::registry::certs::tests::make_certs(certs.path());
    let root = tempfile::tempdir().unwrap();
    // s_server refuses paths with ':' (digests): a tag list it is.
    let tags_dir = root.path().join("v2/lib/x/tags");
    std::fs::create_dir_all(&tags_dir).unwrap();
    std::fs::write(tags_dir.join("list"), r#"{"name":"lib/x","tags":["over-tls"]}"#).unwrap();
    let blob = vec!["over-tls".to_string()];

    // certs.d/127.0.0.1:PORT holds the CA (and a client certificate).
    let base = tempfile::tempdir().unwrap();
    let fetch = |port: u16, verify: bool, with_ca: bool, with_client: bool| -> Result<Vec<String>> {
        let registry = format!("127.0.0.1:{port}");
        let host_dir = base.path().join(&registry);
        let _ = std::fs::remove_dir_all(&host_dir);
        std::fs::create_dir(&host_dir).unwrap();
        if with_ca {
            std::fs::copy(certs.path().join("ca.crt"), host_dir.join("ca.crt")).unwrap();
        }
        if with_client {
            std::fs::copy(certs.path().join("client.cert"), host_dir.join("client.cert")).unwrap();
            std::fs::copy(certs.path().join("client.key"), host_dir.join("client.key")).unwrap();
        }
        let tls = TlsSettings::for_registry_in(&registry, None, verify, &[base.path().to_path_buf()])?;
        let ep = Endpoint {
            registry,
            repository: "lib/x".into(),
            insecure: false,
        };
        let c = Client::new(
            ep,
            ClientOptions {
                tls,
                ..ClientOptions::default()
            },
        )?;
        c.list_tags("lib/x")
    };

    let s = TlsServer::start(root.path(), certs.path(), false);
    assert_eq!(fetch(s.port, true, true, false).unwrap(), blob);
    let e = fetch(s.port, true, false, false).unwrap_err();
    assert!(format!("{e:#}").contains("https://"), "an unknown CA must fail: {e:#}");
    // --tls-verify=false: the certificate is not checked.
    assert_eq!(fetch(s.port, false, false, false).unwrap(), blob);
    drop(s);

    let s = TlsServer::start(root.path(), certs.path(), true);
    assert_eq!(fetch(s.port, true, true, true).unwrap(), blob);
    assert!(
        fetch(s.port, true, true, false).is_err(),
        "the server requires a client certificate"
    );
}
