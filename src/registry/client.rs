//! The distribution protocol (OCI distribution spec / Docker registry v2)
//! against one registry endpoint, over ureq.
//!
//! The first request pings `/v2/` to learn the scheme and the
//! authentication the registry wants: HTTPS first, and for an insecure
//! registry (or `--tls-verify=false`) unverified TLS, then plain HTTP when
//! the server does not speak TLS, as podman does. A 401 names a Bearer token
//! service (fetched anonymously or with Basic credentials, cached per scope
//! for the client's life and fetched again once on a later 401) or asks for
//! Basic credentials.
//!
//! Redirects are followed by hand so that our Authorization header never
//! goes to another host (blob storage). Every digest is validated before it
//! goes into a URL; manifests are read with a size limit and checked against
//! the digest they were asked by and the one the registry announces. Blob
//! bodies are streamed as served (no transparent decompression): the caller
//! verifies them.

use std::collections::HashMap;
use std::io::{self, Read};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use serde::Deserialize;
use ureq::http::{self, Response};
use ureq::{Agent, Body, SendBody};

use super::certs::TlsSettings;
use super::error::RegistryError;
use super::manifest::{self, MAX_MANIFEST};
use super::{Credentials, Endpoint};
use crate::image::blobs::digest_of;
use crate::image::reference::validate_digest;

/// Blobs larger than this are uploaded in chunks of this size.
pub const DEFAULT_CHUNK_SIZE: u64 = 16 << 20;
/// A connection that sends or takes nothing for this long has failed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How much of an error body is read, and how much of it a message quotes.
const ERROR_BODY_LIMIT: u64 = 16 << 10;
const EXCERPT: usize = 300;
const MAX_REDIRECTS: usize = 10;
const MAX_TOKEN_RESPONSE: u64 = 1 << 20;
const MAX_TAGS_PAGE: u64 = 8 << 20;
const MAX_TAG_PAGES: usize = 10_000;

pub struct ClientOptions {
    pub tls: TlsSettings,
    pub creds: Option<Credentials>,
    /// Plain HTTP and unverified TLS allowed (registries.conf `insecure`).
    pub insecure: bool,
    /// Uploads above this size go in chunks of this size.
    pub chunk_size: u64,
}

impl Default for ClientOptions {
    fn default() -> ClientOptions {
        ClientOptions {
            tls: TlsSettings::default(),
            creds: None,
            insecure: false,
            chunk_size: DEFAULT_CHUNK_SIZE,
        }
    }
}

/// A manifest as fetched: its bytes, its media type and its digest (sha256
/// of the bytes).
#[derive(Debug, Clone)]
pub struct Fetched {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: String,
}

/// What a registry asked for in `WWW-Authenticate`.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Challenge {
    Bearer {
        realm: String,
        service: Option<String>,
        scope: Option<String>,
    },
    Basic,
}

struct Token {
    value: String,
    expires: Instant,
}

/// A client of one registry endpoint. Send + Sync: pull shares one between
/// its layer threads.
pub struct Client {
    endpoint: Endpoint,
    agent: Agent,
    creds: Option<Credentials>,
    insecure: bool,
    chunk_size: u64,
    /// `scheme://host[:port]`, known after the first ping.
    base: Mutex<Option<String>>,
    challenge: Mutex<Option<Challenge>>,
    tokens: Mutex<HashMap<String, Token>>,
}

/// A request body: nothing, bytes that can be sent again, or a stream that
/// can be sent once.
enum ReqBody<'a> {
    None,
    Bytes(&'a [u8]),
    Stream(&'a mut dyn Read, u64),
}

impl ReqBody<'_> {
    fn replayable(&self) -> bool {
        !matches!(self, ReqBody::Stream(..))
    }
}

struct Req<'a> {
    method: &'static str,
    url: String,
    headers: Vec<(&'static str, String)>,
    body: ReqBody<'a>,
    /// Token scopes the request needs (`repository:NAME:pull`).
    scopes: Vec<String>,
    /// What the request is about, for messages.
    what: String,
}

impl<'a> Req<'a> {
    fn new(method: &'static str, url: String, what: String, scopes: Vec<String>) -> Req<'a> {
        Req {
            method,
            url,
            headers: Vec::new(),
            body: ReqBody::None,
            scopes,
            what,
        }
    }
    fn header(mut self, k: &'static str, v: impl Into<String>) -> Self {
        self.headers.push((k, v.into()));
        self
    }
    fn body(mut self, b: ReqBody<'a>) -> Self {
        self.body = b;
        self
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn pull_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull")]
}

fn push_scope(repo: &str) -> Vec<String> {
    vec![format!("repository:{repo}:pull,push")]
}

/// Repository names: lowercase path components, nothing that could change
/// the URL.
fn check_repo(repo: &str) -> Result<()> {
    let ok = !repo.is_empty()
        && repo.len() <= 255
        && repo.split('/').all(|c| {
            !c.is_empty()
                && c != "."
                && c != ".."
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
        });
    if !ok {
        bail!("invalid repository name {repo:?}");
    }
    Ok(())
}

/// A manifest reference: a digest (validated) or a tag.
fn check_reference(reference: &str) -> Result<()> {
    if reference.contains(':') {
        return validate_digest(reference);
    }
    let ok = !reference.is_empty()
        && reference.len() <= 128
        && reference
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'))
        && !reference.starts_with(['.', '-']);
    if !ok {
        bail!("invalid tag {reference:?}");
    }
    Ok(())
}

/// Percent-encodes a query value.
fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn with_query(url: &str, query: &str) -> String {
    let sep = if url.contains('?') { '&' } else { '?' };
    format!("{url}{sep}{query}")
}

/// `scheme://authority` of a URL.
fn origin(url: &str) -> &str {
    match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            let end = rest.find(['/', '?', '#']).map(|j| i + 3 + j).unwrap_or(url.len());
            &url[..end]
        }
        None => "",
    }
}

