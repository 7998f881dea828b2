//! The command-line interface: every verb, flag and help text, in one place.
//!
//! Flags follow podman's spelling and meaning. The man pages in `man/` are
//! generated from these definitions (see `tests/it/man.rs`), so a `///` here is
//! user documentation.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

/// casco: a daemonless container engine.
///
/// casco runs OCI containers with no background service: each invocation does
/// its own work, and a detached container is watched by a small monitor process
/// that lives exactly as long as the container.
#[derive(Debug, Parser)]
#[command(name = "casco", version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    pub global: GlobalArgs,

    #[command(subcommand)]
    pub command: Command,
}

/// Options every verb accepts.
#[derive(Debug, Clone, Args)]
pub struct GlobalArgs {
    /// Store root: images, layers and container records
    /// [default: /var/lib/casco for root, $XDG_DATA_HOME/casco otherwise]
    #[arg(long, global = true, env = "CASCO_ROOT", value_name = "DIR")]
    pub root: Option<PathBuf>,

    /// Run root: sockets and other state that must not outlive a reboot
    /// [default: /run/casco for root, $XDG_RUNTIME_DIR/casco otherwise]
    #[arg(long, global = true, env = "CASCO_RUNROOT", value_name = "DIR")]
    pub runroot: Option<PathBuf>,

    /// Storage driver for new stores: overlay, or vfs (copies layers, no overlayfs needed)
    #[arg(long, global = true, env = "CASCO_STORAGE_DRIVER", value_name = "DRIVER")]
    pub storage_driver: Option<String>,

