//! Bench helper for `bench/run.sh` scenario 5 (not part of the provider):
//! `publishbench upload FILE OBJECT` does one GCS `put_file_if_absent` of FILE to the bucket named
//! by `BENCH_GCS_BUCKET`. Digests are computed first (timed separately), so `upload_secs` is the
//! transfer plus the store's existence check, session start and final-object check.
//! `BENCH_GCS_CHUNK_MIB` overrides the resumable chunk size (default: the store's) to show its
//! effect. GCS settings come from the provider's environment fallbacks (`HYOPS_GCS_ENDPOINT`,
//! `HYOPS_VYOS_GCS_SA_JSON_FILE`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use hyops::engine::hash::hash_file;
use hyops::engine::publish::{PublishTarget, StoreSettings, UploadSource};
use hyops::engine::spec::{Backend, ProviderSettings, PublishSpec};
use tokio_util::sync::CancellationToken;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let result = match argv.as_slice() {
        ["upload", file, object] => upload(Path::new(file), object).await,
        _ => {
            eprintln!("usage: publishbench upload FILE OBJECT");
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
