//! `terraform-provider-hyops`: mode switch only.
//!
//! - go-plugin magic cookie present → plugin mode (Terraform launched us).
//! - `--debug` → debug/reattach mode (plaintext, `TF_REATTACH_PROVIDERS` line).
//! - other arguments → the operator CLI.
//! - nothing → explain on stderr that this is a plugin, exit 1.

use std::process::ExitCode;
use std::time::Duration;

use hyops::plugin::{self, ServeOptions};
use hyops::provider::ProviderService;
use hyops::tfplugin5::pb::provider_server::ProviderServer;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if plugin::cookie_present() {
        return run_plugin(ServeOptions::plugin());
    }
    if args.first().map(String::as_str) == Some("--debug") {
        eprintln!(
            "Starting in debug mode. To attach Terraform or OpenTofu, export the \
             TF_REATTACH_PROVIDERS line printed on stdout. Ctrl-C stops the provider."
        );
        return run_plugin(ServeOptions::debug());
    }
    if !args.is_empty() {
        return hyops::cli::run(args);
    }
    eprint!(
        "{}",
        plugin::not_a_plugin_message("terraform-provider-hyops")
    );
    ExitCode::from(1)
}

fn run_plugin(opts: ServeOptions) -> ExitCode {
    plugin::logging::init_from_env();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("terraform-provider-hyops: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        let provider = ProviderServer::new(ProviderService::new())
            .max_decoding_message_size(plugin::MAX_GRPC_MESSAGE_SIZE)
            .max_encoding_message_size(plugin::MAX_GRPC_MESSAGE_SIZE);
        plugin::serve(provider, opts).await
    });
    // Whatever is still running (a cancelled build's cleanup) gets a moment, not forever.
    runtime.shutdown_timeout(Duration::from_secs(1));
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "plugin failed");
            eprintln!("terraform-provider-hyops: {e}");
            ExitCode::from(1)
        }
    }
}
