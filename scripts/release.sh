#!/usr/bin/env bash
# Release packaging: registry archives, checksums, registry manifest and a packed filesystem mirror.
#   dist/terraform-provider-hyops_X.Y.Z_OS_ARCH.zip        (holds terraform-provider-hyops_vX.Y.Z)
#   dist/terraform-provider-hyops_X.Y.Z_manifest.json      (terraform-registry-manifest.json)
#   dist/terraform-provider-hyops_X.Y.Z_SHA256SUMS         (sha256 of the zips and the manifest)
#   dist/mirror/registry.terraform.io/hybridops/hyops/terraform-provider-hyops_X.Y.Z_OS_ARCH.zip
# Usage: scripts/release.sh [--binary PATH] [--out DIR]
#   --binary: package an already built binary instead of running `cargo build --release`.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bin="" out="$root/dist"
while [ $# -gt 0 ]; do
  case "$1" in
    --binary) bin="$2"; shift 2 ;;
    --out) out="$2"; shift 2 ;;
    *) echo "usage: $0 [--binary PATH] [--out DIR]" >&2; exit 2 ;;
  esac
done
version="$(sed -n 's/^version = "\(.*\)"/\1/p' "$root/Cargo.toml" | head -n 1)"
case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
os="$(uname -s | tr '[:upper:]' '[:lower:]')"
if [ -z "$bin" ]; then
  (cd "$root" && cargo build --release --locked --bin terraform-provider-hyops)
  bin="$root/target/release/terraform-provider-hyops"
fi
name="terraform-provider-hyops_${version}"
rm -rf "$out"
mkdir -p "$out/mirror/registry.terraform.io/hybridops/hyops"
# A deterministic zip (fixed timestamp, 0755) so the same binary always gives the same checksum.
python3 - "$bin" "$out/${name}_${os}_${arch}.zip" "terraform-provider-hyops_v${version}" <<'PY'
import sys, zipfile
src, dst, member = sys.argv[1:4]
info = zipfile.ZipInfo(member, date_time=(1980, 1, 1, 0, 0, 0))
info.external_attr = (0o100755 << 16)
info.compress_type = zipfile.ZIP_DEFLATED
with open(src, "rb") as f, zipfile.ZipFile(dst, "w") as z:
    z.writestr(info, f.read())
PY
cp "$root/terraform-registry-manifest.json" "$out/${name}_manifest.json"
(cd "$out" && sha256sum "${name}"_*.zip "${name}_manifest.json" >"${name}_SHA256SUMS")
cp "$out/${name}_${os}_${arch}.zip" "$out/mirror/registry.terraform.io/hybridops/hyops/"
ls -1 "$out" >&2
