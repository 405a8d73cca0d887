//! Managed resources. Each file owns one resource type's create/read/delete wiring to the engine
//! and the mapping of its results onto state.

pub mod vyos_image;
