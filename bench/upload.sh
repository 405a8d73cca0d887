#!/usr/bin/env bash
# Upload throughput and peak RSS of the GCS backend next to `curl -T`, on loopback.
# Files: 1 GiB and 4 GiB, sparse but with real random data in every 64 MiB stretch.
# Server: test-fixtures/gcs/gcs_stack.py --sink (token endpoint + upload sink that discards
# data; the emulator itself keeps whole objects in memory and rewrites them per chunk).
# Usage: bench/upload.sh [SIZES_GIB...]   (default: 1 4); PROFILE=dev for an unoptimized build.
set -euo pipefail
cd "$(dirname "$0")/.."
PROFILE=${PROFILE:-release}
if [ $# -eq 0 ]; then SIZES=(1 4); else SIZES=("$@"); fi
work=$(mktemp -d)
stack_pid=
cleanup() { [ -n "$stack_pid" ] && kill "$stack_pid" 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT

if [ "$PROFILE" = release ]; then
  cargo build --release --example upload_bench >&2
  bin=${CARGO_TARGET_DIR:-target}/release/examples/upload_bench
else
  cargo build --example upload_bench >&2
  bin=${CARGO_TARGET_DIR:-target}/debug/examples/upload_bench
fi

openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$work/key.pem" 2>/dev/null
openssl pkey -in "$work/key.pem" -pubout -out "$work/pub.pem"
mkfifo "$work/stdin"
python3 test-fixtures/gcs/gcs_stack.py --public-key "$work/pub.pem" --bucket bench --sink \
  < "$work/stdin" > "$work/ports" &
stack_pid=$!
exec 9> "$work/stdin"   # keeps the stack alive until this script exits
for _ in $(seq 100); do [ -s "$work/ports" ] && break; sleep 0.1; done
port=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$work/ports")
python3 - "$work/key.pem" "$port" > "$work/sa.json" <<'PY'
import json, sys
print(json.dumps({"type": "service_account", "client_email": "bench@example.iam",
                  "private_key": open(sys.argv[1]).read(), "token_uri": "http://127.0.0.1:%s/token" % sys.argv[2]}))
PY
rm -f "$work/key.pem"

printf '%-6s %-10s %10s %12s %14s\n' size tool seconds MiB/s peak_RSS_KiB
for g in "${SIZES[@]}"; do
  f="$work/img-${g}g.raw"
  truncate -s "${g}G" "$f"
  for ((off = 0; off < g * 16; off++)); do
    dd if=/dev/urandom of="$f" bs=1M count=1 seek=$((off * 64)) conv=notrunc status=none
  done
  /usr/bin/time -v "$bin" --endpoint "http://127.0.0.1:$port" --sa-json "$work/sa.json" \
    --bucket bench --file "$f" --chunk-mib "${CHUNK_MIB:-8}" > "$work/out" 2> "$work/time"
  secs=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["seconds"])' "$work/out")
  rate=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["mib_per_s"])' "$work/out")
  rss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time")
  printf '%-6s %-10s %10s %12s %14s\n' "${g}G" hyops "$secs" "$rate" "$rss"
  /usr/bin/time -v curl -sS -o /dev/null -T "$f" "http://127.0.0.1:$port/sink" \
    -w '%{time_total} %{speed_upload}\n' > "$work/curl" 2> "$work/time"
  read -r csecs cspeed < "$work/curl"
  crss=$(awk -F: '/Maximum resident set size/ {gsub(/ /, "", $2); print $2}' "$work/time")
  printf '%-6s %-10s %10s %12.1f %14s\n' "${g}G" "curl -T" "$csecs" "$(python3 -c "print($cspeed/1048576)")" "$crss"
  rm -f "$f"
done
