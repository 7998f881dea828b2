//! casco: a daemonless container engine.
//!
//! `main` parses the command line, runs one verb through [`cmd::dispatch`], and
//! turns its outcome into the process exit code; nothing else exits.

#![deny(unsafe_code)]
#![recursion_limit = "256"]

pub mod build;
pub mod cgroups;
pub mod cli;
pub mod cmd;
pub mod container;
pub mod exit;
pub mod format;
pub mod handoff;
pub mod image;
pub mod layers;
pub mod logs;
pub mod monitor;
pub mod namespaces;
#[macro_use]
pub mod output;
pub mod registry;
pub mod store;
pub mod sys;
pub mod trampoline;
pub mod util;

use std::process::ExitCode;

use clap::Parser;

/// Entry point of the binary.
pub fn main() -> ExitCode {
    // Before anything else: no other process may open our /proc/PID/exe (the
    // host binary) or memory. See namespaces/mod.rs on CVE-2019-5736.
    let _ = sys::set_dumpable(false);
    trampoline::run_if_joiner();
    container::runtime::run_if_monitor();
    namespaces::init::run_if_init();

    let cli = match cli::Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return match e.kind() {
                clap::error::ErrorKind::DisplayHelp | clap::error::ErrorKind::DisplayVersion => ExitCode::SUCCESS,
                _ => ExitCode::from(exit::ENGINE),
            };
        }
    };
    match cmd::dispatch(cli) {
        Ok(status) => ExitCode::from(status.code()),
        Err(err) if exit::is_broken_pipe(&err) => ExitCode::SUCCESS,
        Err(err) => {
            if err.downcast_ref::<exit::AlreadyReported>().is_none() {
                output::error(&err);
            }
            ExitCode::from(exit::code_of(&err))
        }
    }
}
