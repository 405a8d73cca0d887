#!/usr/bin/env bash
# Reference for the cold-create scenario: what an operator's shell script does today.
#   curl the ISO -> sha256sum -c -> run the same builder command -> sha256sum the image
# With BENCH_NORMALIZE=1 it also re-encodes the image as compressed qcow2 (`qemu-img convert -c`),
# as the engine's normalize step does.
# Usage: pipeline.sh URL SHA256 WORKDIR      (builder command in $BENCH_BUILD_COMMAND, which reads
#        $HYOPS_VYOS_SOURCE_ISO_PATH and writes $HYOPS_VYOS_ARTIFACT_LOCAL_PATH like ours does)
# Prints the image's sha256 on stdout.
set -euo pipefail
url=$1 sha=$2 work=$3
mkdir -p "$work"
iso=$work/source.iso
curl -fsS --retry 2 -o "$iso" "$url"
echo "$sha  $iso" | sha256sum -c --quiet -
export HYOPS_VYOS_SOURCE_ISO_PATH=$iso HYOPS_VYOS_ARTIFACT_LOCAL_PATH=$work/image.qcow2
bash -c "$BENCH_BUILD_COMMAND"
out=$HYOPS_VYOS_ARTIFACT_LOCAL_PATH
if [ "${BENCH_NORMALIZE:-0}" = 1 ]; then
    # what the engine does after the builder: re-encode as compressed qcow2
    qemu-img convert -f qcow2 -O qcow2 -c "$out" "$work/normalized.qcow2"
    mv "$work/normalized.qcow2" "$out"
fi
sha256sum "$out" | cut -d' ' -f1
