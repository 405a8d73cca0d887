//! [`ProviderService`]: the `tfplugin5.Provider` gRPC service.
//!
//! Each trait method only routes: the body lives in `server/<rpc>.rs` and runs inside
//! `server::edge::guarded` (panic → diagnostic; always `Ok`). The service holds
//! what outlives one RPC: the configured provider settings and the cancellation token that `Stop`
//! cancels and in-flight work observes.

use std::sync::{Arc, RwLock};

use tokio_util::sync::CancellationToken;

use super::config::ConfiguredSettings;
use super::server::{self, edge::guarded};
use crate::tfplugin5::pb;

/// The provider service. Cheap to clone (shared state behind an `Arc`).
#[derive(Clone, Default)]
pub struct ProviderService {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    /// set by `Configure`; `None` before
    settings: RwLock<Option<ConfiguredSettings>>,
    /// cancelled by `Stop`
    cancel: CancellationToken,
    /// the build runner's SSH session (one multiplexed connection for this provider process)
    runner: tokio::sync::Mutex<Option<Arc<crate::runner::Session>>>,
}

impl std::fmt::Debug for ProviderService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderService")
            .field("configured", &self.settings().is_some())
            .field("stopped", &self.shared.cancel.is_cancelled())
            .finish()
    }
}

impl ProviderService {
    /// A fresh, unconfigured service.
    pub fn new() -> ProviderService {
        ProviderService::default()
    }

    /// The token `Stop` cancels. In-flight work (builds, uploads) observes it.
    pub fn cancellation(&self) -> CancellationToken {
        self.shared.cancel.clone()
    }

    /// The settings stored by `Configure`, if it ran.
    pub(crate) fn settings(&self) -> Option<ConfiguredSettings> {
        self.shared
            .settings
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// The session for the `build_runner` `config`, opened once per provider process (the
    /// multiplexed connection is shared by every create and refresh of this apply).
    pub(crate) async fn runner_session(
        &self,
        config: &crate::runner::RunnerConfig,
    ) -> Result<Arc<crate::runner::Session>, crate::tfplugin5::Diagnostics> {
        let mut slot = self.shared.runner.lock().await;
        if let Some(s) = slot.as_ref().filter(|s| s.config() == config) {
            return Ok(s.clone());
        }
        let session = crate::runner::Session::open(config.clone())
            .map_err(|e| crate::provider::resources::on_runner::runner_diagnostics(&e))?;
        let session = Arc::new(session);
        *slot = Some(session.clone());
        Ok(session)
    }

    pub(crate) fn set_settings(&self, settings: ConfiguredSettings) {
        *self
            .shared
            .settings
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(settings);
    }
}

type Rpc<T> = Result<tonic::Response<T>, tonic::Status>;

#[tonic::async_trait]
impl pb::provider_server::Provider for ProviderService {
    async fn get_metadata(
        &self,
        req: tonic::Request<pb::get_metadata::Request>,
    ) -> Rpc<pb::get_metadata::Response> {
        let req = req.into_inner();
        guarded("GetMetadata", async { server::get_metadata::handle(req) }).await
    }

    async fn get_schema(
        &self,
        req: tonic::Request<pb::get_provider_schema::Request>,
    ) -> Rpc<pb::get_provider_schema::Response> {
        let req = req.into_inner();
        guarded("GetSchema", async { server::get_schema::handle(req) }).await
    }

    async fn prepare_provider_config(
        &self,
        req: tonic::Request<pb::prepare_provider_config::Request>,
    ) -> Rpc<pb::prepare_provider_config::Response> {
        let req = req.into_inner();
        guarded("PrepareProviderConfig", async {
            server::prepare_provider_config::handle(req)
        })
        .await
    }

    async fn validate_resource_type_config(
        &self,
        req: tonic::Request<pb::validate_resource_type_config::Request>,
    ) -> Rpc<pb::validate_resource_type_config::Response> {
        let req = req.into_inner();
        guarded("ValidateResourceTypeConfig", async {
            server::validate_resource_type_config::handle(req)
        })
        .await
    }

    async fn validate_data_source_config(
        &self,
        req: tonic::Request<pb::validate_data_source_config::Request>,
    ) -> Rpc<pb::validate_data_source_config::Response> {
        let req = req.into_inner();
        guarded("ValidateDataSourceConfig", async {
            server::validate_data_source_config::handle(req)
        })
        .await
    }

    async fn upgrade_resource_state(
        &self,
        req: tonic::Request<pb::upgrade_resource_state::Request>,
    ) -> Rpc<pb::upgrade_resource_state::Response> {
        let req = req.into_inner();
        guarded("UpgradeResourceState", async {
            server::upgrade_resource_state::handle(req)
        })
        .await
    }

    async fn get_resource_identity_schemas(
        &self,
        _req: tonic::Request<pb::get_resource_identity_schemas::Request>,
    ) -> Rpc<pb::get_resource_identity_schemas::Response> {
        guarded("GetResourceIdentitySchemas", async {
            pb::get_resource_identity_schemas::Response::default()
        })
        .await
    }

    async fn configure(
        &self,
        req: tonic::Request<pb::configure::Request>,
    ) -> Rpc<pb::configure::Response> {
        let req = req.into_inner();
        guarded("Configure", async { server::configure::handle(self, req) }).await
    }

    async fn read_resource(
        &self,
        req: tonic::Request<pb::read_resource::Request>,
    ) -> Rpc<pb::read_resource::Response> {
        let req = req.into_inner();
        guarded("ReadResource", server::read_resource::handle(self, req)).await
    }

    async fn plan_resource_change(
        &self,
        req: tonic::Request<pb::plan_resource_change::Request>,
    ) -> Rpc<pb::plan_resource_change::Response> {
        let req = req.into_inner();
        guarded("PlanResourceChange", async {
            server::plan_resource_change::handle(req)
        })
        .await
    }

    async fn apply_resource_change(
        &self,
        req: tonic::Request<pb::apply_resource_change::Request>,
    ) -> Rpc<pb::apply_resource_change::Response> {
        let req = req.into_inner();
        guarded(
            "ApplyResourceChange",
            server::apply_resource_change::handle(self, req),
        )
        .await
    }

    async fn import_resource_state(
        &self,
        req: tonic::Request<pb::import_resource_state::Request>,
    ) -> Rpc<pb::import_resource_state::Response> {
        let req = req.into_inner();
        guarded(
            "ImportResourceState",
            server::import_resource_state::handle(self, req),
        )
        .await
    }

    async fn read_data_source(
        &self,
        req: tonic::Request<pb::read_data_source::Request>,
    ) -> Rpc<pb::read_data_source::Response> {
        let req = req.into_inner();
        guarded(
            "ReadDataSource",
            server::read_data_source::handle(self, req),
        )
        .await
    }

    async fn get_functions(
        &self,
        _req: tonic::Request<pb::get_functions::Request>,
    ) -> Rpc<pb::get_functions::Response> {
        guarded("GetFunctions", async {
            pb::get_functions::Response::default()
        })
        .await
    }

    async fn stop(&self, _req: tonic::Request<pb::stop::Request>) -> Rpc<pb::stop::Response> {
        guarded("Stop", async {
            tracing::info!("Stop: cancelling in-flight work");
            self.shared.cancel.cancel();
            pb::stop::Response::default()
        })
        .await
    }
}
