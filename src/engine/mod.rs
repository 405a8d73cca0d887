//! The build-and-publish engine. Knows nothing about Terraform, cty or gRPC: it takes typed specs
//! ([`spec`]) and returns contract types ([`contract`]).

pub mod contract;
pub mod credentials;
pub mod hyops_state;
pub mod progress;
pub mod publish;
pub mod spec;
