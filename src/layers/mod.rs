//! Layers: unpacking layer tarballs safely into directories of the store, and
//! assembling a container's root filesystem from them.

pub mod overlay;
