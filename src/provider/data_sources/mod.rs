//! Data sources. Each file owns one data source type's engine call and state mapping.

pub mod vyos_artifact;
