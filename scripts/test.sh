#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
# Installs what the tests need (scripts/install-tools.sh), then: rustfmt check, clippy with warnings
# denied, and every test binary — protocol, codec, provider, real Terraform 1.0.3, engine (ISO, build,
# publish against loopback emulators) — plus the benchmark smoke run.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-tools.sh
export PATH="$root/.tools/bin:$PATH"
export HYOPS_TEST_TERRAFORM="$root/.tools/bin/terraform"

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --locked -- --test-threads=2
