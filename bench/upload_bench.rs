//! Uploads one file to a GCS JSON-API endpoint through the publish engine's GCS backend and
//! prints `{"bytes":…,"seconds":…,"mib_per_s":…}`. Driven by `bench/upload.sh` (peak RSS comes
//! from `/usr/bin/time -v` around this process).
//!
//! Usage: upload_bench --endpoint URL --sa-json FILE --bucket NAME --file PATH [--chunk-mib N]

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use hyops::engine::credentials::{CredentialSource, GcsServiceAccount};
use hyops::engine::publish::gcs::GcsBuilder;
use hyops::engine::publish::{Store, UploadSource};
use sha2::Digest;
use tokio::io::AsyncReadExt;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let (mut endpoint, mut sa, mut bucket, mut file, mut chunk_mib) =
        (None, None, None, None, 8u64);
    while let Some(a) = args.next() {
        let v = args.next().context("flag without value")?;
        match a.as_str() {
            "--endpoint" => endpoint = Some(v),
            "--sa-json" => sa = Some(PathBuf::from(v)),
            "--bucket" => bucket = Some(v),
            "--file" => file = Some(PathBuf::from(v)),
            "--chunk-mib" => chunk_mib = v.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    let (Some(endpoint), Some(sa), Some(bucket), Some(file)) = (endpoint, sa, bucket, file) else {
        bail!("usage: upload_bench --endpoint URL --sa-json FILE --bucket NAME --file PATH");
    };
    let account = GcsServiceAccount::from_file(&sa, CredentialSource::File(sa.clone()))?;

    // Hash as the artifact stage would (streamed, bounded buffer); not part of the timing.
    let mut f = tokio::fs::File::open(&file).await?;
    let mut buf = vec![0u8; 1 << 20];
    let (mut crc, mut sha, mut size) = (0u32, sha2::Sha256::new(), 0u64);
    loop {
        let n = f.read(&mut buf).await?;
        if n == 0 {
            break;
        }
        crc = crc32c::crc32c_append(crc, &buf[..n]);
        sha.update(&buf[..n]);
        size += n as u64;
    }
    let sha = hex::encode(sha.finalize());

    let store = GcsBuilder::new()
        .with_bucket(bucket)
        .with_endpoint(endpoint)
        .with_service_account(account)
        .with_chunk_size(chunk_mib * 1024 * 1024)
        .build()?;
    let src = UploadSource {
        path: &file,
        size,
        sha256: &sha,
        crc32c: crc,
        md5: None,
        content_type: "application/octet-stream",
    };
    let name = format!(
        "bench/{}-{}",
        std::process::id(),
        file.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    );
    let start = Instant::now();
    store
        .put_file_if_absent(&name, &src, &CancellationToken::new())
        .await?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "{{\"bytes\":{size},\"seconds\":{secs:.3},\"mib_per_s\":{:.1}}}",
        size as f64 / (1024.0 * 1024.0) / secs
    );
    Ok(())
}
