//! The service edge: every RPC body runs inside [`guarded`], which turns a panic into an error
//! diagnostic in an otherwise empty response, so a provider bug never drops the connection.

use std::future::Future;

use crate::tfplugin5::diagnostics::catch_panic;
use crate::tfplugin5::{pb, Diagnostics};

/// A response message that can carry diagnostics.
pub(crate) trait Reply: Default {
    /// Appends `diags` to the response.
    fn add_diagnostics(&mut self, diags: Diagnostics);
}

macro_rules! reply_with_diagnostics {
    ($($t:ty),* $(,)?) => {$(
        impl Reply for $t {
            fn add_diagnostics(&mut self, diags: Diagnostics) {
                self.diagnostics.extend(diags.into_pb());
            }
        }
    )*};
}

reply_with_diagnostics!(
    pb::get_metadata::Response,
    pb::get_provider_schema::Response,
    pb::prepare_provider_config::Response,
    pb::validate_resource_type_config::Response,
    pb::validate_data_source_config::Response,
    pb::upgrade_resource_state::Response,
    pb::get_resource_identity_schemas::Response,
    pb::configure::Response,
    pb::read_resource::Response,
    pb::plan_resource_change::Response,
    pb::apply_resource_change::Response,
    pb::import_resource_state::Response,
    pb::read_data_source::Response,
    pb::get_functions::Response,
);

impl Reply for pb::stop::Response {
    fn add_diagnostics(&mut self, diags: Diagnostics) {
        let text: Vec<String> = diags
            .iter()
            .map(|d| format!("{}: {}", d.summary, d.detail))
            .collect();
        self.error = text.join("; ");
    }
}

/// Runs one RPC body; a panic inside becomes an error diagnostic naming `rpc`. Always `Ok`:
/// problems travel as diagnostics, never as gRPC errors.
pub(crate) async fn guarded<R, F>(
    rpc: &'static str,
    body: F,
) -> Result<tonic::Response<R>, tonic::Status>
where
    R: Reply,
    F: Future<Output = R>,
{
    tracing::debug!(rpc, "request");
    let reply = match catch_panic(rpc, body).await {
        Ok(reply) => reply,
        Err(diag) => {
            tracing::error!(rpc, summary = %diag.summary, "handler panicked");
            let mut reply = R::default();
            reply.add_diagnostics(diag.into());
            reply
        }
    };
    Ok(tonic::Response::new(reply))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn handler_panic_becomes_error_diagnostic_in_an_ok_response() {
        let body = async {
            let v: Vec<u8> = Vec::new();
            let _ = v[3];
            pb::plan_resource_change::Response::default()
        };
        let resp = guarded("PlanResourceChange", body)
            .await
            .expect("the RPC itself succeeds")
            .into_inner();
        assert_eq!(resp.diagnostics.len(), 1);
        let d = &resp.diagnostics[0];
        assert_eq!(d.severity, pb::diagnostic::Severity::Error as i32);
        assert!(d.detail.contains("PlanResourceChange"), "{}", d.detail);
        assert!(d.detail.contains("index out of bounds"), "{}", d.detail);
        assert!(resp.planned_state.is_none());
    }

    #[tokio::test]
    async fn stop_panic_is_reported_in_its_error_field() {
        let resp = guarded("Stop", async { panic!("stop failed") })
            .await
            .expect("ok")
            .into_inner();
        let resp: pb::stop::Response = resp;
        assert!(resp.error.contains("stop failed"));
    }
}
