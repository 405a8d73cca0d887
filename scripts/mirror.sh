#!/usr/bin/env bash
# Installs a built provider binary into a Terraform filesystem mirror (unpacked layout)
#   MIRROR/registry.terraform.io/hybridops/hyops/VERSION/OS_ARCH/terraform-provider-hyops_vVERSION
# and writes a CLI configuration that installs hybridops/hyops only from that mirror.
# Usage: scripts/mirror.sh BINARY MIRROR_DIR CLI_CONFIG_OUT
set -euo pipefail
bin="$1" mirror="$2" cfg="$3"
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
dest="$mirror/registry.terraform.io/hybridops/hyops/$version/${os}_${arch}"
rm -rf "$dest"
mkdir -p "$dest"
install -m 0755 "$bin" "$dest/terraform-provider-hyops_v$version"
mirror_abs="$(cd "$mirror" && pwd)"
cat >"$cfg" <<CFG
provider_installation {
  filesystem_mirror {
    path    = "$mirror_abs"
    include = ["registry.terraform.io/hybridops/hyops"]
  }
  direct {
    exclude = ["registry.terraform.io/hybridops/hyops"]
  }
}
CFG
echo "$dest"
