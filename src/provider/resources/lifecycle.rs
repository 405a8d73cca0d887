//! The parts of `hyops_vyos_image`'s lifecycle that release or re-check a published artifact:
//! [`delete`] (release the instance's reference; delete only as the last user), the warnings of
//! a planned destroy ([`plan_destroy_warnings`]), the re-check a new `gcs_credentials_wo_version`
//! triggers ([`recheck`]), and the credential messages they share with refresh and import.
//!
//! The write-only credential reaches only create and update (Terraform sends write-only values
//! nowhere else), so everything here names the provider settings that serve it instead.

use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::bridge::{bounded, engine_env, publish_diagnostic};
use super::published::{check_published, recorded_contract};
use super::references::{self, locate, reference_of};
use super::vyos_image::READ_TIMEOUT;
use crate::cty::Value;
use crate::engine::credentials::{CredentialError, ENV_SA_JSON, ENV_SA_JSON_FILE};
use crate::engine::duration::parse_go_duration;
use crate::engine::publish::refs::Release;
use crate::engine::publish::{PublishError, StoreSettings, Verification};
use crate::engine::spec::ProviderSettings;
use crate::tfplugin5::{Diagnostic, Diagnostics};

/// Default `timeouts.delete`.
pub const DEFAULT_DELETE_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// `publish.retain_on_destroy` of a state value.
fn retain_on_destroy(state: &Value) -> bool {
    state
        .get("publish")
        .and_then(|p| p.get("retain_on_destroy"))
        .and_then(Value::as_bool)
        .unwrap_or(false)
}

/// `timeouts.delete` of a state value (Go duration), default 30m.
fn delete_timeout(state: &Value) -> Result<Duration, Diagnostics> {
    match state
        .get("timeouts")
        .and_then(|t| t.get("delete"))
        .and_then(Value::as_str)
    {
        Some(t) => parse_go_duration(t).map_err(|e| {
            Diagnostic::error("Invalid timeouts.delete", e.to_string())
                .at(crate::cty::Path::attr("timeouts").join_attr("delete"))
                .into()
        }),
        None => Ok(DEFAULT_DELETE_TIMEOUT),
    }
}

/// What a credential problem says on destroy: the provider settings that serve destroy.
pub(super) fn missing_provider_credential(action: &str) -> String {
    format!(
        "{action} needs a GCS credential from the provider: set gcs_credentials or \
         gcs_credentials_file in the provider block, or the environment variable {ENV_SA_JSON} \
         (service-account JSON) or {ENV_SA_JSON_FILE} (its path). The resource's write-only \
         gcs_credentials_wo is not available here: Terraform sends it only with the \
         configuration of a create or update."
    )
}

/// Refresh without a provider credential: the state stays, with a warning saying which settings
/// enable the check.
pub(super) fn check_skipped(
    c: &crate::engine::contract::ArtifactContract,
    mut diags: Diagnostics,
) -> Diagnostics {
    tracing::warn!("remote check skipped: no provider credential");
    diags.warning(
        "hyops_vyos_image: remote check skipped",
        format!(
            "The published image of {} was not checked against the store, and the state is \
             kept as it is. {}",
            c.artifact_key,
            missing_provider_credential("Checking it at refresh")
        ),
    );
    diags
}

/// The store said "no credential" (none configured anywhere).
pub(super) fn is_missing_credential(e: &PublishError) -> bool {
    matches!(
        e,
        PublishError::Credentials(CredentialError::Missing | CredentialError::NoneFound { .. })
    )
}

/// No GCS credential reaches this provider (only a write-only one ever could).
pub(super) fn provider_credential_missing(settings: &StoreSettings) -> bool {
    !settings.credentials.is_set()
}

/// Warnings for a planned destroy (the `plan_destroy` capability makes Terraform ask): a GCS
/// artifact with no provider credential cannot be released, so the apply would fail.
pub fn plan_destroy_warnings(state: &Value, settings: &ProviderSettings) -> Diagnostics {
    let mut warnings = Diagnostics::new();
    let Some(contract) = recorded_contract(state).filter(|c| c.published) else {
        return warnings;
    };
    if !contract.artifact_storage_uri.starts_with("gs://") {
        return warnings;
    }
    let env = engine_env(settings);
    if provider_credential_missing(env.store_settings()) {
        let (summary, action) = if retain_on_destroy(state) {
            (
                "Destroy will leave this instance's reference behind",
                "Removing the reference",
            )
        } else {
            ("Destroy will fail: no provider credential", "Destroy")
        };
        warnings.warning(summary, missing_provider_credential(action));
    }
    warnings
}

