//! Bench helper for `bench/iso_fetch.sh` (not part of the provider):
//!
//! - `hashbench hash FILE [--md5]`: one-pass digests of FILE with the engine's hasher;
//! - `hashbench fetch URL SHA256 CACHE_DIR`: one `acquire` of an ISO into CACHE_DIR.
//!
//! Prints one `key=value` line; timing is measured here so process start-up is excluded.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use hyops::engine::hash::{hash_file, sha_ni_available};
use hyops::engine::iso::{acquire, IsoRequest};
use hyops::engine::progress::NoProgress;
use tokio_util::sync::CancellationToken;

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let cancel = CancellationToken::new();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["hash", file, rest @ ..] => {
            let md5 = rest.contains(&"--md5");
            let start = Instant::now();
            match hash_file(&PathBuf::from(file), md5, &cancel) {
                Ok(d) => {
                    let secs = start.elapsed().as_secs_f64();
                    println!(
                        "sha256={} md5={} size={} secs={secs:.3} gib_per_s={:.2} sha_ni={}",
                        d.sha256,
                        d.md5.as_deref().unwrap_or("-"),
                        d.size,
                        d.size as f64 / secs / (1u64 << 30) as f64,
                        sha_ni_available()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hash failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        ["fetch", url, sha, cache] => {
            let req = IsoRequest::new(*url, *sha, PathBuf::from(cache));
            let start = Instant::now();
            match acquire(&req, &cancel, &NoProgress).await {
                Ok(iso) => {
                    println!(
                        "path={} bytes={} from_cache={} secs={:.3}",
                        iso.path.display(),
                        iso.bytes_downloaded,
                        iso.from_cache,
                        start.elapsed().as_secs_f64()
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("fetch failed: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        _ => {
            eprintln!("usage: hashbench hash FILE [--md5] | hashbench fetch URL SHA256 CACHE_DIR");
            ExitCode::from(2)
        }
    }
}
