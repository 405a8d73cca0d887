#!/usr/bin/env bash
# Side-by-side benchmarks against the tools operators use today (DESIGN §7). See bench/README.md.
#
#   bench/run.sh            full run: release build, BENCH_SIZE_MIB (default 1024) fixture,
#                           BENCH_ITERATIONS (default 3) alternated runs, writes bench/RESULTS.md
#   bench/run.sh --smoke    16 MiB, 1 iteration, dev build; writes to a temp path (or
#                           BENCH_OUT) and exits non-zero when any scenario breaks
#   --only 1,4              run only some scenarios
#
# Knobs: BENCH_SIZE_MIB, BENCH_ITERATIONS, BENCH_UPLOAD_BIG_MIB (extra upload size for scenario 5,
# default 4096 in the full run when /tmp has room, 0 = off), BENCH_OUT, TERRAFORM, CARGO_TARGET_DIR.
# Needs: cargo, python3 (+ gcp-storage-emulator, cryptography, google-crc32c), curl, openssl,
# sha256sum, qemu-img, pip (to fetch the Go reference provider once), terraform; hyperfine optional.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SMOKE=0
ONLY=
while [ $# -gt 0 ]; do
    case $1 in
        --smoke) SMOKE=1 ;;
        --only) ONLY=$2; shift ;;
        --only=*) ONLY=${1#--only=} ;;
        -h|--help) sed -n 2,14p "$0"; exit 0 ;;
        *) echo "unknown argument $1" >&2; exit 2 ;;
    esac
    shift
done

TARGET=${CARGO_TARGET_DIR:-$ROOT/target}
if [ $SMOKE = 1 ]; then
    SIZE=${BENCH_SIZE_MIB:-16}
    ITER=${BENCH_ITERATIONS:-1}
    BIG=${BENCH_UPLOAD_BIG_MIB:-0}
    OUT=${BENCH_OUT:-$(mktemp -d)/RESULTS.md}
    PROFILE_DIR=debug
    CARGO_PROFILE=()
else
    SIZE=${BENCH_SIZE_MIB:-1024}
    ITER=${BENCH_ITERATIONS:-3}
    BIG=${BENCH_UPLOAD_BIG_MIB:-4096}
    OUT=${BENCH_OUT:-$ROOT/bench/RESULTS.md}
    PROFILE_DIR=release
    CARGO_PROFILE=(--release)
fi

missing=()
for tool in cargo python3 curl openssl sha256sum qemu-img; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
[ -x /usr/bin/time ] || missing+=("/usr/bin/time (apt-get install -y time)")
if [ ${#missing[@]} -gt 0 ]; then
    echo "bench: missing tools: ${missing[*]}" >&2
    exit 2
fi

TERRAFORM=${TERRAFORM:-}
if [ -z "$TERRAFORM" ]; then
    if [ -x "$ROOT/.tools/bin/terraform" ]; then TERRAFORM=$ROOT/.tools/bin/terraform
    else TERRAFORM=$(command -v terraform || true)
    fi
fi
[ -n "$TERRAFORM" ] || { echo "bench: terraform not found (scripts/install-tools.sh, or TERRAFORM=)" >&2; exit 2; }

echo "bench: building (${PROFILE_DIR})" >&2
cargo build --quiet "${CARGO_PROFILE[@]}" --manifest-path "$ROOT/Cargo.toml" \
    --bin terraform-provider-hyops --example hashbench --example publishbench

# The Go reference provider (plugin framework) for scenario 6, fetched once with pip.
GO_CACHE=${BENCH_GO_PROVIDER_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/hyops-bench/workato}
GO_BIN=$GO_CACHE/workato_terraform_provider/payload/registry.terraform.io/local/workato/0.16.0/linux_amd64/terraform-provider-workato_v0.16.0
if [ ! -x "$GO_BIN" ]; then
    mkdir -p "$GO_CACHE"
    if python3 -m pip download --quiet --no-deps "workato-terraform-provider==0.16.0" -d "$GO_CACHE" >&2; then
        python3 - "$GO_CACHE" <<'PY' >&2 || true
import os, sys, zipfile
d = sys.argv[1]
member = ("workato_terraform_provider/payload/registry.terraform.io/local/workato/0.16.0/"
          "linux_amd64/terraform-provider-workato_v0.16.0")
with zipfile.ZipFile(os.path.join(d, "workato_terraform_provider-0.16.0-py3-none-any.whl")) as z:
    z.extract(member, d)
os.chmod(os.path.join(d, member), 0o755)
PY
    fi
fi

# Free space for the big upload file (plus the fixture and its copies).
if [ "$BIG" -gt 0 ]; then
    avail_mib=$(df -Pm "${TMPDIR:-/tmp}" | awk 'NR==2 {print $4}')
    if [ "$avail_mib" -lt $((BIG + 4 * SIZE + 2048)) ]; then
        echo "bench: only ${avail_mib} MiB free in ${TMPDIR:-/tmp}; skipping the ${BIG} MiB upload" >&2
        BIG=0
    fi
fi

export BENCH_PROVIDER_BIN=$TARGET/$PROFILE_DIR/terraform-provider-hyops
export BENCH_HASHBENCH_BIN=$TARGET/$PROFILE_DIR/examples/hashbench
export BENCH_PUBLISHBENCH_BIN=$TARGET/$PROFILE_DIR/examples/publishbench
export BENCH_TERRAFORM=$TERRAFORM
export BENCH_GO_PROVIDER=$GO_BIN
export BENCH_PROFILE_NOTE="cargo profile ${PROFILE_DIR}, commit $(git -C "$ROOT" rev-parse --short HEAD 2>/dev/null || echo '?')"

args=(--size-mib "$SIZE" --iterations "$ITER" --upload-big-mib "$BIG" --out "$OUT")
[ $SMOKE = 1 ] && args+=(--smoke)
[ -n "$ONLY" ] && args+=(--only "$ONLY")
set +e
python3 "$ROOT/bench/lib/harness.py" "${args[@]}"
rc=$?
set -e
echo "bench: results in $OUT" >&2
exit $rc
