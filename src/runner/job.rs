//! The job frame sent on the remote CLI's stdin (`image apply --config - --hold-stdin`): one JSON
//! line `{"spec": {…}, "gcs_credentials": "…"|null}`. After it the sender keeps stdin open; the
//! remote side treats end-of-input as "cancel", so closing the SSH channel alone stops the build.
//!
//! The credential exists only inside this frame (wrapped in [`SecretString`], so Debug shows
//! `<redacted>`); the remote side writes it to a 0600 file in a 0700 directory for the run.

use serde::{Deserialize, Serialize};

use crate::engine::credentials::SecretString;
use crate::engine::spec::ImageSpec;

/// One build job.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Job {
    /// the spec to build (provider settings in `spec.provider`)
    pub spec: ImageSpec,
    /// the GCS service-account JSON, when one was configured locally
    #[serde(default)]
    pub gcs_credentials: Option<SecretString>,
}

impl Job {
    /// The frame: one JSON line (secret inside; never log it).
    pub fn encode(&self) -> Result<SecretString, serde_json::Error> {
        let mut line = serde_json::to_string(self)?;
        line.push('\n');
        Ok(SecretString::new(line))
    }

    /// Parses one frame line.
    pub fn decode(line: &str) -> Result<Job, serde_json::Error> {
        serde_json::from_str(line.trim_end())
    }
}