/// Resolves a Location or Link target against the URL it came from.
fn resolve(from: &str, location: &str) -> Result<String> {
    let location = location.trim();
    if location.starts_with("http://") || location.starts_with("https://") {
        return Ok(location.to_string());
    }
    let scheme_end = from.find("://").ok_or_else(|| anyhow!("invalid URL {from}"))?;
    if let Some(rest) = location.strip_prefix("//") {
        return Ok(format!("{}://{rest}", &from[..scheme_end]));
    }
    if location.starts_with('/') {
        return Ok(format!("{}{location}", origin(from)));
    }
    if location.is_empty() {
        bail!("empty Location from {from}");
    }
    let path_end = from.find(['?', '#']).unwrap_or(from.len());
    let dir_end = from[..path_end].rfind('/').map(|i| i + 1).unwrap_or(path_end);
    if dir_end <= scheme_end + 3 {
        return Ok(format!("{}/{location}", origin(from)));
    }
    Ok(format!("{}{location}", &from[..dir_end]))
}

fn header<'r>(resp: &'r Response<Body>, name: &str) -> Option<&'r str> {
    resp.headers().get(name).and_then(|v| v.to_str().ok())
}

fn basic_auth(c: &Credentials) -> String {
    format!(
        "Basic {}",
        super::base64::encode(format!("{}:{}", c.username, c.password).as_bytes())
    )
}

/// Parses a `WWW-Authenticate` value into its challenges: (scheme in lower
/// case, parameters with lower-case names).
fn parse_challenges(h: &str) -> Vec<(String, Vec<(String, String)>)> {
    let b = h.as_bytes();
    let mut out: Vec<(String, Vec<(String, String)>)> = Vec::new();
    let mut i = 0;
    let is_tchar = |c: u8| c.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~/:".contains(&c);
    while i < b.len() {
        while i < b.len() && (b[i] == b' ' || b[i] == b',' || b[i] == b'\t') {
            i += 1;
        }
        let start = i;
        while i < b.len() && is_tchar(b[i]) {
            i += 1;
        }
        if start == i {
            // Something that is not a token: skip a character.
            i += 1;
            continue;
        }
        let token = &h[start..i];
        let mut j = i;
        while j < b.len() && b[j] == b' ' {
            j += 1;
        }
        if j < b.len() && b[j] == b'=' {
            // A parameter of the current challenge.
            j += 1;
            while j < b.len() && b[j] == b' ' {
                j += 1;
            }
            let mut value = String::new();
            if j < b.len() && b[j] == b'"' {
                j += 1;
                while j < b.len() && b[j] != b'"' {
                    if b[j] == b'\\' && j + 1 < b.len() {
                        j += 1;
                    }
                    let ch_len = h[j..].chars().next().map(char::len_utf8).unwrap_or(1);
                    value.push_str(&h[j..j + ch_len]);
                    j += ch_len;
                }
                j += 1;
            } else {
                let vs = j;
                while j < b.len() && b[j] != b',' {
                    j += 1;
                }
                value = h[vs..j].trim().to_string();
            }
            i = j;
            if let Some(last) = out.last_mut() {
                last.1.push((token.to_ascii_lowercase(), value));
            }
        } else {
            out.push((token.to_ascii_lowercase(), Vec::new()));
        }
    }
    out
}

/// The challenge casco answers: Bearer when offered (with a realm), else Basic.
fn parse_www_authenticate(h: &str) -> Option<Challenge> {
    let all = parse_challenges(h);
    let param = |ps: &[(String, String)], k: &str| ps.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    for (scheme, ps) in &all {
        if scheme == "bearer"
            && let Some(realm) = param(ps, "realm").filter(|r| !r.is_empty())
        {
            return Some(Challenge::Bearer {
                realm,
                service: param(ps, "service").filter(|s| !s.is_empty()),
                scope: param(ps, "scope").filter(|s| !s.is_empty()),
            });
        }
    }
    all.iter().any(|(s, _)| s == "basic").then_some(Challenge::Basic)
}

#[derive(Deserialize)]
struct ErrorsBody {
    #[serde(default)]
    errors: Vec<ErrorEntry>,
}

