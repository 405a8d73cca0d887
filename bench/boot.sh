#!/usr/bin/env bash
# Boot-verification timing (issue #10): `image apply` of the bootable fixture (test-fixtures/boot/)
# with `smoke_verify.boot` under TCG, N times (default 3, each a fresh cache), printing the
# contract's boot timings and the load average. Figures go to bench/boot.md, never into tests.
# Usage: bench/boot.sh [N] [tcg|kvm|auto]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
n="${1:-3}"
accel="${2:-tcg}"
cd "$root"
cargo build --quiet --bin terraform-provider-hyops
bin="${CARGO_TARGET_DIR:-$root/target}/debug/terraform-provider-hyops"
fixture="$root/.tools/boot-fixture"
bash test-fixtures/boot/build-fixture.sh "$fixture"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
printf 'run\taccel\tlogin_s\tagent_s\tcloud_init_s\ttotal_s\twall_s\tload1\n'
for i in $(seq 1 "$n"); do
  cat >"$work/spec.json" <<JSON
{
  "artifact_key": "vyos-bench-boot",
  "source_iso_url": "file://$fixture/vyos-boot.iso",
  "source_iso_sha256": "$(cat "$fixture/vyos-boot.iso.sha256")",
  "build": {"method": "command", "console": "serial", "disk_size_gb": 2, "allow_tcg": true,
    "command": "qemu-img convert -f raw -O qcow2 \"\$HYOPS_VYOS_SOURCE_ISO_PATH\" \"\$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" && qemu-img resize -q \"\$HYOPS_VYOS_ARTIFACT_LOCAL_PATH\" 2G"},
  "smoke_verify": {"boot": {"enabled": true, "accelerator": "$accel"}},
  "provider": {"cache_dir": "$work/cache-$i"}
}
JSON
  load="$(cut -d' ' -f1 /proc/loadavg)"
  start="$(date +%s.%N)"
  "$bin" image apply --config "$work/spec.json" 2>"$work/stderr-$i" >"$work/contract-$i.json"
  end="$(date +%s.%N)"
  python3 - "$work/contract-$i.json" "$i" "$accel" "$start" "$end" "$load" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
b = c["verification"]["boot"]
wall = float(sys.argv[5]) - float(sys.argv[4])
print("\t".join(str(x) for x in [sys.argv[2], b["accelerator"], b.get("seconds_to_login"), b.get("seconds_to_agent"),
      b.get("seconds_to_cloud_init"), b["seconds_total"], round(wall, 1), sys.argv[6]]))
PY
done
