//! The DESIGN §2 build environment contract: the variables every operator command
//! (`build.command`, `smoke_verify.command`, `publish.command`) and every builder receives.
//! Credentials are not part of it: the publish command alone gets `HYOPS_VYOS_GCS_SA_JSON_FILE`,
//! set by the supervisor from an explicit path.

use std::collections::BTreeMap;
use std::path::Path;

use crate::engine::iso::provenance_url;
use crate::engine::spec::Backend;

/// Inputs of the contract.
#[derive(Debug, Clone)]
pub struct ContractInputs<'a> {
    /// `artifact_key`
    pub artifact_key: &'a str,
    /// `artifact_format`
    pub artifact_format: &'a str,
    /// resolved `artifact_version`
    pub artifact_version: &'a str,
    /// `source_iso_url`; only its provenance form (no userinfo, query or fragment,
    /// [`provenance_url`]) reaches the environment, whatever is passed
    pub source_iso_url: &'a str,
    /// the verified local ISO (absent on a cache hit)
    pub source_iso_path: Option<&'a Path>,
    /// where the command must write (build) or what it must read (verify, publish)
    pub artifact_local_path: &'a Path,
    /// the expected final URL
    pub artifact_url: &'a str,
    /// publish backend, when publishing
    pub repo_backend: Option<Backend>,
    /// bucket / container / directory, when publishing
    pub bucket: Option<&'a str>,
    /// Azure storage account, when publishing to Azure
    pub azure_storage_account: Option<&'a str>,
    /// `build.disk_size_gb`
    pub disk_size_gb: u32,
    /// `build.cloud_init_datasources` (empty when cloud-init is off)
    pub cloud_init_datasources: &'a [String],
    /// `build.guest_agent`
    pub guest_agent: &'a str,
}

/// The contract variables, sorted by name.
pub fn contract_env(i: &ContractInputs<'_>) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), v);
    };
    put("HYOPS_VYOS_ARTIFACT_KEY", i.artifact_key.to_owned());
    put("HYOPS_VYOS_ARTIFACT_FORMAT", i.artifact_format.to_owned());
    put("HYOPS_VYOS_ARTIFACT_VERSION", i.artifact_version.to_owned());
    put(
        "HYOPS_VYOS_SOURCE_ISO_URL",
        provenance_url(i.source_iso_url),
    );
    put(
        "HYOPS_VYOS_SOURCE_ISO_PATH",
        i.source_iso_path
            .map(|p| p.display().to_string())
            .unwrap_or_default(),
    );
    put(
        "HYOPS_VYOS_ARTIFACT_LOCAL_PATH",
        i.artifact_local_path.display().to_string(),
    );
    put("HYOPS_VYOS_ARTIFACT_URL", i.artifact_url.to_owned());
    put(
        "HYOPS_VYOS_REPO_BACKEND",
        i.repo_backend
            .map(|b| b.as_str().to_owned())
            .unwrap_or_default(),
    );
    let bucket = i.bucket.unwrap_or_default().to_owned();
    match i.repo_backend {
        Some(Backend::Gcs) => put("HYOPS_VYOS_GCS_BUCKET", bucket),
        Some(Backend::S3) => put("HYOPS_VYOS_S3_BUCKET", bucket),
        Some(Backend::Azure) => {
            put("HYOPS_VYOS_AZURE_CONTAINER", bucket);
            put(
                "HYOPS_VYOS_AZURE_STORAGE_ACCOUNT",
                i.azure_storage_account.unwrap_or_default().to_owned(),
            );
        }
        Some(Backend::File) | None => {}
    }
    put("HYOPS_VYOS_DISK_SIZE_GB", i.disk_size_gb.to_string());
    put(
        "HYOPS_VYOS_CLOUD_INIT_DS",
        i.cloud_init_datasources.join(","),
    );
    put("HYOPS_VYOS_GUEST_AGENT", i.guest_agent.to_owned());
    m
}
