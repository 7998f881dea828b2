//! Registry and archive verbs: pull, push, login, logout, save, load,
//! manifest inspect; and the `--pull` policy of run and create.

use std::fs::File;
use std::io::{self, BufReader, IsTerminal, Read, Write};

use anyhow::{Context, Result, bail};

use crate::cli::{
    ContainerOptions, LoadArgs, LoginArgs, LogoutArgs, ManifestInspectArgs, PullArgs, PushArgs, RegistryOptions,
    SaveArgs,
};
use crate::exit::ExitStatus;
use crate::image::archive::{self, Format, SaveTo};
use crate::image::progress;
use crate::image::pull::{self, PullOptions};
use crate::image::push::{self, ManifestFormat, PushOptions};
use crate::image::reference::Reference;
use crate::image::remote::Remote;
use crate::image::{self, ImageNotFound};
use crate::layers::archive::Compression;
use crate::outln;
use crate::registry::manifest::{self, Platform};
use crate::registry::{Credentials, RegistryError, auth};
use crate::store::Store;

/// The platform a pull selects from a manifest list: the host's, changed by
/// `--platform`, `--os`, `--arch` and `--variant`.
fn platform_of(a: &PullArgs) -> Result<Platform> {
    let mut p = match &a.platform {
        Some(s) => Platform::parse(s)?,
        None => Platform::host(),
    };
    if let Some(os) = &a.os {
        p.os = os.clone();
    }
    if let Some(arch) = &a.arch {
        if *arch != p.architecture {
            p.variant = None;
        }
        p.architecture = arch.clone();
    }
    if let Some(v) = &a.variant {
        p.variant = Some(v.clone());
    }
    Ok(p)
}

pub fn pull(store: &Store, a: PullArgs) -> Result<ExitStatus> {
    let remote = Remote::new(&a.registry, store.rootless)?;
    let progress = progress::for_cli(a.quiet);
    let opts = PullOptions {
        remote: &remote,
        platform: platform_of(&a)?,
        progress: &*progress,
    };
    if a.all_tags {
        let last = a.image.rsplit('/').next().unwrap_or(&a.image);
        if last.contains(':') || last.contains('@') {
            bail!("--all-tags: give a repository without a tag or digest");
        }
        let candidates = remote.candidates(&a.image)?;
        let r = candidates
            .first()
            .with_context(|| format!("{}: no registry to pull from", a.image))?;
        let client = remote.client_for_pull(r)?;
        let tags = client.list_tags(client.repository())?;
        if tags.is_empty() {
            bail!("{}: the repository has no tags", r.repository());
        }
        for t in tags {
            let mut one = r.clone();
            one.tag = Some(t);
            one.digest = None;
            let p = pull::pull_reference(store, &one, &opts)?;
            outln!("{}", p.id)?;
        }
        return Ok(ExitStatus::Success);
    }
    let p = pull::pull(store, &a.image, &opts)?;
    outln!("{}", p.id)?;
    Ok(ExitStatus::Success)
}

/// Makes a container from `image_ref` under run/create's `--pull` policy:
/// `missing` (default) pulls only when the store lacks the image — tried
/// after the store lookup failed, so a present image costs nothing extra —
/// `always` pulls every time, `never` never does, `newer` pulls when the
/// registry's manifest differs from the stored one (and keeps the local image
/// when the registry cannot be reached).
pub fn create_container(
    store: &Store,
    opts: &ContainerOptions,
    image_ref: &str,
    command: &[String],
) -> Result<crate::container::Container> {
    let policy = opts.pull.as_deref().unwrap_or("missing");
    with_image(store, &opts.registry, opts.quiet, policy, image_ref, || {
        crate::container::create::create(store, opts, image_ref, command)
    })
}

/// Runs `use_image` (which looks `image_ref` up in the store) under a pull
/// policy: `always` pulls first, `newer` pulls when the registry has another
/// digest, `missing` pulls only once `use_image` failed for want of the image
/// (so a present image costs nothing), `never` never pulls.
pub fn with_image<T>(
    store: &Store,
    ro: &RegistryOptions,
    quiet: bool,
    policy: &str,
    image_ref: &str,
    use_image: impl Fn() -> Result<T>,
) -> Result<T> {
    let do_pull = || -> Result<()> {
        let remote = Remote::new(ro, store.rootless)?;
        let progress = progress::for_cli(quiet);
        let popts = PullOptions {
            remote: &remote,
            platform: Platform::host(),
            progress: &*progress,
        };
        pull::pull(store, image_ref, &popts).map(|_| ())
    };
    match policy {
        "missing" | "never" | "false" => {}
        "always" | "true" => do_pull()?,
        "newer" => match image::resolve(store, image_ref) {
            Err(e) if e.downcast_ref::<ImageNotFound>().is_some() => do_pull()?,
            Err(e) => return Err(e),
            Ok(rec) => match remote_digest(store, ro, image_ref) {
                Ok(Some(d)) if d == rec.digest => {}
                Ok(_) => do_pull()?,
                Err(e) => crate::output::warn(&format!(
                    "cannot check {image_ref} for a newer image, using the local one: {e:#}"
                )),
            },
        },
        other => bail!("invalid --pull policy {other:?}: use missing, always, never or newer"),
    }
    match use_image() {
        Err(e) if policy == "missing" && e.downcast_ref::<ImageNotFound>().is_some() && !looks_like_id(image_ref) => {
            do_pull()?;
            use_image()
        }
        r => r,
    }
}

