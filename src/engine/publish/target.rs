//! [`PublishTarget::resolve`]: turns the `publish` block, provider settings and HyOps state into
//! one checked target — backend, bucket, prefix, credential — before anything is built or claimed.
//! A GCS target without a usable credential fails here, naming every place one can come from.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::azure::AzureBuilder;
use super::file::FileBuilder;
use super::gcs::GcsBuilder;
use super::layout::validate_prefix;
use super::s3::S3Builder;
use super::{PublishError, RetryConfig, Store};
use crate::engine::credentials::{CredentialError, CredentialInputs, GcsCredential, SecretString};
use crate::engine::hyops_state;
use crate::engine::spec::{Backend, ProviderSettings, PublishSpec};

/// Provider-level store settings (the provider block or CLI `"provider"` object, with env
/// fallbacks applied by [`StoreSettings::from_provider`]).
#[derive(Debug, Clone, Default)]
pub struct StoreSettings {
    /// where a GCS credential may come from
    pub credentials: CredentialInputs,
    /// `gcs_endpoint` (env `HYOPS_GCS_ENDPOINT`)
    pub gcs_endpoint: Option<String>,
    /// `s3_endpoint`
    pub s3_endpoint: Option<String>,
    /// `s3_region`
    pub s3_region: Option<String>,
    /// static S3 keys (default: the `AWS_*` environment)
    pub s3_access_key: Option<(String, SecretString)>,
    /// `azure_storage_account`
    pub azure_storage_account: Option<String>,
    /// Azure account URL override (Azurite, sovereign clouds); default from the account name
    pub azure_endpoint: Option<String>,
    /// static Azure account key (default: the `AZURE_STORAGE_*` environment)
    pub azure_access_key: Option<SecretString>,
    /// retry policy of the hand-written HTTP backends
    pub retry: RetryConfig,
    /// GCS resumable chunk size (default: none, the whole object in one request);
    /// `publish.chunk_size_mib` sets it per target
    pub gcs_chunk_size: Option<u64>,
    /// how long a GCS data request may wait for the server to take more of its body
    /// (default [`super::gcs::DEFAULT_STALL_TIMEOUT`])
    pub upload_stall_timeout: Option<std::time::Duration>,
    /// object_store multipart part size (default 8 MiB)
    pub part_size: Option<usize>,
}

impl StoreSettings {
    /// From provider settings plus the environment fallbacks of DESIGN §2.
    pub fn from_provider(p: &ProviderSettings) -> Self {
        let gcs_endpoint = p.gcs_endpoint.clone().or_else(|| {
            std::env::var(super::gcs::ENV_GCS_ENDPOINT)
                .ok()
                .filter(|v| !v.trim().is_empty())
        });
        StoreSettings {
            credentials: CredentialInputs {
                impersonate: p.gcs_impersonate_service_account.clone(),
                ..CredentialInputs::from_settings_and_env(
                    p.gcs_credentials.as_ref(),
                    p.gcs_credentials_file.as_deref(),
                )
            },
            gcs_endpoint,
            s3_endpoint: p.s3_endpoint.clone(),
            s3_region: p.s3_region.clone(),
            azure_storage_account: p.azure_storage_account.clone(),
            ..Default::default()
        }
    }

    pub(crate) fn gcs_store(
        &self,
        bucket: &str,
        credential: GcsCredential,
        public_base_url: Option<&str>,
    ) -> Result<Box<dyn Store>, PublishError> {
        let mut b = GcsBuilder::new()
            .with_bucket(bucket)
            .with_credential(credential)
            .with_retry(self.retry);
        if let Some(e) = &self.gcs_endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(u) = public_base_url {
            b = b.with_public_base_url(u);
        }
        if let Some(c) = self.gcs_chunk_size {
            b = b.with_chunk_size(c);
        }
        if let Some(d) = self.upload_stall_timeout {
            b = b.with_stall_timeout(d);
        }
        Ok(Box::new(b.build()?))
    }

    pub(crate) fn s3_store(
        &self,
        bucket: &str,
        public_base_url: Option<&str>,
    ) -> Result<Box<dyn Store>, PublishError> {
        let mut b = S3Builder::from_env().with_bucket(bucket);
        if let Some(e) = &self.s3_endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(r) = &self.s3_region {
            b = b.with_region(r);
        }
        if let Some((id, secret)) = &self.s3_access_key {
            b = b.with_access_key(id, secret.expose_secret());
        }
        if let Some(u) = public_base_url {
            b = b.with_public_base_url(u);
        }
        if let Some(p) = self.part_size {
            b = b.with_part_size(p);
        }
        b.build()
    }

