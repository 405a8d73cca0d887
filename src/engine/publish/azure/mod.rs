//! Azure Blob Storage through object_store. Keys come from the standard `AZURE_STORAGE_*`
//! environment variables ([`AzureBuilder::from_env`]); the account from provider
//! `azure_storage_account`. Storage URIs are `az://ACCOUNT/CONTAINER/NAME`. See the object_store
//! adapter for idempotency and the multipart caveat (uncommitted blocks expire after 7 days).
//! With a shared account key, uploads go through [`blocks`] (per-block Content-MD5, blocks in
//! parallel, conditional commit) instead of object_store's multipart writer.

mod blocks;

use std::sync::Arc;

pub(crate) use blocks::{AzureBlocks, Commit};

use object_store::azure::{AzureConfigKey, MicrosoftAzureBuilder};
use object_store::ClientConfigKey;

use super::layout::encode_segments;
use super::objstore::{ObjStore, DEFAULT_PART_SIZE};
use super::{PublishError, Store};
use crate::engine::spec::Backend;

/// Builds an Azure [`Store`].
#[derive(Debug, Clone, Default)]
pub struct AzureBuilder {
    inner: Option<MicrosoftAzureBuilder>,
    account: Option<String>,
    container: Option<String>,
    endpoint: Option<String>,
    access_key: Option<String>,
    public_base_url: Option<String>,
    part_size: Option<usize>,
}

impl AzureBuilder {
    /// Defaults; no environment.
    pub fn new() -> Self {
        AzureBuilder {
            inner: Some(MicrosoftAzureBuilder::new()),
            ..Default::default()
        }
    }

    /// Reads the standard `AZURE_STORAGE_*` variables (`AZURE_STORAGE_ACCOUNT_NAME`,
    /// `AZURE_STORAGE_ACCOUNT_KEY`, `AZURE_STORAGE_SAS_KEY`, ...).
    pub fn from_env() -> Self {
        AzureBuilder {
            inner: Some(MicrosoftAzureBuilder::from_env()),
            ..Default::default()
        }
    }

    /// The storage account.
    pub fn with_account(mut self, account: impl Into<String>) -> Self {
        self.account = Some(account.into());
        self
    }

    /// The container.
    pub fn with_container(mut self, container: impl Into<String>) -> Self {
        self.container = Some(container.into());
        self
    }

    /// The account URL (e.g. `http://127.0.0.1:10000/devstoreaccount1` for Azurite; http only
    /// to loopback).
    pub fn with_endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// A shared account key (instead of the environment).
    pub fn with_access_key(mut self, key: impl Into<String>) -> Self {
        self.access_key = Some(key.into());
        self
    }

    /// `public_base_url`.
    pub fn with_public_base_url(mut self, base: impl Into<String>) -> Self {
        self.public_base_url = Some(base.into());
        self
    }

    /// Block size for large uploads.
    pub fn with_part_size(mut self, bytes: usize) -> Self {
        self.part_size = Some(bytes);
        self
    }

    /// Validates and builds.
    pub fn build(self) -> Result<Box<dyn Store>, PublishError> {
        let container = self
            .container
            .ok_or_else(|| PublishError::Config("azure: no container".into()))?;
        let mut b = self
            .inner
            .unwrap_or_default()
            .with_container_name(&container)
            // Blocks are 8 MiB: allow slow links (object_store's default request timeout is 30 s).
            .with_config(AzureConfigKey::Client(ClientConfigKey::Timeout), "300s");
        if let Some(a) = &self.account {
            b = b.with_account(a);
        }
        let account = match (&self.account, std::env::var("AZURE_STORAGE_ACCOUNT_NAME")) {
            (Some(a), _) => a.clone(),
            (None, Ok(a)) if !a.is_empty() => a,
            _ => {
                return Err(PublishError::Config(
                    "azure: no storage account (provider azure_storage_account or env \
                     AZURE_STORAGE_ACCOUNT_NAME)"
                        .into(),
                ))
            }
        };
        // A shared key (given, or in the variables object_store reads) enables block uploads.
        let shared_key = self.access_key.clone().or_else(|| {
            [
                "AZURE_STORAGE_ACCOUNT_KEY",
                "AZURE_STORAGE_ACCESS_KEY",
                "AZURE_STORAGE_MASTER_KEY",
            ]
            .iter()
            .find_map(|k| std::env::var(k).ok().filter(|v| !v.trim().is_empty()))
        });
        if let Some(k) = self.access_key {
            b = b.with_access_key(k);
        }
        let mut public_base = format!(
            "https://{account}.blob.core.windows.net/{}",
            encode_segments(&container)
        );
        if let Some(ep) = &self.endpoint {
            let ep = ep.trim_end_matches('/');
            super::gcs::require_secure("azure endpoint", ep)?;
            b = b
                .with_endpoint(ep.to_owned())
                .with_allow_http(ep.starts_with("http://"));
            public_base = format!("{ep}/{}", encode_segments(&container));
        }
        if let Some(p) = self.public_base_url.filter(|p| !p.trim().is_empty()) {
            public_base = p.trim().trim_end_matches('/').to_owned();
        }
        let inner = b
            .build()
            .map_err(|e| PublishError::Config(format!("azure: {e}")))?;
        let label = format!("az://{account}/{container}");
        let account_url = self
            .endpoint
            .as_deref()
            .map(|e| e.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{account}.blob.core.windows.net"));
        let blocks = match shared_key {
            Some(k) => Some(AzureBlocks::new(
                &account,
                &k,
                &account_url,
                &container,
                &label,
            )?),
            None => None,
        };
        Ok(Box::new(ObjStore {
            inner: Arc::new(inner),
            backend: Backend::Azure,
            label,
            uri_base: format!("az://{account}/{container}"),
            public_base,
            part_size: self.part_size.unwrap_or(DEFAULT_PART_SIZE),
            probe: None,
            azure: blocks,
        }))
    }
}
