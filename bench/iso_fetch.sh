#!/usr/bin/env bash
# ISO fetch and hashing throughput (DESIGN §7). A benchmark, not a test: it prints numbers.
#
#  1. hashing: the engine's hash_file vs `openssl dgst -sha256` and coreutils `sha256sum` on the same
#     (page-cached) file; target >= 0.9x openssl;
#  2. fetch+verify over loopback: the engine's acquire (hash while downloading) vs `curl` alone and
#     `curl` followed by `sha256sum`; target: no slower than curl alone.
#
# Usage: bench/iso_fetch.sh            (1 GiB; SIZE_MIB=256 for a quick run)
#        BENCH_PROFILE=dev bench/iso_fetch.sh   (skip the release build; numbers are indicative only)
# Needs: cargo, curl, openssl, sha256sum, python3 (the loopback file server).
set -euo pipefail

SIZE_MIB=${SIZE_MIB:-1024}
PROFILE=${BENCH_PROFILE:-release}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
WORK=$(mktemp -d)
SRV_PID=
cleanup() {
    [ -n "$SRV_PID" ] && kill "$SRV_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT

if [ "$PROFILE" = release ]; then
    cargo build --quiet --release --example hashbench --manifest-path "$ROOT/Cargo.toml"
    BIN=$TARGET/release/examples/hashbench
else
    cargo build --quiet --example hashbench --manifest-path "$ROOT/Cargo.toml"
    BIN=$TARGET/debug/examples/hashbench
fi

secs() { # run a command quietly, print its wall time in seconds
    local start end
    start=$(date +%s.%N)
    "$@" >/dev/null 2>&1
    end=$(date +%s.%N)
    echo "$end - $start" | bc
}
ratio() { echo "scale=2; $1 / $2" | bc; }

mkdir -p "$WORK/srv"
DATA=$WORK/srv/data.iso
head -c "${SIZE_MIB}M" /dev/urandom >"$DATA"
SHA=$(openssl dgst -sha256 -r "$DATA" | cut -d' ' -f1) # also warms the page cache
echo "file: ${SIZE_MIB} MiB, sha256 $SHA, profile $PROFILE"

echo "== hashing (page-cached file)"
T_OPENSSL=$(secs openssl dgst -sha256 "$DATA")
T_COREUTILS=$(secs sha256sum "$DATA")
T_OURS=$(secs "$BIN" hash "$DATA")
T_OURS_MD5=$(secs "$BIN" hash "$DATA" --md5)
"$BIN" hash "$DATA" | sed 's/^/   /'
echo "   openssl dgst -sha256 : ${T_OPENSSL}s"
echo "   sha256sum            : ${T_COREUTILS}s"
echo "   hash_file            : ${T_OURS}s  (openssl/ours = $(ratio "$T_OPENSSL" "$T_OURS"); target >= 0.90)"
echo "   hash_file --md5      : ${T_OURS_MD5}s  (md5 on its own thread)"

echo "== fetch + verify over loopback"
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server --bind 127.0.0.1 --directory "$WORK/srv" "$PORT" >/dev/null 2>&1 &
SRV_PID=$!
for _ in $(seq 50); do curl -sf -o /dev/null "http://127.0.0.1:$PORT/" && break || sleep 0.1; done
URL=http://127.0.0.1:$PORT/data.iso

T_CURL=$(secs curl -sf -o "$WORK/curl.iso" "$URL")
T_SUM=$(secs sha256sum "$WORK/curl.iso")
rm -f "$WORK/curl.iso"
T_FETCH=$(secs "$BIN" fetch "$URL" "$SHA" "$WORK/cache")
T_WARM=$(secs "$BIN" fetch "$URL" "$SHA" "$WORK/cache")
echo "   curl alone           : ${T_CURL}s"
echo "   curl + sha256sum     : $(echo "$T_CURL + $T_SUM" | bc)s"
echo "   acquire (cold)       : ${T_FETCH}s  (curl/acquire = $(ratio "$T_CURL" "$T_FETCH"); target >= 1.0)"
echo "   acquire (warm cache) : ${T_WARM}s"
echo "note: python3 http.server is the shared bottleneck on loopback; both clients see the same server."
