//! Refusal of write-only attributes for clients that do not support them (Terraform < 1.11 sends
//! no `ClientCapabilities`, so it would silently store nothing and apply without the value).
//! Checked once, at the edge, for every resource type.

use crate::cty::Value;
use crate::tfplugin5::schema::Schema;
use crate::tfplugin5::{pb, Diagnostic, Diagnostics};

/// Error diagnostics for each write-only attribute set in `config` while `caps` does not announce
/// write-only support.
pub(crate) fn refuse_without_capability(
    schema: &Schema,
    config: &Value,
    caps: Option<&pb::ClientCapabilities>,
) -> Diagnostics {
    if caps.is_some_and(|c| c.write_only_attributes_allowed) {
        return Diagnostics::new();
    }
    schema
        .block
        .write_only_paths()
        .into_iter()
        .filter(|path| config.get_path(path).is_some_and(|v| !v.is_null()))
        .map(|path| {
            let name = path.to_string();
            Diagnostic::error(
                "Write-only attribute not supported by this Terraform",
                format!(
                    "{name} is a write-only attribute: it needs Terraform 1.11 or later (plugin \
                     protocol 5.8), and this Terraform did not announce support for write-only \
                     attributes. Remove {name} and give the credential to the provider instead: \
                     set gcs_credentials_file in the provider block, or the environment variable \
                     HYOPS_VYOS_GCS_SA_JSON (service-account JSON) or HYOPS_VYOS_GCS_SA_JSON_FILE \
                     (its path)."
                ),
            )
            .at(path)
        })
        .collect()
}
