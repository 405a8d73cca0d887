//! Configure: decode and store the provider settings. Unknown values (Terraform 1.0 may send
//! them at plan time) are tolerated with a warning; credential errors are deferred to apply.

use super::dynamic;
use crate::provider::config::provider_settings;
use crate::provider::schema::provider_schema;
use crate::provider::service::ProviderService;
use crate::provider::validate;
use crate::tfplugin5::pb::configure as m;
use crate::tfplugin5::Diagnostics;

pub(crate) fn handle(svc: &ProviderService, req: m::Request) -> m::Response {
    m::Response {
        diagnostics: configure(svc, &req).into_pb(),
    }
}

fn configure(svc: &ProviderService, req: &m::Request) -> Diagnostics {
    let config = match dynamic::decode_with(
        req.config.as_ref(),
        provider_schema(),
        "provider configuration",
    ) {
        Ok(v) => v,
        Err(d) => return d.into(),
    };
    let mut diags = validate::provider_config(&config);
    if diags.has_errors() {
        return diags;
    }
    match provider_settings(&config) {
        Ok(configured) => {
            if !configured.unknown.is_empty() {
                let names: Vec<String> =
                    configured.unknown.iter().map(ToString::to_string).collect();
                diags.warning(
                    "Provider configuration not yet known",
                    format!(
                        "{} will be known only during apply; checks that need them (credentials, \
                         endpoints) are deferred to apply.",
                        names.join(", ")
                    ),
                );
            }
            tracing::debug!(
                terraform_version = %req.terraform_version,
                settings = ?configured.settings,
                "configured"
            );
            svc.set_settings(configured);
        }
        Err(d) => diags.extend(d),
    }
    diags
}