/// An image ID is never pulled.
fn looks_like_id(s: &str) -> bool {
    crate::util::ids::is_full_id(s.strip_prefix("sha256:").unwrap_or(s))
}

/// The digest of the manifest a registry serves for `image_ref` (the first
/// candidate that has it).
fn remote_digest(store: &Store, ro: &RegistryOptions, image_ref: &str) -> Result<Option<String>> {
    let remote = Remote::new(ro, store.rootless)?;
    let found = remote.first_found(image_ref, |cand| {
        let client = remote.client_for_pull(cand)?;
        let head = client.head_manifest(client.repository(), &cand.tag_or_digest(), manifest::ACCEPT)?;
        head.map(|(digest, _)| digest).ok_or_else(|| {
            RegistryError::NotFound {
                what: format!("manifest {cand}"),
                detail: String::new(),
            }
            .into()
        })
    });
    match found {
        Ok(d) => Ok(Some(d)),
        Err(e) if RegistryError::is_not_found(&e) => Ok(None),
        Err(e) => Err(e),
    }
}

pub fn push(store: &Store, a: PushArgs) -> Result<ExitStatus> {
    let (rec, matched) = image::resolve_named(store, &a.image)?;
    let dest_name = match &a.destination {
        Some(d) => d.strip_prefix("docker://").unwrap_or(d).to_string(),
        None => matched.clone().unwrap_or_else(|| a.image.clone()),
    };
    let dest = Reference::parse_with_default(&dest_name, "docker.io")
        .with_context(|| format!("invalid destination {dest_name:?}"))?;
    if dest.domain == "localhost" {
        bail!("{dest}: localhost/ names are local; push to REGISTRY/NAME[:TAG]");
    }
    let compression = match a.compression_format.as_deref() {
        None => None,
        Some("gzip") => Some(Compression::Gzip),
        Some("zstd") | Some("zstd:chunked") => Some(Compression::Zstd),
        Some(other) => bail!("unknown --compression-format {other:?}: use gzip or zstd"),
    };
    let format = match a.format.as_deref() {
        None => None,
        Some("oci") => Some(ManifestFormat::Oci),
        Some("v2s2") | Some("docker") => Some(ManifestFormat::Docker),
        Some(other) => bail!("unknown manifest format {other:?}: use oci or v2s2"),
    };
    let remote = Remote::new(&a.registry, store.rootless)?;
    let progress = progress::for_cli(a.quiet);
    progress.message("Getting image source signatures");
    let opts = PushOptions {
        remote: &remote,
        compression,
        format,
        progress: &*progress,
    };
    let digest = push::push(store, &rec, &dest, &opts)?;
    if let Some(f) = &a.digestfile {
        std::fs::write(f, &digest).with_context(|| format!("write {}", f.display()))?;
    }
    Ok(ExitStatus::Success)
}

/// `login REGISTRY`: the registry as a host[:port] (a URL's scheme and path
/// are dropped, as podman does).
fn registry_host(s: &str) -> String {
    let s = s
        .strip_prefix("https://")
        .or_else(|| s.strip_prefix("http://"))
        .unwrap_or(s);
    let s = s.strip_prefix("docker://").unwrap_or(s);
    s.split('/').next().unwrap_or(s).to_string()
}