    /// Log messages at this level and above to stderr (error, warn, info, debug)
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a command in a new container
    Run(RunArgs),
    /// Create a container without starting it
    Create(CreateArgs),
    /// Start one or more containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Send a signal to one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    #[command(visible_alias = "ls")]
    Ps(PsArgs),
    /// Show the output of a container
    Logs(LogsArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(WaitArgs),
    /// Show details of containers or images as JSON
    Inspect(InspectArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Attach to the input and output of a running container
    Attach(AttachArgs),
    /// Show the processes of a running container
    Top(TopArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Write a container's root filesystem as a tar archive
    Export(ExportArgs),
    /// Create an image from a container's changes
    Commit(CommitArgs),
    /// Show the changes to a container's or image's filesystem
    Diff(DiffArgs),
    /// Show the history of an image
    History(HistoryArgs),
    /// Manage containers
    #[command(subcommand)]
    Container(ContainerCommand),
    /// List images
    Images(ImagesArgs),
    /// Manage images
    #[command(subcommand)]
    Image(ImageCommand),
    /// Create an image from a root filesystem tarball or directory
    Import(ImportArgs),
    /// Add names to an image
    Tag(TagArgs),
    /// Remove images
    Rmi(RmiArgs),
    /// Manage the store
    #[command(subcommand)]
    System(SystemCommand),
    /// Show information about the host and the store
    Info(InfoArgs),
    /// Show version information
    Version(VersionArgs),
    /// Copy an image from a registry into the store
    Pull(PullArgs),
    /// Copy an image from the store to a registry
    Push(PushArgs),
    /// Log in to a registry
    Login(LoginArgs),
    /// Log out of a registry
    Logout(LogoutArgs),
    /// Write images to an archive
    Save(SaveArgs),
    /// Read images from an archive
    Load(LoadArgs),
    /// Inspect manifests
    #[command(subcommand)]
    Manifest(ManifestCommand),
    /// Build an image from a Containerfile or Dockerfile
    #[command(visible_alias = "buildx")]
    Build(Box<BuildArgs>),
}

#[derive(Debug, Subcommand)]
pub enum ContainerCommand {
    /// Run a command in a new container
    Run(RunArgs),
    /// Create a container without starting it
    Create(CreateArgs),
    /// Start one or more containers
    Start(StartArgs),
    /// Stop one or more running containers
    Stop(StopArgs),
    /// Send a signal to one or more running containers
    Kill(KillArgs),
    /// Restart one or more containers
    Restart(RestartArgs),
    /// Remove one or more containers
    Rm(RmArgs),
    /// List containers
    #[command(visible_aliases = ["ls", "list"])]
    Ps(PsArgs),
    /// Show the output of a container
    Logs(LogsArgs),
    /// Wait for containers to stop and print their exit codes
    Wait(WaitArgs),
    /// Show details of containers as JSON
    Inspect(ContainerInspectArgs),
    /// Run a command in a running container
    Exec(ExecArgs),
    /// Attach to the input and output of a running container
    Attach(AttachArgs),
    /// Show the processes of a running container
    Top(TopArgs),
    /// Rename a container
    Rename(RenameArgs),
    /// Write a container's root filesystem as a tar archive
    Export(ExportArgs),
    /// Create an image from a container's changes
    Commit(CommitArgs),
    /// Show the changes to a container's filesystem
    Diff(DiffArgs),
    /// Remove all stopped containers
    Prune(PruneArgs),
}

#[derive(Debug, Subcommand)]
pub enum ImageCommand {
    /// List images
    #[command(visible_alias = "list")]
    Ls(ImagesArgs),
    /// Show details of images as JSON
    Inspect(ImageInspectArgs),
    /// Create an image from a root filesystem tarball or directory
    Import(ImportArgs),
    /// Add names to an image
    Tag(TagArgs),
    /// Remove images
    Rm(RmiArgs),
    /// Remove images that have no name and no container
    Prune(ImagePruneArgs),
    /// Copy an image from a registry into the store
    Pull(PullArgs),
    /// Copy an image from the store to a registry
    Push(PushArgs),
    /// Write images to an archive
    Save(SaveArgs),
    /// Read images from an archive
    Load(LoadArgs),
    /// Build an image from a Containerfile or Dockerfile
    Build(Box<BuildArgs>),
    /// Show the changes an image's top layer makes
    Diff(DiffArgs),
    /// Show the history of an image
    History(HistoryArgs),
}

#[derive(Debug, Subcommand)]
pub enum ManifestCommand {
    /// Show the manifest (or manifest list) of an image in a registry
    Inspect(ManifestInspectArgs),
}

/// How to reach a registry: the flags pull, push, login and friends share.
#[derive(Debug, Clone, Args, Default)]
pub struct RegistryOptions {
    /// Require HTTPS and verify certificates (--tls-verify=false allows plain
    /// HTTP and unverified TLS) [default: true, or false for a registry marked
    /// insecure in registries.conf]
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,

    /// Use the certificates in this directory (*.crt, client.cert, client.key)
    /// for this call, instead of /etc/containers/certs.d/HOST:PORT
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,

    /// Credentials for this call: USER:PASSWORD (or USER, to be asked)
    #[arg(long, value_name = "USER[:PASSWORD]")]
    pub creds: Option<String>,

    /// Credentials file [default: $XDG_RUNTIME_DIR/containers/auth.json]
    #[arg(long, env = "REGISTRY_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct PullArgs {
    #[command(flatten)]
    pub registry: RegistryOptions,

    /// Print nothing but the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Pull every tag of the repository
    #[arg(short = 'a', long)]
    pub all_tags: bool,

    /// Platform to pull from a manifest list: OS/ARCH[/VARIANT]
    #[arg(long, value_name = "OS/ARCH[/VARIANT]")]
    pub platform: Option<String>,

    /// Architecture to pull from a manifest list
    #[arg(long, value_name = "ARCH")]
    pub arch: Option<String>,

    /// Operating system to pull from a manifest list
    #[arg(long, value_name = "OS")]
    pub os: Option<String>,

    /// Architecture variant to pull from a manifest list (e.g. v8)
    #[arg(long, value_name = "VARIANT")]
    pub variant: Option<String>,

    /// Image to pull: [REGISTRY/]NAME[:TAG|@DIGEST]
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct PushArgs {
    #[command(flatten)]
    pub registry: RegistryOptions,

    /// Compress layers with this algorithm when they are not already: gzip (default) or zstd
    #[arg(long, value_name = "ALGORITHM")]
    pub compression_format: Option<String>,

    /// Write the pushed manifest's digest to this file
    #[arg(long, value_name = "FILE")]
    pub digestfile: Option<PathBuf>,

    /// Manifest type: oci (default) or v2s2 (Docker)
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Print no progress
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Image in the store
    pub image: String,

    /// Where to push [default: the image's name]
    pub destination: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LoginArgs {
    /// Registry host[:port] [default: the first unqualified-search registry]
    pub registry: Option<String>,

    /// User name
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,

    /// Password (prefer --password-stdin)
    #[arg(short = 'p', long, value_name = "PASSWORD")]
    pub password: Option<String>,

    /// Read the password from standard input
    #[arg(long)]
    pub password_stdin: bool,

    /// Print the user name stored for the registry
    #[arg(long)]
    pub get_login: bool,

    /// Credentials file [default: $XDG_RUNTIME_DIR/containers/auth.json]
    #[arg(long, env = "REGISTRY_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,

    /// Require HTTPS and verify certificates
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub tls_verify: Option<bool>,

    /// Use the certificates in this directory for this call
    #[arg(long, value_name = "DIR")]
    pub cert_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct LogoutArgs {
    /// Registry host[:port]
    pub registry: Option<String>,

    /// Remove the credentials of every registry
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Credentials file [default: $XDG_RUNTIME_DIR/containers/auth.json]
    #[arg(long, env = "REGISTRY_AUTH_FILE", value_name = "FILE")]
    pub authfile: Option<PathBuf>,
}

#[derive(Debug, Clone, Args)]
pub struct SaveArgs {
    /// Write to this file (or directory, for oci-dir) instead of standard output
    #[arg(short = 'o', long, value_name = "PATH")]
    pub output: Option<PathBuf>,

    /// Archive format: docker-archive (default), oci-archive, oci-dir
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Put several images in one docker-archive (implied by naming several)
    #[arg(short = 'm', long)]
    pub multi_image_archive: bool,

    /// Print no progress
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Images to save
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct LoadArgs {
    /// Read from this archive instead of standard input
    #[arg(short = 'i', long, value_name = "FILE")]
    pub input: Option<PathBuf>,

    /// Print no progress
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ManifestInspectArgs {
    #[command(flatten)]
    pub registry: RegistryOptions,

    /// Image in a registry
    pub image: String,
}

#[derive(Debug, Subcommand)]
pub enum SystemCommand {
    /// Remove everything casco stored for this user
    Reset(ResetArgs),
    /// Remove stopped containers and unused images
    Prune(SystemPruneArgs),
    /// Show how much disk the store uses
    Df(DfArgs),
    /// Show information about the host and the store
    Info(InfoArgs),
}

/// Options that define a container, shared by `run` and `create`.
#[derive(Debug, Clone, Args, Default)]
pub struct ContainerOptions {
    /// Name of the container [default: a generated adjective_noun]
    #[arg(long)]
    pub name: Option<String>,

    /// Set an environment variable (NAME=VALUE, or NAME to copy it from casco's environment)
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub env: Vec<String>,

    /// Read environment variables from a file (one NAME=VALUE per line, # for comments)
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// User to run as: name or UID, optionally :group or :GID
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Add a supplementary group (name or GID)
    #[arg(long, value_name = "GROUP")]
    pub group_add: Vec<String>,

    /// Override the image's ENTRYPOINT ("" clears it)
    #[arg(long, value_name = "CMD")]
    pub entrypoint: Option<String>,

    /// Hostname inside the container [default: the first 12 characters of the ID]
    #[arg(short = 'h', long, value_name = "NAME")]
    pub hostname: Option<String>,

    /// Bind mount a volume: SRC:DST[:OPTIONS] (ro, rw, z, Z, private, rprivate, shared, rshared, slave, rslave)
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,

    /// Attach a mount: type=bind|tmpfs,source=..,destination=..[,ro][,bind-propagation=..][,tmpfs-size=..][,tmpfs-mode=..]
    #[arg(long, value_name = "MOUNT")]
    pub mount: Vec<String>,

    /// Mount a tmpfs: DST[:OPTIONS]
    #[arg(long, value_name = "TMPFS")]
    pub tmpfs: Vec<String>,

    /// Mount the container's root filesystem read-only
    #[arg(long)]
    pub read_only: bool,

    /// Network mode: host, or none (a private network namespace with only loopback)
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,

    /// Add a Linux capability (CAP_NET_ADMIN or NET_ADMIN; ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a Linux capability (ALL for every one)
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Give the container every capability and the host's devices, with no masked paths
    #[arg(long)]
    pub privileged: bool,

    /// Set a label: KEY=VALUE
    #[arg(short = 'l', long, value_name = "LABEL")]
    pub label: Vec<String>,

    /// Signal that stops the container [default: the image's STOPSIGNAL, else SIGTERM]
    #[arg(long, value_name = "SIGNAL")]
    pub stop_signal: Option<String>,

    /// Seconds to wait after the stop signal before sending SIGKILL [default: 10]
    #[arg(long, value_name = "SECONDS")]
    pub stop_timeout: Option<u32>,

    /// Where the container's output goes: k8s-file (default), none, passthrough
    #[arg(long, value_name = "DRIVER")]
    pub log_driver: Option<String>,

    /// Log driver option: max-size=SIZE (e.g. 10m) caps the log file
    #[arg(long, value_name = "OPT")]
    pub log_opt: Vec<String>,

    /// Write the container ID to this file
    #[arg(long, value_name = "FILE")]
    pub cidfile: Option<PathBuf>,

    /// Write the PID of the container's first process to this file
    #[arg(long, value_name = "FILE")]
    pub pidfile: Option<PathBuf>,

    /// Run an init as PID 1 that forwards signals and reaps zombies
    #[arg(long)]
    pub init: bool,

    /// Memory limit (e.g. 64m, 1g); the container is OOM-killed beyond it
    #[arg(short = 'm', long, value_name = "SIZE")]
    pub memory: Option<String>,

    /// Maximum number of processes in the container (0 or -1: unlimited)
    #[arg(long, value_name = "N", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,

    /// User namespace: "" (default), host, keep-id, auto
    #[arg(long, value_name = "MODE")]
    pub userns: Option<String>,

    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Remove the container when it exits
    #[arg(long)]
    pub rm: bool,

    /// When to pull the image: missing (default), always, never, newer
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = "always")]
    pub pull: Option<String>,

    #[command(flatten)]
    pub registry: RegistryOptions,

    /// Print nothing while pulling
    #[arg(short = 'q', long)]
    pub quiet: bool,
}

#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct RunArgs {
    #[command(flatten)]
    pub opts: ContainerOptions,

    /// Run in the background and print the container ID
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Key sequence that detaches from the container (e.g. ctrl-p,ctrl-q)
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Print help (-h is --hostname, as in podman)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Image to run
    pub image: String,

    /// Command and its arguments [default: the image's ENTRYPOINT and CMD]
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true, disable_help_flag = true)]
pub struct CreateArgs {
    #[command(flatten)]
    pub opts: ContainerOptions,

    /// Print help (-h is --hostname, as in podman)
    #[arg(long, action = clap::ArgAction::Help)]
    pub help: Option<bool>,

    /// Image to create the container from
    pub image: String,

    /// Command and its arguments [default: the image's ENTRYPOINT and CMD]
    #[arg(allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StartArgs {
    /// Attach to the container's output and wait for it
    #[arg(short = 'a', long)]
    pub attach: bool,

    /// Attach the container's standard input
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Key sequence that detaches from the container
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Containers to start (names or IDs)
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct StopArgs {
    /// Seconds to wait before killing the container [default: its stop timeout]
    #[arg(short = 't', long = "time", visible_alias = "timeout", value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Stop every running container
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not fail when a container does not exist
    #[arg(short = 'i', long)]
    pub ignore: bool,

    /// Containers to stop
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct KillArgs {
    /// Signal to send (name or number)
    #[arg(short = 's', long, default_value = "KILL", value_name = "SIGNAL")]
    pub signal: String,

    /// Signal every running container
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Containers to signal
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RestartArgs {
    /// Seconds to wait before killing the container
    #[arg(short = 't', long = "time", visible_alias = "timeout", value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Restart every container
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Containers to restart
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RmArgs {
    /// Stop and remove running containers too
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Remove every container
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not fail when a container does not exist
    #[arg(short = 'i', long)]
    pub ignore: bool,

    /// Seconds to wait for a running container to stop before killing it (with --force)
    #[arg(short = 't', long = "time", value_name = "SECONDS")]
    pub time: Option<u32>,

    /// Containers to remove
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct PsArgs {
    /// Show every container, not just running ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Print only container IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Show only the latest container created
    #[arg(short = 'l', long)]
    pub latest: bool,

    /// Show only the N latest containers created
    #[arg(short = 'n', long, value_name = "N")]
    pub last: Option<usize>,

    /// Filter: status=, name=, id=, ancestor=, label=, exited= (repeat to combine)
    #[arg(short = 'f', long, value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Output: json, or a Go template ({{.ID}}, {{.Names}}, table ...)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Do not truncate IDs and commands
    #[arg(long)]
    pub no_trunc: bool,

    /// Also show the working containers of builds in progress
    #[arg(long)]
    pub external: bool,
}

#[derive(Debug, Clone, Args)]
pub struct LogsArgs {
    /// Follow the output until the container stops
    #[arg(short = 'f', long)]
    pub follow: bool,

    /// Show only the last N lines
    #[arg(long, value_name = "N")]
    pub tail: Option<i64>,

    /// Show output since this time (RFC 3339, Unix seconds, or a duration such as 10m)
    #[arg(long, value_name = "TIME")]
    pub since: Option<String>,

    /// Show output until this time (RFC 3339, Unix seconds, or a duration such as 10m)
    #[arg(long, value_name = "TIME")]
    pub until: Option<String>,

    /// Prefix each line with its timestamp
    #[arg(short = 't', long)]
    pub timestamps: bool,

    /// Prefix each line with the container's name
    #[arg(short = 'n', long)]
    pub names: bool,

    /// Containers to show
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct WaitArgs {
    /// Condition to wait for: stopped (default), exited, running
    #[arg(long, value_name = "STATE")]
    pub condition: Option<String>,

    /// Do not fail when a container does not exist
    #[arg(short = 'i', long)]
    pub ignore: bool,

    /// Containers to wait for
    #[arg(required = true)]
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InspectArgs {
    /// Object type: container, image, or all
    #[arg(short = 't', long = "type", default_value = "all", value_name = "TYPE")]
    pub kind: String,

    /// Output: json, or a Go template
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Add the container's root filesystem size (SizeRootFs, SizeRw)
    #[arg(short = 's', long)]
    pub size: bool,

    /// Names or IDs of containers or images
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ContainerInspectArgs {
    /// Output: json, or a Go template
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Inspect the latest container created
    #[arg(short = 'l', long)]
    pub latest: bool,

    /// Add the container's root filesystem size (SizeRootFs, SizeRw)
    #[arg(short = 's', long)]
    pub size: bool,

    /// Containers to inspect
    pub containers: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImageInspectArgs {
    /// Output: json, or a Go template
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Images to inspect
    #[arg(required = true)]
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true)]
pub struct ExecArgs {
    /// Keep standard input open
    #[arg(short = 'i', long)]
    pub interactive: bool,

    /// Allocate a pseudo-terminal
    #[arg(short = 't', long)]
    pub tty: bool,

    /// Run in the background
    #[arg(short = 'd', long)]
    pub detach: bool,

    /// Set an environment variable (NAME=VALUE, or NAME to copy it)
    #[arg(short = 'e', long = "env", value_name = "ENV")]
    pub env: Vec<String>,

    /// Read environment variables from a file
    #[arg(long, value_name = "FILE")]
    pub env_file: Vec<PathBuf>,

    /// User to run as: name or UID, optionally :group or :GID
    #[arg(short = 'u', long, value_name = "USER[:GROUP]")]
    pub user: Option<String>,

    /// Working directory inside the container
    #[arg(short = 'w', long, value_name = "DIR")]
    pub workdir: Option<String>,

    /// Give the process every capability
    #[arg(long)]
    pub privileged: bool,

    /// Key sequence that detaches from the process
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Container to run the command in
    pub container: String,

    /// Command and its arguments
    #[arg(required = true, allow_hyphen_values = true)]
    pub command: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct AttachArgs {
    /// Key sequence that detaches from the container [default: ctrl-p,ctrl-q]
    #[arg(long, value_name = "KEYS")]
    pub detach_keys: Option<String>,

    /// Do not attach standard input
    #[arg(long)]
    pub no_stdin: bool,

    /// Forward signals to the container (accepted for compatibility; always on)
    #[arg(long, default_value_t = true)]
    pub sig_proxy: bool,

    /// Container to attach to
    pub container: String,
}

#[derive(Debug, Clone, Args)]
#[command(trailing_var_arg = true)]
pub struct TopArgs {
    /// Container to show
    pub container: String,

    /// ps(1) format descriptors: user, pid, ppid, pcpu, etime, tty, time, args, comm, ...
    #[arg(allow_hyphen_values = true)]
    pub descriptors: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RenameArgs {
    /// Container to rename
    pub container: String,
    /// New name
    pub new_name: String,
}

#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output
    #[arg(short = 'o', long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Container to export
    pub container: String,
}

#[derive(Debug, Clone, Args)]
pub struct CommitArgs {
    /// Author recorded in the image (config and history)
    #[arg(short = 'a', long, value_name = "AUTHOR")]
    pub author: Option<String>,

    /// Apply a Containerfile instruction: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR
    #[arg(short = 'c', long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Manifest and config format: oci or docker
    #[arg(short = 'f', long, value_name = "FORMAT", default_value = "oci")]
    pub format: String,

    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Commit message (the docker format only)
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Pause a running container while its changes are read
    #[arg(short = 'p', long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub pause: bool,

    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Make the image one layer: the container's whole filesystem
    #[arg(short = 's', long)]
    pub squash: bool,

    /// Container to commit
    pub container: String,

    /// Name for the new image
    pub image: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct DiffArgs {
    /// Output: json
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Container or image
    pub target: String,
}

#[derive(Debug, Clone, Args)]
pub struct HistoryArgs {
    /// Output: json, or a Go template ({{.ID}}, {{.Created}}, {{.CreatedBy}}, {{.Size}}, {{.Comment}}, {{.Tags}}, table ...)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Show times relative to now ("2 hours ago"); false shows RFC 3339 times
    #[arg(short = 'H', long, value_name = "BOOL", default_value_t = true, num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub human: bool,

    /// Do not truncate IDs and commands
    #[arg(long)]
    pub no_trunc: bool,

    /// Print only the IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Image
    pub image: String,
}

#[derive(Debug, Clone, Args)]
pub struct PruneArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Filter: until=TIME, label=KEY[=VALUE]
    #[arg(long, value_name = "FILTER")]
    pub filter: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImagesArgs {
    /// Show every image, including intermediate ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Print only image IDs
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Output: json, or a Go template ({{.ID}}, {{.Repository}}, table ...)
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,

    /// Do not truncate IDs
    #[arg(long)]
    pub no_trunc: bool,

    /// Show digests
    #[arg(long)]
    pub digests: bool,

    /// Filter: dangling=true|false, reference=PATTERN, label=KEY[=VALUE]
    #[arg(short = 'f', long, value_name = "FILTER")]
    pub filter: Vec<String>,

    /// Show only images whose name matches this reference
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImportArgs {
    /// Apply a Containerfile instruction: CMD, ENTRYPOINT, ENV, WORKDIR, USER, LABEL, EXPOSE, STOPSIGNAL, VOLUME
    #[arg(short = 'c', long, value_name = "INSTRUCTION")]
    pub change: Vec<String>,

    /// Commit message recorded in the image history
    #[arg(short = 'm', long, value_name = "MESSAGE")]
    pub message: Option<String>,

    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Tarball (plain, gzip or zstd), a directory, or - for standard input
    pub source: String,

    /// Name for the new image
    pub reference: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct TagArgs {
    /// Image to name
    pub image: String,
    /// New names
    #[arg(required = true)]
    pub names: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct RmiArgs {
    /// Remove the image even when it has several names; remove containers that use it
    #[arg(short = 'f', long)]
    pub force: bool,

    /// Remove every image
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not fail when an image does not exist
    #[arg(short = 'i', long)]
    pub ignore: bool,

    /// Images to remove
    pub images: Vec<String>,
}

#[derive(Debug, Clone, Args)]
pub struct ImagePruneArgs {
    /// Remove every image that no container uses, not just unnamed ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct ResetArgs {
    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct SystemPruneArgs {
    /// Remove every unused image, not just unnamed ones
    #[arg(short = 'a', long)]
    pub all: bool,

    /// Do not ask for confirmation
    #[arg(short = 'f', long)]
    pub force: bool,
}

#[derive(Debug, Clone, Args)]
pub struct DfArgs {
    /// Show each image and container
    #[arg(short = 'v', long)]
    pub verbose: bool,

    /// Output: json, or a Go template
    #[arg(long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct InfoArgs {
    /// Output: json (default), or a Go template
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct VersionArgs {
    /// Output: json, or a Go template
    #[arg(short = 'f', long, value_name = "FORMAT")]
    pub format: Option<String>,
}

#[derive(Debug, Clone, Args)]
pub struct BuildArgs {
    /// Name the image (several allowed)
    #[arg(short = 't', long = "tag", value_name = "NAME")]
    pub tags: Vec<String>,

    /// The Containerfile (- for standard input) [default: CONTEXT/Containerfile, else CONTEXT/Dockerfile]
    #[arg(short = 'f', long = "file", value_name = "FILE")]
    pub file: Option<String>,

    /// Set a build argument: NAME=VALUE, or NAME to copy it from the environment
    #[arg(long, value_name = "NAME[=VALUE]")]
    pub build_arg: Vec<String>,

    /// Read build arguments from a file (NAME=VALUE lines, # comments)
    #[arg(long, value_name = "FILE")]
    pub build_arg_file: Vec<PathBuf>,

    /// Build up to this stage
    #[arg(long, value_name = "STAGE")]
    pub target: Option<String>,

    /// Do not use cached steps
    #[arg(long)]
    pub no_cache: bool,

    /// Make a layer per step and use the cache (false: one new layer for the whole build, no cache)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_value = "true", default_missing_value = "true", action = clap::ArgAction::Set)]
    pub layers: bool,

    /// When to pull FROM images: missing (default), always, never, newer
    #[arg(long, value_name = "POLICY", num_args = 0..=1, default_missing_value = "always")]
    pub pull: Option<String>,

    #[command(flatten)]
    pub registry: RegistryOptions,

    /// Image format: oci (default) or docker
    #[arg(long, value_name = "FORMAT", default_value = "oci")]
    pub format: String,

    /// Write the image ID to this file
    #[arg(long, value_name = "FILE")]
    pub iidfile: Option<PathBuf>,

    /// Print only the image ID
    #[arg(short = 'q', long)]
    pub quiet: bool,

    /// Add a label to the image: KEY=VALUE
    #[arg(long, value_name = "LABEL")]
    pub label: Vec<String>,

    /// Add an annotation to the image manifest: KEY=VALUE
    #[arg(long, value_name = "ANNOTATION")]
    pub annotation: Vec<String>,

    /// Squash the build's new layers into one
    #[arg(long)]
    pub squash: bool,

    /// Squash every layer, the base image's too, into one
    #[arg(long)]
    pub squash_all: bool,

    /// A secret for RUN --mount=type=secret: id=ID,src=PATH (or id=ID,env=VAR)
    #[arg(long, value_name = "SECRET")]
    pub secret: Vec<String>,

    /// Network for RUN steps: host (default) or none
    #[arg(long, visible_alias = "net", value_name = "MODE")]
    pub network: Option<String>,

    /// Bind mount for RUN steps: SRC:DST[:OPTIONS]
    #[arg(short = 'v', long = "volume", value_name = "VOLUME")]
    pub volume: Vec<String>,

    /// Add a capability for RUN steps
    #[arg(long, value_name = "CAP")]
    pub cap_add: Vec<String>,

    /// Drop a capability for RUN steps
    #[arg(long, value_name = "CAP")]
    pub cap_drop: Vec<String>,

    /// Target platform: only the host's (e.g. linux/amd64)
    #[arg(long, value_name = "OS/ARCH")]
    pub platform: Option<String>,

    /// Remove intermediate containers after a build (always done; accepted for compatibility)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub rm: Option<bool>,

    /// Also remove intermediate containers after a failed build (always done; accepted for compatibility)
    #[arg(long, value_name = "BOOL", num_args = 0..=1, default_missing_value = "true", action = clap::ArgAction::Set)]
    pub force_rm: Option<bool>,

    /// Build context directory
    #[arg(default_value = ".")]
    pub context: PathBuf,
}