    pub(crate) fn azure_store(
        &self,
        account: Option<&str>,
        container: &str,
        public_base_url: Option<&str>,
    ) -> Result<Box<dyn Store>, PublishError> {
        let mut b = AzureBuilder::from_env().with_container(container);
        if let Some(a) = account.or(self.azure_storage_account.as_deref()) {
            b = b.with_account(a);
        }
        if let Some(e) = &self.azure_endpoint {
            b = b.with_endpoint(e);
        }
        if let Some(k) = &self.azure_access_key {
            b = b.with_access_key(k.expose_secret());
        }
        if let Some(u) = public_base_url {
            b = b.with_public_base_url(u);
        }
        if let Some(p) = self.part_size {
            b = b.with_part_size(p);
        }
        b.build()
    }
}

/// A resolved, checked publish destination.
#[derive(Debug, Clone)]
pub struct PublishTarget {
    /// the storage backend (also for a publish command: what its environment says)
    pub backend: Backend,
    /// bucket / container / directory
    pub bucket: String,
    /// object name prefix (validated)
    pub prefix: String,
    /// `public_base_url`
    pub public_base_url: Option<String>,
    /// azure: the storage account
    pub azure_account: Option<String>,
    /// `publish.command` override
    pub command: Option<String>,
    /// `publish.workdir`
    pub workdir: Option<PathBuf>,
    /// `publish.retain_on_destroy`
    pub retain_on_destroy: bool,
    /// the DESIGN §2 environment for a publish command (set by the caller)
    pub command_env: BTreeMap<String, String>,
    /// where publish-command logs go; set by the caller. Default: the system temp dir, where a
    /// log is removed again when the command succeeded (kept, and named in the error, on failure)
    pub command_log_dir: Option<PathBuf>,
    /// the reference this publish records next to the artifact (see [`super::refs`]); `None`
    /// records none (the operator CLI unless its spec names one)
    pub reference_id: Option<String>,
    /// the resolved GCS credential (GCS targets; optional for commands)
    pub(crate) gcs_account: Option<GcsCredential>,
    pub(crate) settings: StoreSettings,
}

impl PublishTarget {
    /// Resolves `repo_state_ref` (under `runtime_root`), explicit overrides and the credential.
    pub fn resolve(
        spec: &PublishSpec,
        settings: &StoreSettings,
        runtime_root: Option<&Path>,
    ) -> Result<Self, PublishError> {
        let mut backend = spec.backend;
        let mut bucket = spec.bucket.clone().filter(|b| !b.trim().is_empty());
        let mut azure_account = settings.azure_storage_account.clone();
        if let Some(r) = spec
            .repo_state_ref
            .as_deref()
            .filter(|r| !r.trim().is_empty())
        {
            let root = runtime_root.ok_or_else(|| {
                PublishError::Config(format!(
                    "publish.repo_state_ref {r:?} needs a runtime_root (provider runtime_root or \
                     env {} / {})",
                    hyops_state::ENV_RUNTIME_ROOT,
                    hyops_state::ENV_HYOPS_ENV
                ))
            })?;
            let repo = hyops_state::resolve_repo(root, r)?;
            backend = backend.or(Some(repo.backend));
            bucket = bucket.or(Some(repo.bucket));
            if repo.azure_account.is_some() {
                azure_account = repo.azure_account;
            }
        }
        let command = spec.command.clone().filter(|c| !c.trim().is_empty());
        let backend = match (backend, &command) {
            (Some(b), _) => b,
            (None, Some(_)) => Backend::File,
            (None, None) => {
                return Err(PublishError::Config(
                    "publish needs `backend` (gcs, s3, azure, file), a `repo_state_ref` that \
                     names one, or a `command`"
                        .into(),
                ))
            }
        };
        let bucket = match (bucket, &command) {
            (Some(b), _) => b.trim().to_owned(),
            (None, Some(_)) => String::new(),
            (None, None) => {
                return Err(PublishError::Config(format!(
                    "publish to {} needs `bucket` or a `repo_state_ref` whose outputs name one",
                    backend.as_str()
                )))
            }
        };
        let prefix = spec.prefix.clone().unwrap_or_default();
        validate_prefix(&prefix)?;
        if let Some(u) = spec
            .public_base_url
            .as_deref()
            .filter(|u| !u.trim().is_empty())
        {
            url::Url::parse(u.trim()).map_err(|e| {
                PublishError::Config(format!("public_base_url {u:?} is not a URL: {e}"))
            })?;
        }
        // GCS needs a credential; a command gets one (by path) only when one is configured.
        // A GCS command is also offered Application Default Credentials when they resolve.
        let needs = backend == Backend::Gcs && command.is_none();
        let offered = command.is_some() && settings.credentials.is_set();
        let gcs_account = if needs || offered {
            Some(settings.credentials.resolve_gcs()?)
        } else if command.is_some() && backend == Backend::Gcs {
            settings.credentials.resolve_gcs().ok()
        } else {
            None
        };
        let mut settings = settings.clone();
        if let Some(mib) = spec.chunk_size_mib {
            let min = if backend == Backend::S3 { 5 } else { 1 };
            if !(min..=4096).contains(&mib) {
                return Err(PublishError::Config(format!(
                    "publish.chunk_size_mib {mib} is outside {min}..=4096"
                )));
            }
            settings.gcs_chunk_size = Some(u64::from(mib) << 20);
            settings.part_size = Some((mib as usize) << 20);
        }
        let target = PublishTarget {
            backend,
            bucket,
            prefix,
            public_base_url: spec
                .public_base_url
                .clone()
                .filter(|u| !u.trim().is_empty()),
            azure_account,
            command,
            workdir: spec.workdir.clone(),
            retain_on_destroy: spec.retain_on_destroy,
            command_env: BTreeMap::new(),
            command_log_dir: None,
            reference_id: None,
            gcs_account,
            settings,
        };
        if target.command.is_none() {
            // Build once now so configuration errors surface before any build work.
            target.store()?;
        }
        Ok(target)
    }

