//! HyOps state interop: resolve `*_state_ref` under `runtime_root`, read the object repository a
//! `repo_state_ref` points at, read artifacts for the data source, and write this resource's state
//! file atomically (mode 0600, sorted keys, HyOps output shape). Knows no publish internals.

mod error;

pub use error::HyopsStateError;
