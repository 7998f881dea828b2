//! `build`: images from Containerfiles and Dockerfiles.
//!
//! The file is parsed ([`parser`]), its words expanded ([`expand`]) and each
//! stage executed step by step: RUN in a working container of the image so
//! far, COPY and ADD into that container's mounted root ([`copy`]), metadata
//! instructions on the config. Every step that changes the filesystem commits
//! the container's upper directory as a layer.

pub mod copy;
pub mod expand;
pub mod ignore;
pub mod parser;
