//! PrepareProviderConfig: validate the provider block; the prepared config is the config as
//! given (defaults are resolved from the environment at use, never written back).

use super::dynamic;
use crate::provider::schema::provider_schema;
use crate::provider::validate;
use crate::tfplugin5::pb::prepare_provider_config as m;
use crate::tfplugin5::Diagnostics;

pub(crate) fn handle(req: m::Request) -> m::Response {
    let mut diags = Diagnostics::new();
    let config = match dynamic::decode_with(
        req.config.as_ref(),
        provider_schema(),
        "provider configuration",
    ) {
        Ok(v) => v,
        Err(d) => {
            diags.push(d);
            return m::Response {
                prepared_config: None,
                diagnostics: diags.into_pb(),
            };
        }
    };
    diags.extend(validate::provider_config(&config));
    m::Response {
        prepared_config: req.config,
        diagnostics: diags.into_pb(),
    }
}
