//! The build-and-publish engine. Knows nothing about Terraform, cty or gRPC: it takes typed specs
//! ([`spec`]) and returns contract types ([`contract`]).

pub mod artifact;
pub mod build;
pub mod cache;
pub mod contract;
pub mod create;
pub mod credentials;
pub mod duration;
pub mod env;
pub mod error;
pub mod hash;
pub mod hyops_state;
pub mod iso;
pub mod net;
pub mod preflight;
pub mod progress;
pub mod publish;
pub mod spec;
pub mod supervisor;
pub mod validate;
pub mod verify;
