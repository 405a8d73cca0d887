//! The `verification` object of the contract and the manifest: what the smoke gate ran on the
//! artifact before it was published and what it found, boot timings included. Pure data.

use serde::{Deserialize, Serialize};

/// What the smoke gate ran and found.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Verification {
    /// true when every enabled check passed (false: a check failed under `required = false`)
    pub passed: bool,
    /// the image gate: `qemu-img` (info + check) or `command` (`smoke_verify.command`)
    pub gate: String,
    /// the boot check, when `smoke_verify.boot` was enabled
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub boot: Option<BootVerification>,
}

/// What booting the image under QEMU showed.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct BootVerification {
    /// every required signal was seen
    pub passed: bool,
    /// `kvm` or `tcg`
    pub accelerator: String,
    /// seconds from QEMU start until every `expect` pattern had matched (the login prompt by
    /// default)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_login: Option<f64>,
    /// seconds from QEMU start until the guest agent answered `guest-ping` and `guest-info`
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_agent: Option<f64>,
    /// seconds from QEMU start until cloud-init reported the seed's instance-id
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seconds_to_cloud_init: Option<f64>,
    /// seconds the whole boot check took
    pub seconds_total: f64,
    /// `guest-info` version of the guest agent, when checked
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub guest_agent_version: Option<String>,
    /// the fresh NoCloud instance-id cloud-init reported, when checked
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init_instance_id: Option<String>,
    /// cloud-init applied the seed's user-data too (its `write_files` marker, read through the
    /// agent, or its `final_message` on the console); informational, not required to pass
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init_user_data: Option<bool>,
    /// `guest_agent` or `serial-console`: where the instance-id was read
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_init_source: Option<String>,
    /// the `expect` patterns that matched
    #[serde(default)]
    pub expect: Vec<String>,
    /// why the boot failed (`required = false` only; otherwise the create fails)
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<String>,
}
