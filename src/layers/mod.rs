//! Layers: unpacking layer tarballs safely into directories of the store, and
//! assembling a container's root filesystem from them.

pub mod archive;
pub mod diff;
pub mod ingest;
pub mod merge;
pub mod overlay;
pub mod store;
#[cfg(test)]
pub(crate) mod testutil;
pub(crate) mod tree;
pub mod unpack;
