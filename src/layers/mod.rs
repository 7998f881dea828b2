//! Layers: unpacking layer tarballs safely into directories of the store, and
//! assembling a container's root filesystem from them.

pub mod overlay;

pub mod archive;
pub mod merge;
#[cfg(test)]
mod testutil;
mod tree;
pub mod unpack;
