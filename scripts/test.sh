#!/usr/bin/env bash
# The test command (README "Run the tests"; .ci/run calls exactly this).
# Installs what the tests need (scripts/install-tools.sh), then: rustfmt check, clippy with warnings
# denied, and every test binary — protocol, codec, provider, real Terraform 1.0.3, engine (ISO, build,
# publish against loopback emulators) — plus a smoke run of the benchmarks so they cannot rot. The
# Terraform suite then runs once more per other Terraform/OpenTofu found (scripts/terraform-lanes.sh)
# and the run ends by naming the lanes that ran.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"

bash scripts/install-tools.sh
# .tools/venv/bin provides python3 with the emulator packages (gcp-storage-emulator, cryptography, moto).
export PATH="$root/.tools/bin:$root/.tools/venv/bin:$PATH"
export HYOPS_TEST_TERRAFORM="$root/.tools/bin/terraform"
# The emulator-backed suites (GCS stack, moto S3, azurite) are mandatory here: a missing emulator fails.
export HYOPS_TEST_GCS=1 HYOPS_TEST_S3=1 HYOPS_TEST_AZURE=1
# Loopback only: no test may find the machine's Google credentials or a real metadata server
# (tests that want one point GCE_METADATA_HOST at their loopback fake).
export NO_GCE_CHECK=true
unset GOOGLE_APPLICATION_CREDENTIALS GCE_METADATA_HOST
# The build-runner suite (tests/runner.rs) starts a real sshd on 127.0.0.1 (needs root, openssh-server).
export HYOPS_TEST_SSH=1
# Boot verification under real qemu-system-x86_64 (TCG) with the fixture install-tools.sh built.
export HYOPS_TEST_BOOT=1

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy" >&2
cargo clippy --all-targets --locked -- -D warnings
# (the version is captured whole, not piped into head: an early-closing reader can kill Terraform
# with SIGPIPE, which pipefail turns into a failed run)
tf_version="$(CHECKPOINT_DISABLE=1 "$HYOPS_TEST_TERRAFORM" version)"
echo "== cargo test (Terraform lane: pinned ${tf_version%%$'\n'*})" >&2
cargo test --locked --no-fail-fast -- --test-threads=2

# Terraform lanes: the Terraform suite again under every other terraform/tofu on PATH or named in
# HYOPS_TEST_TERRAFORM_EXTRA (colon-separated), see scripts/terraform-lanes.sh.
lanes_ran=()
modern=""
while IFS=$'\t' read -r bin label; do
  [ -n "$bin" ] || continue
  if [ "$bin" = "$HYOPS_TEST_TERRAFORM" ]; then
    lanes_ran+=("$label (pinned; whole suite)")
  else
    echo "== cargo test --test terraform (Terraform lane: $label, $bin)" >&2
    HYOPS_TEST_TERRAFORM="$bin" cargo test --locked --no-fail-fast --test terraform -- --test-threads=2
    lanes_ran+=("$label ($bin)")
  fi
  case "$label" in
    terraform\ *)
      v="${label#terraform }"
      major="${v%%.*}" rest="${v#*.}" minor="${rest%%.*}"
      if [ "$major" -gt 1 ] || { [ "$major" -eq 1 ] && [ "$minor" -ge 11 ]; }; then modern="$label"; fi
      ;;
  esac
done < <(bash scripts/terraform-lanes.sh "$HYOPS_TEST_TERRAFORM")
echo "== Terraform lanes run: $(IFS=';'; echo "${lanes_ran[*]:-none}")" >&2
if [ -n "$modern" ]; then
  echo "== Terraform >= 1.11 lane (write-only gcs_credentials_wo from an ephemeral variable): ran with $modern" >&2
else
  echo "== Terraform >= 1.11 lane: not run: no Terraform ≥ 1.11 found" >&2
fi
echo "== bench smoke (bench/run.sh --smoke: small sizes, results to a temp file)" >&2
bash bench/run.sh --smoke
