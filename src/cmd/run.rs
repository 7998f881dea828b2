//! `run`, `create`, `exec`, `attach`: making containers and talking to them.

use anyhow::{Result, bail};

use crate::cli::{AttachArgs, CreateArgs, ExecArgs, RunArgs};
use crate::container::{self, runtime};
use crate::exit::ExitStatus;
use crate::outln;
use crate::store::Store;

pub fn create(store: &Store, a: CreateArgs) -> Result<ExitStatus> {
    let c = super::registry::create_container(store, &a.opts, &a.image, &a.command)?;
    outln!("{}", c.config.id)?;
    Ok(ExitStatus::Success)
}

pub fn run(store: &Store, a: RunArgs) -> Result<ExitStatus> {
    if a.detach && a.opts.log_driver.as_deref() == Some("passthrough") {
        bail!("--log-driver passthrough needs a foreground container: drop -d or pick another log driver");
    }
    if let Some(k) = &a.detach_keys {
        crate::monitor::attach::parse_detach_keys(k)?;
    }
    let c = super::registry::create_container(store, &a.opts, &a.image, &a.command)?;
    let id = c.config.id.clone();
    crate::output::debug(|| format!("container {} created", &id[..12]));
    if a.detach {
        if let Err(e) = runtime::start_detached(store, &id) {
            if c.config.auto_remove {
                let _ = container::ops::remove(store, &id, true, Some(0));
            }
            return Err(e);
        }
        outln!("{id}")?;
        return Ok(ExitStatus::Success);
    }
    runtime::run_foreground(store, &id, a.opts.interactive)
}

pub fn exec(store: &Store, a: ExecArgs) -> Result<ExitStatus> {
    crate::namespaces::exec::exec(store, &a)
}

pub fn attach(store: &Store, a: AttachArgs) -> Result<ExitStatus> {
    let c = container::resolve(store, &a.container)?;
    runtime::attach(store, &c, !a.no_stdin, a.detach_keys.as_deref())
}