#[derive(Deserialize)]
struct ErrorEntry {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

#[derive(Deserialize)]
struct TokenBody {
    #[serde(default)]
    token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct TagList {
    #[serde(default)]
    tags: Option<Vec<String>>,
}

/// Printable, short.
fn excerpt(bytes: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(bytes)
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect::<String>()
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ");
    if s.chars().count() > EXCERPT {
        format!("{}...", s.chars().take(EXCERPT).collect::<String>())
    } else {
        s
    }
}

/// A reader that yields exactly `remaining` bytes of `inner`, and fails if
/// `inner` ends sooner.
struct Exact<'a> {
    inner: &'a mut dyn Read,
    remaining: u64,
}

impl Read for Exact<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.remaining == 0 {
            return Ok(0);
        }
        let want = buf.len().min(usize::try_from(self.remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        if n == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("the blob ended {} bytes short of its size", self.remaining),
            ));
        }
        self.remaining -= n as u64;
        Ok(n)
    }
}

impl Client {
    /// A client for `endpoint`; nothing is sent until the first call.
    pub fn new(endpoint: Endpoint, opts: ClientOptions) -> Result<Client> {
        Self::with_timeout(endpoint, opts, IDLE_TIMEOUT)
    }

    fn with_timeout(endpoint: Endpoint, opts: ClientOptions, idle: Duration) -> Result<Client> {
        // An empty repository: a client for the registry itself (login).
        if !endpoint.repository.is_empty() {
            check_repo(&endpoint.repository)?;
        }
        let insecure = opts.insecure || endpoint.insecure || !opts.tls.verify;
        let mut tls = opts.tls;
        if insecure {
            tls.verify = false;
        }
        let tls_config = tls
            .tls_config()
            .with_context(|| format!("TLS settings for {}", endpoint.registry))?;
        let agent = Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .user_agent(format!("casco/{}", env!("CARGO_PKG_VERSION")))
            .tls_config(tls_config)
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .timeout_per_read(Some(idle))
            .timeout_per_write(Some(idle))
            .build()
            .new_agent();
        Ok(Client {
            endpoint,
            agent,
            creds: opts.creds,
            insecure,
            chunk_size: opts.chunk_size.max(1),
            base: Mutex::new(None),
            challenge: Mutex::new(None),
            tokens: Mutex::new(HashMap::new()),
        })
    }

    /// The endpoint's repository (`library/busybox`).
    pub fn repository(&self) -> &str {
        &self.endpoint.repository
    }

    /// The registry's name as in references (`docker.io`).
    pub fn host(&self) -> &str {
        &self.endpoint.registry
    }

