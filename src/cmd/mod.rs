//! Verbs: each module turns parsed flags into calls on the library and prints
//! the result. `dispatch` is the one switch.

use anyhow::{Result, bail};

use crate::cli::{Cli, Command};
use crate::exit::ExitStatus;

pub fn dispatch(cli: Cli) -> Result<ExitStatus> {
    let _ = &cli.global;
    match cli.command {
        _ => bail!("not built yet"),
    }
}