    /// The store this target writes to.
    pub fn store(&self) -> Result<Box<dyn Store>, PublishError> {
        let base = self.public_base_url.as_deref();
        match self.backend {
            Backend::Gcs => {
                let account = self
                    .gcs_account
                    .clone()
                    .ok_or(crate::engine::credentials::CredentialError::Missing)?;
                self.settings.gcs_store(&self.bucket, account, base)
            }
            Backend::S3 => self.settings.s3_store(&self.bucket, base),
            Backend::Azure => {
                self.settings
                    .azure_store(self.azure_account.as_deref(), &self.bucket, base)
            }
            Backend::File => {
                let mut b = FileBuilder::new().with_root(&self.bucket);
                if let Some(u) = base {
                    b = b.with_public_base_url(u);
                }
                Ok(Box::new(b.build()?))
            }
        }
    }

    /// Fetches one token now (GCS targets and commands given a credential), so that a missing or
    /// refused credential — the metadata server is only tried here — fails before any build.
    /// A publish command that was only offered ambient credentials (nothing configured) runs
    /// without one when none is found.
    pub async fn check_credential(&mut self) -> Result<(), PublishError> {
        let Some(c) = &self.gcs_account else {
            return Ok(());
        };
        if self.command.is_some() && c.service_account().is_some() {
            // The command gets the key file itself; no token is needed.
            return Ok(());
        }
        match c.token().await {
            Ok(_) => Ok(()),
            Err(CredentialError::NoneFound { .. })
                if self.command.is_some() && !self.settings.credentials.is_set() =>
            {
                self.gcs_account = None;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The store settings this target was resolved with.
    pub fn settings(&self) -> &StoreSettings {
        &self.settings
    }

    /// `HYOPS_VYOS_REPO_BACKEND` and the bucket/container/account variables of DESIGN §2.
    pub fn repo_env(&self) -> BTreeMap<String, String> {
        let mut env = BTreeMap::new();
        env.insert(
            "HYOPS_VYOS_REPO_BACKEND".into(),
            self.backend.as_str().into(),
        );
        let key = match self.backend {
            Backend::Gcs => Some("HYOPS_VYOS_GCS_BUCKET"),
            Backend::S3 => Some("HYOPS_VYOS_S3_BUCKET"),
            Backend::Azure => Some("HYOPS_VYOS_AZURE_CONTAINER"),
            Backend::File => None,
        };
        if let Some(k) = key {
            env.insert(k.into(), self.bucket.clone());
        }
        if let Some(a) = &self.azure_account {
            env.insert("HYOPS_VYOS_AZURE_STORAGE_ACCOUNT".into(), a.clone());
        }
        env
    }
}
