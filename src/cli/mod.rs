//! Operator CLI (placeholder on the `proto` branch; the real one lives on the `build` branch).
//!
//! Owns argument handling for non-plugin runs of the binary. Prints usage and fails until the
//! operator commands are merged.

use std::process::ExitCode;

/// Run the operator CLI with the process arguments (program name excluded).
pub fn run(args: Vec<String>) -> ExitCode {
    let _ = args;
    eprintln!(
        "usage: terraform-provider-hyops image <validate|apply> --config SPEC.json\n\
         (operator CLI not available in this build)"
    );
    ExitCode::from(2)
}
