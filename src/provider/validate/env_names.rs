//! Rule: an element of `build.pass_environment` is an environment variable name that may reach a
//! child (the credential and go-plugin handshake variables never may).

use super::{invalid, AttrRule};
use crate::cty::{Path, Value};
use crate::engine::supervisor::{env_name_denied, EnvName};
use crate::tfplugin5::Diagnostics;

/// A passable environment variable name.
pub(crate) struct PassableEnvName;

/// The one instance.
pub(crate) static PASSABLE_ENV_NAME: PassableEnvName = PassableEnvName;

impl AttrRule for PassableEnvName {
    fn description(&self) -> String {
        "must be an environment variable name (letters, digits and _, not starting with a digit), \
         not HYOPS_VYOS_GCS_SA_JSON* nor a go-plugin handshake variable"
            .to_owned()
    }

    fn check(&self, value: &Value, at: &Path, diags: &mut Diagnostics) {
        let Some(s) = value.as_str() else { return };
        match EnvName::new(s) {
            Err(e) => diags.push(invalid(at, format!("{e}: write e.g. \"AWS_PROFILE\"."))),
            Ok(n) if env_name_denied(n.as_str()) => diags.push(invalid(
                at,
                format!(
                    "{n} is never passed to a child: the GCS credential reaches the publish \
                     command only as the path HYOPS_VYOS_GCS_SA_JSON_FILE. Remove it."
                ),
            )),
            Ok(_) => {}
        }
    }
}
