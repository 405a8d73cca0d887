//! Bench helper for `bench/run.sh` (not part of the provider): drives the publish engine directly
//! while the operator CLI cannot publish yet (`engine::create` refuses a `publish` block until the
//! publish flow is wired into it).
//!
//! - `publishbench create-publish SPEC.json`: exactly what `image apply` will do with a `publish`
//!   block: [`create`] the image (the spec's `publish` block is set aside for it), then
//!   [`publish`] the build cache entry's files (digests from the build record, no re-hash) to the
//!   spec's `publish` target. Prints one JSON line (manifest URL, uploaded count, seconds).
//! - `publishbench upload FILE OBJECT`: one `put_file_if_absent` of FILE to the GCS bucket named by
//!   `BENCH_GCS_BUCKET`; digests are computed first (timed separately) so `upload_secs` is the
//!   transfer plus the store's post-upload verification only. `BENCH_GCS_CHUNK_MIB` overrides the
//!   resumable chunk size (default: the store's, 8 MiB) to show its effect.
//!
//! GCS settings come from the same environment as the provider's fallbacks
//! (`HYOPS_GCS_ENDPOINT`, `HYOPS_VYOS_GCS_SA_JSON_FILE`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use hyops::engine::cache::BuildCache;
use hyops::engine::contract::{Compression, SourceIso, VyosMetadata};
use hyops::engine::create::create;
use hyops::engine::env::EngineEnv;
use hyops::engine::hash::hash_file;
use hyops::engine::progress::NoProgress;
use hyops::engine::publish::{
    publish, LocalFile, ManifestMeta, PublishTarget, StoreSettings, UploadSource,
};
use hyops::engine::spec::{Backend, ProviderSettings, PublishSpec};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["create-publish", spec] => create_publish(Path::new(spec)).await,
        ["upload", file, object] => upload(Path::new(file), object).await,
        _ => {
            eprintln!(
                "usage: publishbench create-publish SPEC.json | publishbench upload FILE OBJECT"
            );
            return ExitCode::from(2);
        }
    };
    match result {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("publishbench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn md5_bytes(hex_md5: Option<&str>) -> Option<[u8; 16]> {
    let bytes = hex::decode(hex_md5?).ok()?;
    bytes.try_into().ok()
}

async fn create_publish(spec_path: &Path) -> Result<String, BoxError> {
    let start = Instant::now();
    let mut spec = hyops::cli::load_spec(spec_path).map_err(|e| format!("{e:#}"))?;
    let publish_spec = spec.publish.take().ok_or("the spec has no publish block")?;
    let provider = spec.provider.clone().unwrap_or_default();
    let env = EngineEnv::from_env().with_provider_settings(&provider);
    let cancel = CancellationToken::new();
    let outcome = create(&spec, &env, cancel.clone(), &NoProgress).await?;
    let created = start.elapsed().as_secs_f64();

    let fp = outcome
        .cache_entry
        .file_name()
        .and_then(|n| n.to_str())
        .ok_or("cache entry has no name")?
        .to_owned();
    let record = BuildCache::new(env.cache_dir())
        .lookup(&fp)
        .ok_or("build record not found after create")?;
    let files: Vec<LocalFile> = record
        .files
        .iter()
        .map(|f| LocalFile {
            path: outcome.cache_entry.join(&f.name),
            format: f.format.clone(),
            compression: Compression::from_format(&f.format),
            sha256: f.sha256.clone(),
            crc32c: f.crc32c,
            md5: md5_bytes(f.md5.as_deref()),
            size: f.size,
            virtual_size: f.virtual_size,
        })
        .collect();
    let c = &outcome.contract;
    let meta = ManifestMeta {
        artifact_key: c.artifact_key.clone(),
        artifact_version: c.artifact_version.clone(),
        build_id: c.build_id.clone(),
        built_at: c.built_at.clone(),
        vyos: VyosMetadata {
            version: c.vyos_version.clone(),
            ..Default::default()
        },
        source_iso: SourceIso {
            url: c.source_iso_url.clone(),
            sha256: c.source_iso_sha256.clone(),
        },
        notes: None,
    };
    let settings = StoreSettings::from_provider(&provider);
    let target = PublishTarget::resolve(&publish_spec, &settings, None)?;
    let set = publish(&target, &files, &meta, &cancel).await?;
    Ok(serde_json::json!({
        "manifest_url": set.manifest_url,
        "uploaded": set.uploaded,
        "skipped": set.skipped,
        "cache_hit": outcome.cache_hit,
        "create_secs": created,
        "total_secs": start.elapsed().as_secs_f64(),
    })
    .to_string())
}

async fn upload(file: &Path, object: &str) -> Result<String, BoxError> {
    let bucket = std::env::var("BENCH_GCS_BUCKET").map_err(|_| "BENCH_GCS_BUCKET is not set")?;
    let cancel = CancellationToken::new();
    let start = Instant::now();
    let digests = hash_file(&PathBuf::from(file), false, &cancel)?;
    let hash_secs = start.elapsed().as_secs_f64();

    let spec = PublishSpec {
        backend: Some(Backend::Gcs),
        bucket: Some(bucket),
        ..Default::default()
    };
    let mut settings = StoreSettings::from_provider(&ProviderSettings::default());
    if let Ok(mib) = std::env::var("BENCH_GCS_CHUNK_MIB") {
        let mib: u64 = mib
            .parse()
            .map_err(|_| "BENCH_GCS_CHUNK_MIB is not a number")?;
        settings.gcs_chunk_size = Some(mib << 20);
    }
    let target = PublishTarget::resolve(&spec, &settings, None)?;
    let store = target.store()?;
    let src = UploadSource {
        path: file,
        size: digests.size,
        sha256: &digests.sha256,
        crc32c: digests.crc32c,
        md5: None,
        content_type: "application/octet-stream",
    };
    let start = Instant::now();
    let outcome = store.put_file_if_absent(object, &src, &cancel).await?;
    let upload_secs = start.elapsed().as_secs_f64();
    Ok(serde_json::json!({
        "object": outcome.object().name,
        "size": outcome.object().size,
        "hash_secs": hash_secs,
        "upload_secs": upload_secs,
    })
    .to_string())
}