pub fn login(store: &Store, a: LoginArgs) -> Result<ExitStatus> {
    let ro = RegistryOptions {
        tls_verify: a.tls_verify,
        cert_dir: a.cert_dir.clone(),
        creds: None,
        authfile: a.authfile.clone(),
    };
    let remote = Remote::new(&ro, store.rootless)?;
    let host = match &a.registry {
        Some(r) => registry_host(r),
        None => remote
            .default_registry()
            .context("no registry given and no unqualified-search registry configured")?,
    };
    if a.get_login {
        return match auth::stored_user(&host, a.authfile.as_deref())? {
            Some(u) => {
                outln!("{u}")?;
                Ok(ExitStatus::Success)
            }
            None => bail!("not logged into {host}"),
        };
    }
    let username = match &a.username {
        Some(u) => u.clone(),
        None => bail!("a user name is needed: give -u USER"),
    };
    let password = if a.password_stdin {
        if a.password.is_some() {
            bail!("--password and --password-stdin cannot be used together");
        }
        let mut s = String::new();
        io::stdin()
            .read_to_string(&mut s)
            .context("read the password from standard input")?;
        s.trim_end_matches(['\n', '\r']).to_string()
    } else {
        match &a.password {
            Some(p) => p.clone(),
            None => bail!("a password is needed: give -p PASSWORD or --password-stdin"),
        }
    };
    if username.is_empty() || password.is_empty() {
        bail!("the user name and the password must not be empty");
    }
    let creds = Credentials { username, password };
    let client = remote.with_creds(creds.clone()).client_for_registry(&host)?;
    match client.ping() {
        Ok(()) => {}
        Err(e) if RegistryError::is_unauthorized(&e) => {
            bail!("authentication failed for {host}: invalid username or password")
        }
        Err(e) => return Err(e.context(format!("log in to {host}"))),
    }
    auth::store(&host, &creds, a.authfile.as_deref())?;
    outln!("Login Succeeded!")?;
    Ok(ExitStatus::Success)
}

pub fn logout(_store: &Store, a: LogoutArgs) -> Result<ExitStatus> {
    if a.all {
        if a.registry.is_some() {
            bail!("--all takes no registry");
        }
        auth::erase_all(a.authfile.as_deref())?;
        outln!("Removed login credentials for all registries")?;
        return Ok(ExitStatus::Success);
    }
    let Some(r) = &a.registry else {
        bail!("name a registry to log out of, or give --all")
    };
    let host = registry_host(r);
    if !auth::erase(&host, a.authfile.as_deref())? {
        bail!("not logged into {host}");
    }
    outln!("Removed login credentials for {host}")?;
    Ok(ExitStatus::Success)
}

pub fn save(store: &Store, a: SaveArgs) -> Result<ExitStatus> {
    let format = Format::parse(a.format.as_deref().unwrap_or("docker-archive"))?;
    if a.images.len() > 1 && format != Format::DockerArchive {
        bail!("only docker-archive holds several images; {} given", a.images.len());
    }
    let mut images = Vec::new();
    for q in &a.images {
        let (rec, matched) = image::resolve_named(store, q)?;
        images.push((rec, matched));
    }
    let to = match (&a.output, format) {
        (None, Format::OciDir) => bail!("oci-dir needs -o DIRECTORY"),
        (Some(p), _) => SaveTo::Path(p.clone()),
        (None, _) => {
            if io::stdout().is_terminal() {
                bail!("refusing to write an archive to a terminal: give -o FILE or redirect standard output");
            }
            SaveTo::Writer(Box::new(io::BufWriter::with_capacity(256 * 1024, io::stdout())))
        }
    };
    archive::save(store, &images, format, to)?;
    Ok(ExitStatus::Success)
}

pub fn load(store: &Store, a: LoadArgs) -> Result<ExitStatus> {
    if let Some(p) = &a.input
        && p.is_dir()
    {
        for name in archive::load_dir(store, p)? {
            outln!("Loaded image: {name}")?;
        }
        return Ok(ExitStatus::Success);
    }
    let input: Box<dyn Read> = match &a.input {
        Some(p) => Box::new(BufReader::new(
            File::open(p).with_context(|| format!("open {}", p.display()))?,
        )),
        None => {
            if io::stdin().is_terminal() {
                bail!("no archive on standard input: give -i FILE or redirect standard input");
            }
            Box::new(BufReader::new(io::stdin()))
        }
    };
    let loaded = archive::load(store, input)?;
    for name in loaded {
        outln!("Loaded image: {name}")?;
    }
    Ok(ExitStatus::Success)
}

pub fn manifest_inspect(store: &Store, a: ManifestInspectArgs) -> Result<ExitStatus> {
    let remote = Remote::new(&a.registry, store.rootless)?;
    let f = remote.first_found(&a.image, |cand| {
        let client = remote.client_for_pull(cand)?;
        client.get_manifest(client.repository(), &cand.tag_or_digest(), manifest::ACCEPT)
    })?;
    manifest::parse(&f.bytes, &f.media_type)?;
    let v: serde_json::Value = serde_json::from_slice(&f.bytes).context("the manifest is not JSON")?;
    let mut out = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut out, fmt);
    serde::Serialize::serialize(&v, &mut ser)?;
    out.push(b'\n');
    io::stdout()
        .lock()
        .write_all(&out)
        .context("write to standard output")?;
    Ok(ExitStatus::Success)
}
