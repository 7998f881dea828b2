//! Registry and archive verbs: pull, push, login, logout, save, load,
//! manifest inspect.

use anyhow::{Result, bail};

use crate::cli::{LoadArgs, LoginArgs, LogoutArgs, ManifestInspectArgs, PullArgs, PushArgs, SaveArgs};
use crate::exit::ExitStatus;
use crate::store::Store;

pub fn pull(_store: &Store, _a: PullArgs) -> Result<ExitStatus> {
    bail!("pull is not built yet")
}

pub fn push(_store: &Store, _a: PushArgs) -> Result<ExitStatus> {
    bail!("push is not built yet")
}

pub fn login(_store: &Store, _a: LoginArgs) -> Result<ExitStatus> {
    bail!("login is not built yet")
}

pub fn logout(_store: &Store, _a: LogoutArgs) -> Result<ExitStatus> {
    bail!("logout is not built yet")
}

pub fn save(_store: &Store, _a: SaveArgs) -> Result<ExitStatus> {
    bail!("save is not built yet")
}

pub fn load(_store: &Store, _a: LoadArgs) -> Result<ExitStatus> {
    bail!("load is not built yet")
}

pub fn manifest_inspect(_store: &Store, _a: ManifestInspectArgs) -> Result<ExitStatus> {
    bail!("manifest inspect is not built yet")
}
