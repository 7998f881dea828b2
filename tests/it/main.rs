//! Integration tests: the real `casco` binary against temporary stores.
//!
//! Run as root after `bash .ci/setup` (CI runs `bash .ci/run`). Every test in
//! `both!` runs twice: `NAME::root` and `NAME::rootless` (as the `casco-test`
//! user). Expected values come from podman 4.3.1 on Debian 12; see
//! `tests/fixtures/podman-reference.md` for what podman printed.

#[macro_use]
mod common;

mod attach;
mod build;
mod commit;
mod concurrency;
mod harness;
mod image;
mod lifecycle;
mod man;
mod options;
mod registry;
mod run;
mod security;
mod signals;
mod system;
