//! HTTP policy shared by every engine client (ISO download, GCS JSON API, manifest and URL checks):
//! one retry/backoff schedule ([`retry`]), one redirect policy ([`redirect`]), one URL redactor
//! ([`redact_url`], implemented beside the ISO provenance code and re-exported here).
//!
//! Knows no store, no ISO and no Terraform: callers decide what is retryable and what a failure
//! means; this module decides how long to wait, when to give up and which redirects to follow.

pub mod redirect;
pub mod retry;

pub use crate::engine::iso::{redact, redact_url};
pub use retry::RetryConfig;
