//! Verbs: each module turns parsed flags into calls on the library and prints
//! the result. `dispatch` is the one switch.

mod build;
mod commit;
mod container;
mod image;
mod inspect;
pub(crate) mod registry;
mod run;
mod system;

use anyhow::Result;

use crate::cli::{Cli, Command, ContainerCommand, ImageCommand, ManifestCommand, SystemCommand};
use crate::exit::{AlreadyReported, ExitStatus, code_of};
use crate::store::Store;

pub fn dispatch(cli: Cli) -> Result<ExitStatus> {
    let g = &cli.global;
    crate::output::set_level(&g.log_level)?;
    crate::output::debug(|| "command line parsed".into());
    if let Command::Version(a) = &cli.command {
        return system::version(a);
    }
    let store = Store::open(g)?;
    crate::output::debug(|| format!("store {} opened", store.root.display()));
    match cli.command {
        Command::Run(a) | Command::Container(ContainerCommand::Run(a)) => run::run(&store, a),
        Command::Create(a) | Command::Container(ContainerCommand::Create(a)) => run::create(&store, a),
        Command::Start(a) | Command::Container(ContainerCommand::Start(a)) => container::start(&store, a),
        Command::Stop(a) | Command::Container(ContainerCommand::Stop(a)) => container::stop(&store, a),
        Command::Kill(a) | Command::Container(ContainerCommand::Kill(a)) => container::kill(&store, a),
        Command::Restart(a) | Command::Container(ContainerCommand::Restart(a)) => container::restart(&store, a),
        Command::Rm(a) | Command::Container(ContainerCommand::Rm(a)) => container::rm(&store, a),
        Command::Ps(a) | Command::Container(ContainerCommand::Ps(a)) => container::ps(&store, a),
        Command::Logs(a) | Command::Container(ContainerCommand::Logs(a)) => container::logs(&store, a),
        Command::Wait(a) | Command::Container(ContainerCommand::Wait(a)) => container::wait(&store, a),
        Command::Inspect(a) => inspect::inspect(&store, a),
        Command::Container(ContainerCommand::Inspect(a)) => inspect::container_inspect(&store, a),
        Command::Exec(a) | Command::Container(ContainerCommand::Exec(a)) => run::exec(&store, a),
        Command::Attach(a) | Command::Container(ContainerCommand::Attach(a)) => run::attach(&store, a),
        Command::Top(a) | Command::Container(ContainerCommand::Top(a)) => container::top(&store, a),
        Command::Rename(a) | Command::Container(ContainerCommand::Rename(a)) => container::rename(&store, a),
        Command::Export(a) | Command::Container(ContainerCommand::Export(a)) => container::export(&store, a),
        Command::Container(ContainerCommand::Prune(a)) => container::prune(&store, a),
        Command::Commit(a) | Command::Container(ContainerCommand::Commit(a)) => commit::commit(&store, a),
        Command::Diff(a) => commit::diff(&store, a, commit::DiffTarget::Either),
        Command::Container(ContainerCommand::Diff(a)) => commit::diff(&store, a, commit::DiffTarget::Container),
        Command::Image(ImageCommand::Diff(a)) => commit::diff(&store, a, commit::DiffTarget::Image),
        Command::History(a) | Command::Image(ImageCommand::History(a)) => commit::history(&store, a),
        Command::Images(a) | Command::Image(ImageCommand::Ls(a)) => image::images(&store, a),
        Command::Image(ImageCommand::Inspect(a)) => inspect::image_inspect(&store, a),
        Command::Import(a) | Command::Image(ImageCommand::Import(a)) => image::import(&store, a),
        Command::Tag(a) | Command::Image(ImageCommand::Tag(a)) => image::tag(&store, a),
        Command::Rmi(a) | Command::Image(ImageCommand::Rm(a)) => image::rmi(&store, a),
        Command::Image(ImageCommand::Prune(a)) => image::prune(&store, a),
        Command::System(SystemCommand::Reset(a)) => system::reset(&store, a),
        Command::System(SystemCommand::Prune(a)) => system::prune(&store, a),
        Command::System(SystemCommand::Df(a)) => system::df(&store, a),
        Command::Info(a) | Command::System(SystemCommand::Info(a)) => system::info(&store, a),
        Command::Pull(a) | Command::Image(ImageCommand::Pull(a)) => registry::pull(&store, a),
        Command::Push(a) | Command::Image(ImageCommand::Push(a)) => registry::push(&store, a),
        Command::Login(a) => registry::login(&store, a),
        Command::Logout(a) => registry::logout(&store, a),
        Command::Save(a) | Command::Image(ImageCommand::Save(a)) => registry::save(&store, a),
        Command::Load(a) | Command::Image(ImageCommand::Load(a)) => registry::load(&store, a),
        Command::Build(a) | Command::Image(ImageCommand::Build(a)) => build::build(&store, *a),
        Command::Manifest(ManifestCommand::Inspect(a)) => registry::manifest_inspect(&store, a),
        Command::Version(_) => unreachable!("handled above"),
    }
}

/// Runs `f` for each target, printing each failure as it happens (as podman
/// does) and failing at the end with the last failure's exit code.
pub(crate) fn each<T>(targets: &[T], mut f: impl FnMut(&T) -> Result<()>) -> Result<ExitStatus> {
    let mut last = None;
    for t in targets {
        if let Err(e) = f(t) {
            if crate::exit::is_broken_pipe(&e) {
                return Err(e);
            }
            crate::output::error(&e);
            last = Some(code_of(&e));
        }
    }
    match last {
        Some(code) => Err(AlreadyReported(code).into()),
        None => Ok(ExitStatus::Success),
    }
}
