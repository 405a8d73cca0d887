#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
# Installs what the tests need (scripts/install-tools.sh), then: rustfmt check, clippy with warnings
# denied, and every test binary — protocol, codec, provider, real Terraform 1.0.3, engine (ISO, build,
# publish against loopback emulators) — plus a smoke run of the benchmarks so they cannot rot.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-tools.sh
# .tools/venv/bin provides python3 with the emulator packages (gcp-storage-emulator, cryptography, moto).
export PATH="$root/.tools/bin:$root/.tools/venv/bin:$PATH"
export HYOPS_TEST_TERRAFORM="$root/.tools/bin/terraform"
# The emulator-backed suites (GCS stack, moto S3, azurite) are mandatory here: a missing emulator fails.
export HYOPS_TEST_GCS=1 HYOPS_TEST_S3=1 HYOPS_TEST_AZURE=1
# The build-runner suite (tests/runner.rs) starts a real sshd on 127.0.0.1 (needs root, openssh-server).
export HYOPS_TEST_SSH=1
# Boot verification under real qemu-system-x86_64 (TCG) with the fixture install-tools.sh built.
export HYOPS_TEST_BOOT=1

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo test" >&2
cargo test --locked --no-fail-fast -- --test-threads=2
echo "== bench smoke (bench/run.sh --smoke: small sizes, results to a temp file)" >&2
bash bench/run.sh --smoke
