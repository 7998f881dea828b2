//! Small helpers with no knowledge of containers: time, IDs, names, sizes.

pub mod ids;
pub mod regex;
pub mod size;
pub mod time;