/// Releases the instance's reference to its published artifact and deletes the objects and
/// manifest only when no other reference is left and `retain_on_destroy` is false. Returns
/// warnings (e.g. objects published by a command at an http URL cannot be deleted).
pub async fn delete(
    state: &Value,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<Diagnostics, Diagnostics> {
    let mut warnings = Diagnostics::new();
    let Some(contract) = recorded_contract(state) else {
        warnings.warning(
            "No artifact contract in state",
            "The state records no contract_json, so nothing published is known; only the \
             instance was removed from state.",
        );
        return Ok(warnings);
    };
    if !contract.published {
        tracing::info!("unpublished build: nothing remote to delete; the local cache stays");
        return Ok(warnings);
    }
    let retain = retain_on_destroy(state);
    let located = locate(&contract, state).map_err(|e| {
        Diagnostics::from(publish_diagnostic(
            "Refusing to delete outside the artifact's repository",
            &e,
        ))
    })?;
    let Some(located) = located else {
        if !retain {
            warnings.warning(
                "Published objects not deleted",
                format!(
                    "{} was published by a publish command, which chose where it lives; \
                     this provider records no reference for it and does not delete it. Delete \
                     it with the tool that published it.",
                    crate::engine::publish::redact_url(&contract.artifact_url)
                ),
            );
        }
        return Ok(warnings);
    };
    let limit = delete_timeout(state)?;
    let env = engine_env(settings);
    let reference = reference_of(state);
    let released = bounded(
        references::release(&located, reference.as_deref(), retain, env.store_settings()),
        &cancel,
        limit,
    )
    .await
    .map_err(|i| Diagnostics::from(i.diagnostic("Releasing the published image")))?;
    match released {
        Ok(Release::Retained { removed }) => {
            tracing::info!(
                dir = located.home.dir(),
                removed,
                "retain_on_destroy: only the reference was removed"
            );
        }
        Ok(Release::KeptForOthers { others, .. }) => {
            tracing::info!(
                dir = located.home.dir(),
                others,
                "artifact kept: other instances still reference it"
            );
        }
        Ok(Release::Deleted {
            objects,
            late_references,
        }) => {
            tracing::info!(
                objects,
                "last reference released; published objects deleted"
            );
            if late_references > 0 {
                warnings.warning(
                    "Another instance claimed the artifact while it was deleted",
                    format!(
                        "{late_references} reference(s) to {} appeared while this destroy \
                         deleted it as its last user. The instance that claimed it fails its \
                         create (or sees it gone at its next refresh) and republishes it.",
                        located.home.dir()
                    ),
                );
            }
        }
        Err(e) if is_missing_credential(&e) && retain => {
            warnings.warning(
                "Reference not removed: no provider credential",
                format!(
                    "retain_on_destroy keeps the published objects, but this instance's \
                     reference ({}refs/{}.json) could not be removed, so the artifact stays \
                     held until someone removes it. {}",
                    located.home.dir(),
                    reference.as_deref().unwrap_or("-"),
                    missing_provider_credential("Removing it")
                ),
            );
        }
        Err(e) if is_missing_credential(&e) => {
            return Err(Diagnostic::error(
                "Cannot destroy the published image: no provider credential",
                missing_provider_credential("Destroy"),
            )
            .into())
        }
        Err(e) => {
            return Err(Diagnostics::from(publish_diagnostic(
                "Cannot delete the published image",
                &e,
            )))
        }
    }
    Ok(warnings)
}

/// Re-checks the published objects of `state` with `settings` (an update that changed
/// `gcs_credentials_wo_version`: the settings carry the new write-only credential). Fails when
/// the credential does not work or the objects are gone or changed.
pub async fn recheck(
    state: &Value,
    settings: &ProviderSettings,
    cancel: CancellationToken,
) -> Result<(), Diagnostics> {
    let Some(contract) = recorded_contract(state).filter(|c| c.published) else {
        return Ok(());
    };
    if locate(&contract, state)
        .map_err(|e| {
            Diagnostics::from(publish_diagnostic(
                "Refusing to check outside the artifact's repository",
                &e,
            ))
        })?
        .is_none()
    {
        return Ok(());
    }
    let env = engine_env(settings);
    let at = crate::cty::Path::attr("gcs_credentials_wo");
    let verification = bounded(
        check_published(&contract, env.store_settings()),
        &cancel,
        READ_TIMEOUT,
    )
    .await
    .map_err(|i| Diagnostics::from(i.diagnostic("Checking the published image")))?
    .map_err(|e| {
        Diagnostics::from(
            publish_diagnostic(
                "The new gcs_credentials_wo cannot read the published image",
                &e,
            )
            .at(at.clone()),
        )
    })?;
    match verification {
        Verification::Present => {
            tracing::info!("published image re-checked with the new write-only credential");
            Ok(())
        }
        Verification::Gone { what } | Verification::Changed { what } => Err(Diagnostic::error(
            "The published image is gone or changed",
            format!(
                "Re-checking with the new gcs_credentials_wo found: {what}. The next refresh \
                 removes the instance from state and the plan recreates it."
            ),
        )
        .at(at)
        .into()),
    }
}