    /// Checks that the registry answers `/v2/` and, when credentials were
    /// given and it asks for authentication, that they are accepted (what
    /// `login` needs).
    pub fn ping(&self) -> Result<()> {
        let base = self.base()?;
        let challenge = lock(&self.challenge).clone();
        let (Some(c), Some(creds)) = (challenge, &self.creds) else {
            return Ok(());
        };
        let auth = match c {
            Challenge::Basic => basic_auth(creds),
            Challenge::Bearer { .. } => format!("Bearer {}", self.token(&[], true)?),
        };
        let url = format!("{base}/v2/");
        let resp = self.run_once("GET", &url, &[("Authorization", auth)], ReqBody::None)?;
        match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => Err(RegistryError::Unauthorized {
                registry: self.endpoint.registry.clone(),
                detail: "the credentials were refused".into(),
            }
            .into()),
            _ => Err(self.status_error(format!("GET {url}"), resp)),
        }
    }

    /// `scheme://host`, pinging the registry the first time.
    fn base(&self) -> Result<String> {
        let mut g = lock(&self.base);
        if let Some(b) = &*g {
            return Ok(b.clone());
        }
        let host = self.endpoint.api_host();
        let https = format!("https://{host}");
        let b = match self.ping_at(&https) {
            Ok(Ok(())) => https,
            Ok(Err(e)) => return Err(e),
            Err(tls_err) if self.insecure => {
                let http = format!("http://{host}");
                match self.ping_at(&http) {
                    Ok(Ok(())) => http,
                    Ok(Err(e)) => return Err(e),
                    Err(e) => {
                        return Err(anyhow!(e)
                            .context(format!("{https}: {tls_err}; and over plain HTTP"))
                            .context(format!("cannot reach registry {}", self.endpoint.registry)));
                    }
                }
            }
            Err(e) => {
                return Err(anyhow!(e).context(format!("cannot reach registry {} at {https}", self.endpoint.registry)));
            }
        };
        *g = Some(b.clone());
        Ok(b)
    }

    /// GET /v2/ at `base`: a transport error outside, a registry-level
    /// answer inside.
    fn ping_at(&self, base: &str) -> std::result::Result<Result<()>, ureq::Error> {
        let url = format!("{base}/v2/");
        let req = http::Request::builder().method("GET").uri(&url).body(SendBody::none());
        let req = match req {
            Ok(r) => r,
            Err(e) => return Ok(Err(anyhow!("invalid registry URL {url}: {e}"))),
        };
        let resp = self.agent.run(req)?;
        Ok(match resp.status().as_u16() {
            200..=299 => Ok(()),
            401 => {
                let c = header(&resp, "www-authenticate").and_then(parse_www_authenticate);
                if c.is_none() {
                    Err(anyhow!(
                        "registry {} asks for authentication in a way casco does not know",
                        self.endpoint.registry
                    ))
                } else {
                    *lock(&self.challenge) = c;
                    Ok(())
                }
            }
            s => Err(anyhow!(
                "{} does not answer as a registry: GET {url} gave HTTP status {s}",
                self.endpoint.registry
            )),
        })
    }

    /// A token for `scopes` from the Bearer realm: cached unless `fresh`.
    fn token(&self, scopes: &[String], fresh: bool) -> Result<String> {
        let key = scopes.join(" ");
        if !fresh {
            let tokens = lock(&self.tokens);
            let mut keys = vec![key.clone()];
            // A push token serves pulls of the same repository too.
            if let [s] = scopes
                && let Some(repo) = s.strip_suffix(":pull")
            {
                keys.push(format!("{repo}:pull,push"));
            }
            for k in keys {
                if let Some(t) = tokens.get(&k)
                    && t.expires > Instant::now()
                {
                    return Ok(t.value.clone());
                }
            }
        }
        let Some(Challenge::Bearer { realm, service, .. }) = lock(&self.challenge).clone() else {
            bail!("registry {} did not ask for a token", self.endpoint.registry);
        };
        if !(realm.starts_with("https://") || realm.starts_with("http://")) {
            bail!(
                "registry {} names an invalid token service {realm:?}",
                self.endpoint.registry
            );
        }
        let mut query: Vec<String> = Vec::new();
        if let Some(s) = &service {
            query.push(format!("service={}", enc(s)));
        }
        for s in scopes {
            query.push(format!("scope={}", enc(s)));
        }
        let what = format!("token from {realm}");
        let resp = match &self.creds {
            Some(c) if c.username == "<token>" => {
                // An identity token: OAuth2 refresh-token grant.
                query.push("grant_type=refresh_token".into());
                query.push("client_id=casco".into());
                query.push(format!("refresh_token={}", enc(&c.password)));
                let form = query.join("&");
                let headers = [("Content-Type", "application/x-www-form-urlencoded".to_string())];
                self.run_once("POST", &realm, &headers, ReqBody::Bytes(form.as_bytes()))
            }
            Some(c) => {
                let url = if query.is_empty() {
                    realm.clone()
                } else {
                    with_query(&realm, &query.join("&"))
                };
                self.run_once("GET", &url, &[("Authorization", basic_auth(c))], ReqBody::None)
            }
            None => {
                let url = if query.is_empty() {
                    realm.clone()
                } else {
                    with_query(&realm, &query.join("&"))
                };
                self.run_once("GET", &url, &[], ReqBody::None)
            }
        }
        .with_context(|| format!("get a {what}"))?;
        match resp.status().as_u16() {
            200 => {}
            401 | 403 => {
                let detail = if self.creds.is_some() {
                    "the token service refused the credentials"
                } else {
                    "the token service refused anonymous access"
                };
                return Err(RegistryError::Unauthorized {
                    registry: self.endpoint.registry.clone(),
                    detail: detail.into(),
                }
                .into());
            }
            _ => return Err(self.status_error(what, resp)),
        }
        let mut body = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_TOKEN_RESPONSE)
            .read_to_end(&mut body)
            .with_context(|| format!("read {what}"))?;
        let t: TokenBody = serde_json::from_slice(&body).with_context(|| format!("invalid {what}"))?;
        let value = t
            .token
            .filter(|t| !t.is_empty())
            .or(t.access_token.filter(|t| !t.is_empty()))
            .ok_or_else(|| anyhow!("the {what} holds no token"))?;
        let life = Duration::from_secs(t.expires_in.unwrap_or(60).max(60));
        let expires = Instant::now() + life.saturating_sub(Duration::from_secs(10));
        lock(&self.tokens).insert(
            key,
            Token {
                value: value.clone(),
                expires,
            },
        );
        Ok(value)
    }

    /// The Authorization header for a request needing `scopes`.
    fn authorization(&self, scopes: &[String], fresh: bool) -> Result<Option<String>> {
        let challenge = lock(&self.challenge).clone();
        Ok(match challenge {
            None => None,
            Some(Challenge::Basic) => self.creds.as_ref().map(basic_auth),
            Some(Challenge::Bearer { .. }) => Some(format!("Bearer {}", self.token(scopes, fresh)?)),
        })
    }

    /// One HTTP exchange, no redirects, no authentication logic.
    fn run_once(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, String)],
        body: ReqBody<'_>,
    ) -> Result<Response<Body>> {
        let mut b = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            b = b.header(*k, v.as_str());
        }
        let bad = |e: http::Error| anyhow!("invalid request {method} {url}: {e}");
        let resp = match body {
            ReqBody::None if matches!(method, "GET" | "HEAD" | "DELETE") => self.agent.run(b.body(()).map_err(bad)?),
            ReqBody::None => self
                .agent
                .run(b.header("Content-Length", "0").body(&[][..]).map_err(bad)?),
            ReqBody::Bytes(data) => self.agent.run(
                b.header("Content-Length", data.len().to_string())
                    .body(data)
                    .map_err(bad)?,
            ),
            ReqBody::Stream(r, len) => self.agent.run(
                b.header("Content-Length", len.to_string())
                    .body(SendBody::from_reader(r))
                    .map_err(bad)?,
            ),
        };
        resp.with_context(|| format!("{method} {url}"))
    }

    /// Sends `req` with authentication (answering a 401 once) and, for GET
    /// and HEAD, follows redirects; our Authorization only goes to the
    /// registry's own origin.
    fn send(&self, mut req: Req<'_>) -> Result<Response<Body>> {
        let base = self.base()?;
        let mut fresh = false;
        for attempt in 0..2 {
            let auth = self.authorization(&req.scopes, fresh)?;
            let body = std::mem::replace(&mut req.body, ReqBody::None);
            let replayable = body.replayable();
            let (resp, sent_body_back) = self.send_following(&req, &base, auth.as_deref(), body)?;
            if let Some(b) = sent_body_back {
                req.body = b;
            }
            if resp.status().as_u16() != 401 {
                return Ok(resp);
            }
            let challenge = header(&resp, "www-authenticate").and_then(parse_www_authenticate);
            if attempt == 0 && replayable && challenge.is_some() {
                if let Some(Challenge::Bearer { scope: Some(s), .. }) = &challenge {
                    for one in s.split(' ') {
                        if !one.is_empty() && !req.scopes.iter().any(|x| x == one) {
                            req.scopes.push(one.to_string());
                        }
                    }
                }
                let unchanged = *lock(&self.challenge) == challenge;
                if !(unchanged && auth.is_some() && matches!(challenge, Some(Challenge::Basic))) {
                    *lock(&self.challenge) = challenge;
                    fresh = true;
                    continue;
                }
            }
            let detail = match (&self.creds, &auth) {
                (None, _) => "the registry wants credentials (or the repository does not exist)".to_string(),
                _ => format!("{}: {}", req.what, self.error_detail(resp)),
            };
            return Err(RegistryError::Unauthorized {
                registry: self.endpoint.registry.clone(),
                detail,
            }
            .into());
        }
        unreachable!("the loop returns")
    }

    /// One request and its redirects. A replayable body comes back, for a
    /// retry after a 401.
    fn send_following<'b>(
        &self,
        req: &Req<'_>,
        base: &str,
        auth: Option<&str>,
        body: ReqBody<'b>,
    ) -> Result<(Response<Body>, Option<ReqBody<'b>>)> {
        let follow = matches!(req.method, "GET" | "HEAD");
        let mut url = req.url.clone();
        let mut hops = 0;
        let keep = match &body {
            ReqBody::None => Some(ReqBody::None),
            ReqBody::Bytes(b) => Some(ReqBody::Bytes(b)),
            ReqBody::Stream(..) => None,
        };
        let mut body = Some(body);
        loop {
            let mut headers: Vec<(&str, String)> = req.headers.iter().map(|(k, v)| (*k, v.clone())).collect();
            if let Some(a) = auth
                && origin(&url) == base
            {
                headers.push(("Authorization", a.to_string()));
            }
            let resp = self.run_once(req.method, &url, &headers, body.take().unwrap_or(ReqBody::None))?;
            let status = resp.status().as_u16();
            if !(follow && matches!(status, 301 | 302 | 303 | 307 | 308)) {
                return Ok((resp, keep));
            }
            let Some(loc) = header(&resp, "location") else {
                return Ok((resp, keep));
            };
            hops += 1;
            if hops > MAX_REDIRECTS {
                bail!("{}: more than {MAX_REDIRECTS} redirects", req.what);
            }
            url = resolve(&url, loc)?;
        }
    }

    fn error_detail(&self, resp: Response<Body>) -> String {
        let mut body = Vec::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_end(&mut body);
        if let Ok(e) = serde_json::from_slice::<ErrorsBody>(&body)
            && !e.errors.is_empty()
        {
            return excerpt(
                e.errors
                    .iter()
                    .map(|x| {
                        if x.message.is_empty() {
                            x.code.clone()
                        } else {
                            format!("{}: {}", x.code, x.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
                    .as_bytes(),
            );
        }
        excerpt(&body)
    }

    /// The typed error for an unexpected response.
    fn status_error(&self, what: String, resp: Response<Body>) -> anyhow::Error {
        let status = resp.status().as_u16();
        let mut body = Vec::new();
        let _ = resp
            .into_body()
            .into_reader()
            .take(ERROR_BODY_LIMIT)
            .read_to_end(&mut body);
        let parsed: Vec<ErrorEntry> = serde_json::from_slice::<ErrorsBody>(&body)
            .map(|e| e.errors)
            .unwrap_or_default();
        let detail = if parsed.is_empty() {
            excerpt(&body)
        } else {
            excerpt(
                parsed
                    .iter()
                    .map(|x| {
                        if x.message.is_empty() {
                            x.code.clone()
                        } else {
                            format!("{}: {}", x.code, x.message)
                        }
                    })
                    .collect::<Vec<_>>()
                    .join("; ")
                    .as_bytes(),
            )
        };
        let has = |c: &str| parsed.iter().any(|e| e.code == c);
        let e = if status == 401 || has("UNAUTHORIZED") {
            RegistryError::Unauthorized {
                registry: self.endpoint.registry.clone(),
                detail,
            }
        } else if status == 404 || has("MANIFEST_UNKNOWN") || has("BLOB_UNKNOWN") || has("NAME_UNKNOWN") {
            RegistryError::NotFound { what, detail }
        } else if status == 403 || has("DENIED") {
            RegistryError::Denied { what, detail }
        } else {
            RegistryError::Status { what, status, detail }
        };
        e.into()
    }

    fn url(&self, base: &str, repo: &str, rest: &str) -> String {
        format!("{base}/v2/{repo}/{rest}")
    }

    /// Sends a GET or HEAD for a manifest; returns the response and the
    /// words that name it in errors.
    fn manifest_request(
        &self,
        method: &'static str,
        repo: &str,
        reference: &str,
        accept: &[&str],
    ) -> Result<(Response<Body>, String)> {
        check_repo(repo)?;
        check_reference(reference)?;
        let base = self.base()?;
        let what = format!("manifest {repo}:{reference}");
        let req = Req::new(
            method,
            self.url(&base, repo, &format!("manifests/{reference}")),
            what.clone(),
            pull_scope(repo),
        )
        .header("Accept", accept.join(", "));
        Ok((self.send(req)?, what))
    }

    /// Fetches a manifest (or index) by tag or digest, at most
    /// [`MAX_MANIFEST`] bytes, and checks its digest.
    pub fn get_manifest(&self, repo: &str, reference: &str, accept: &[&str]) -> Result<Fetched> {
        let (resp, what) = self.manifest_request("GET", repo, reference, accept)?;
        if resp.status().as_u16() != 200 {
            return Err(self.status_error(what, resp));
        }
        if let Some(len) = header(&resp, "content-length").and_then(|l| l.trim().parse::<u64>().ok())
            && len > MAX_MANIFEST
        {
            return Err(RegistryError::TooLarge {
                what,
                limit: MAX_MANIFEST,
            }
            .into());
        }
        let content_type = header(&resp, "content-type").unwrap_or("").to_string();
        let announced = header(&resp, "docker-content-digest").map(|d| d.trim().to_string());
        let mut bytes = Vec::new();
        resp.into_body()
            .into_reader()
            .take(MAX_MANIFEST + 1)
            .read_to_end(&mut bytes)
            .with_context(|| format!("read {what}"))?;
        if bytes.len() as u64 > MAX_MANIFEST {
            return Err(RegistryError::TooLarge {
                what,
                limit: MAX_MANIFEST,
            }
            .into());
        }
        let digest = digest_of(&bytes);
        if reference.contains(':') && digest != reference {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: reference.to_string(),
                actual: digest,
            }
            .into());
        }
        if let Some(a) = announced.filter(|a| a.starts_with("sha256:"))
            && a != digest
        {
            return Err(RegistryError::DigestMismatch {
                what: format!("{what} (Docker-Content-Digest)"),
                expected: a,
                actual: digest,
            }
            .into());
        }
        let media_type = manifest::media_type_of(&bytes, &content_type).with_context(|| what.clone())?;
        Ok(Fetched {
            bytes,
            media_type,
            digest,
        })
    }

    /// The digest and media type of a manifest, or None if there is none.
    pub fn head_manifest(&self, repo: &str, reference: &str, accept: &[&str]) -> Result<Option<(String, String)>> {
        let (resp, what) = self.manifest_request("HEAD", repo, reference, accept)?;
        match resp.status().as_u16() {
            200 => {}
            404 => return Ok(None),
            _ => {
                let e = self.status_error(what, resp);
                return if RegistryError::is_not_found(&e) {
                    Ok(None)
                } else {
                    Err(e)
                };
            }
        }
        let content_type = header(&resp, "content-type")
            .unwrap_or("")
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_string();
        match header(&resp, "docker-content-digest").map(str::trim) {
            Some(d) if d.starts_with("sha256:") => {
                validate_digest(d).with_context(|| format!("{what}: Docker-Content-Digest"))?;
                if reference.contains(':') && d != reference {
                    bail!("{what}: the registry announces digest {d}");
                }
                Ok(Some((d.to_string(), content_type)))
            }
            // No usable digest header: fetch it and hash it.
            _ => {
                drop(resp);
                match self.get_manifest(repo, reference, accept) {
                    Ok(f) => Ok(Some((f.digest, f.media_type))),
                    Err(e) if RegistryError::is_not_found(&e) => Ok(None),
                    Err(e) => Err(e),
                }
            }
        }
    }

    /// The body of a blob from byte `offset` on, streamed as served (the
    /// caller verifies it). A registry that ignores the Range request is
    /// read past the first `offset` bytes.
    pub fn get_blob(&self, repo: &str, digest: &str, offset: u64) -> Result<Box<dyn Read + Send>> {
        check_repo(repo)?;
        validate_digest(digest)?;
        let base = self.base()?;
        let what = format!("blob {digest}");
        let mut req = Req::new(
            "GET",
            self.url(&base, repo, &format!("blobs/{digest}")),
            what.clone(),
            pull_scope(repo),
        );
        if offset > 0 {
            req = req.header("Range", format!("bytes={offset}-"));
        }
        let resp = self.send(req)?;
        let status = resp.status().as_u16();
        match status {
            200 => {
                let mut r = resp.into_body().into_reader();
                if offset > 0 {
                    let skipped = io::copy(&mut (&mut r).take(offset), &mut io::sink())
                        .with_context(|| format!("read {what}"))?;
                    if skipped != offset {
                        bail!("{what}: the body ended at {skipped} bytes, before the resume offset {offset}");
                    }
                }
                Ok(Box::new(r))
            }
            206 => {
                let range = header(&resp, "content-range").unwrap_or("");
                let start = range
                    .trim()
                    .strip_prefix("bytes ")
                    .and_then(|r| r.split('-').next())
                    .and_then(|s| s.trim().parse::<u64>().ok());
                if start != Some(offset) {
                    bail!("{what}: asked for bytes from {offset}, got range {range:?}");
                }
                Ok(Box::new(resp.into_body().into_reader()))
            }
            _ => Err(self.status_error(what, resp)),
        }
    }

    /// The size of a blob the repository has, or None.
    pub fn blob_exists(&self, repo: &str, digest: &str) -> Result<Option<u64>> {
        check_repo(repo)?;
        validate_digest(digest)?;
        let base = self.base()?;
        let what = format!("blob {digest}");
        let resp = self.send(Req::new(
            "HEAD",
            self.url(&base, repo, &format!("blobs/{digest}")),
            what.clone(),
            pull_scope(repo),
        ))?;
        match resp.status().as_u16() {
            200 => Ok(Some(
                header(&resp, "content-length")
                    .and_then(|l| l.trim().parse().ok())
                    .unwrap_or(0),
            )),
            404 => Ok(None),
            _ => Err(self.status_error(what, resp)),
        }
    }

    /// Asks the registry to link blob `digest` of repository `from` into
    /// `repo`: true when it did (201), false when it did not (202).
    pub fn mount_blob(&self, repo: &str, digest: &str, from: &str) -> Result<bool> {
        check_repo(repo)?;
        check_repo(from)?;
        validate_digest(digest)?;
        let base = self.base()?;
        let what = format!("mount of blob {digest} from {from}");
        let url = with_query(
            &self.url(&base, repo, "blobs/uploads/"),
            &format!("mount={}&from={}", enc(digest), enc(from)),
        );
        let mut scopes = push_scope(repo);
        scopes.push(format!("repository:{from}:pull"));
        let resp = self.send(Req::new("POST", url.clone(), what.clone(), scopes))?;
        match resp.status().as_u16() {
            201 => Ok(true),
            202 => {
                // An upload session was opened instead: close it.
                if let Some(loc) = header(&resp, "location").and_then(|l| resolve(&url, l).ok()) {
                    let _ = self.send(Req::new("DELETE", loc, what, push_scope(repo)));
                }
                Ok(false)
            }
            _ => Err(self.status_error(what, resp)),
        }
    }

    /// Uploads blob `digest` of `size` bytes from `body`: in one PUT up to
    /// the chunk size, else in PATCH chunks and a closing PUT.
    pub fn upload_blob(&self, repo: &str, digest: &str, size: u64, mut body: Box<dyn Read + Send>) -> Result<()> {
        check_repo(repo)?;
        validate_digest(digest)?;
        let base = self.base()?;
        let what = format!("upload of blob {digest}");
        let start_url = self.url(&base, repo, "blobs/uploads/");
        let resp = self.send(Req::new("POST", start_url.clone(), what.clone(), push_scope(repo)))?;
        if resp.status().as_u16() != 202 {
            return Err(self.status_error(what, resp));
        }
        let mut location = self.location(&resp, &start_url, &what)?;
        drop(resp);
        let put_url = |loc: &str| with_query(loc, &format!("digest={}", enc(digest)));
        crate::output::debug(|| {
            let how = if size <= self.chunk_size {
                "in one request"
            } else {
                "in chunks"
            };
            format!("uploading blob {digest} ({size} bytes) to {repo} {how}")
        });
        let resp = if size <= self.chunk_size {
            let mut exact = Exact {
                inner: &mut body,
                remaining: size,
            };
            let req = Req::new("PUT", put_url(&location), what.clone(), push_scope(repo))
                .header("Content-Type", "application/octet-stream")
                .body(ReqBody::Stream(&mut exact, size));
            self.send(req)?
        } else {
            let mut offset = 0u64;
            while offset < size {
                let n = self.chunk_size.min(size - offset);
                let mut exact = Exact {
                    inner: &mut body,
                    remaining: n,
                };
                let req = Req::new("PATCH", location.clone(), what.clone(), push_scope(repo))
                    .header("Content-Type", "application/octet-stream")
                    .header("Content-Range", format!("{offset}-{}", offset + n - 1))
                    .body(ReqBody::Stream(&mut exact, n));
                let resp = self.send(req)?;
                if resp.status().as_u16() != 202 {
                    return Err(self.status_error(format!("{what} (chunk at {offset})"), resp));
                }
                location = self.location(&resp, &location, &what)?;
                offset += n;
            }
            self.send(Req::new("PUT", put_url(&location), what.clone(), push_scope(repo)))?
        };
        if resp.status().as_u16() != 201 {
            return Err(self.status_error(what, resp));
        }
        if let Some(d) = header(&resp, "docker-content-digest").map(str::trim)
            && d.starts_with("sha256:")
            && d != digest
        {
            return Err(RegistryError::DigestMismatch {
                what,
                expected: digest.to_string(),
                actual: d.to_string(),
            }
            .into());
        }
        let mut extra = [0u8; 1];
        if body
            .read(&mut extra)
            .with_context(|| format!("read the source of {what}"))?
            != 0
        {
            bail!("{what}: the source holds more than the {size} bytes announced");
        }
        Ok(())
    }

    fn location(&self, resp: &Response<Body>, from: &str, what: &str) -> Result<String> {
        let loc = header(resp, "location").ok_or_else(|| anyhow!("{what}: the registry sent no Location"))?;
        resolve(from, loc).with_context(|| format!("{what}: Location {loc:?}"))
    }

    /// Stores a manifest under `reference` (a tag or its digest); returns
    /// its digest.
    pub fn put_manifest(&self, repo: &str, reference: &str, media_type: &str, bytes: &[u8]) -> Result<String> {
        check_repo(repo)?;
        check_reference(reference)?;
        let base = self.base()?;
        let what = format!("manifest {repo}:{reference}");
        let req = Req::new(
            "PUT",
            self.url(&base, repo, &format!("manifests/{reference}")),
            what.clone(),
            push_scope(repo),
        )
        .header("Content-Type", media_type)
        .body(ReqBody::Bytes(bytes));
        let resp = self.send(req)?;
        if !matches!(resp.status().as_u16(), 200 | 201) {
            return Err(self.status_error(what, resp));
        }
        let computed = digest_of(bytes);
        match header(&resp, "docker-content-digest").map(str::trim) {
            Some(d) if d.starts_with("sha256:") => {
                validate_digest(d).with_context(|| format!("{what}: Docker-Content-Digest"))?;
                Ok(d.to_string())
            }
            _ => Ok(computed),
        }
    }

    /// Every tag of `repo`, following `Link` pagination.
    pub fn list_tags(&self, repo: &str) -> Result<Vec<String>> {
        check_repo(repo)?;
        let base = self.base()?;
        let what = format!("tags of {repo}");
        let mut url = self.url(&base, repo, "tags/list");
        let mut tags = Vec::new();
        for _ in 0..MAX_TAG_PAGES {
            let resp = self.send(Req::new("GET", url.clone(), what.clone(), pull_scope(repo)))?;
            if resp.status().as_u16() != 200 {
                return Err(self.status_error(what, resp));
            }
            let next = header(&resp, "link")
                .and_then(next_link)
                .map(|l| resolve(&url, &l))
                .transpose()?;
            let mut body = Vec::new();
            resp.into_body()
                .into_reader()
                .take(MAX_TAGS_PAGE + 1)
                .read_to_end(&mut body)
                .with_context(|| format!("read {what}"))?;
            if body.len() as u64 > MAX_TAGS_PAGE {
                return Err(RegistryError::TooLarge {
                    what,
                    limit: MAX_TAGS_PAGE,
                }
                .into());
            }
            let page: TagList = serde_json::from_slice(&body).with_context(|| format!("invalid {what}"))?;
            tags.extend(page.tags.unwrap_or_default());
            match next {
                Some(n) if origin(&n) == base => url = n,
                Some(n) => bail!("{what}: the next page is on another host ({n})"),
                None => return Ok(tags),
            }
        }
        bail!("{what}: more than {MAX_TAG_PAGES} pages")
    }
}

/// The target of `rel="next"` in a Link header.
fn next_link(h: &str) -> Option<String> {
    for part in h.split(',') {
        let part = part.trim();
        let (target, params) = part.strip_prefix('<')?.split_once('>')?;
        if params.split(';').any(|p| {
            let p = p.trim().replace(' ', "");
            p == "rel=\"next\"" || p == "rel=next"
        }) {
            return Some(target.to_string());
        }
    }
    None
}

#[cfg(test)]
mod tests;
