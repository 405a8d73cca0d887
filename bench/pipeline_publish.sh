#!/usr/bin/env bash
# Reference for the create-and-publish scenario: bench/pipeline.sh, then a service-account token
# by hand (RS256 JWT signed with openssl, exchanged with curl) and a GCS JSON-API resumable upload
# of the image with `curl -T` (one PUT), then a small manifest upload.
# Usage: pipeline_publish.sh URL SHA256 WORKDIR OBJECT_PREFIX
# Env: BENCH_BUILD_COMMAND; BENCH_GCS_ENDPOINT, BENCH_GCS_BUCKET, BENCH_SA_KEY_PEM (PKCS#8 key file),
#      BENCH_SA_EMAIL, BENCH_TOKEN_URI.
set -euo pipefail
url=$1 sha=$2 work=$3 prefix=$4
here=$(cd "$(dirname "$0")" && pwd)
image_sha=$("$here/pipeline.sh" "$url" "$sha" "$work")
image=$work/image.qcow2

b64url() { openssl base64 -A | tr '+/' '-_' | tr -d '='; }
now=$(date +%s)
header=$(printf '{"alg":"RS256","typ":"JWT"}' | b64url)
claims=$(printf '{"iss":"%s","scope":"https://www.googleapis.com/auth/devstorage.read_write","aud":"%s","iat":%d,"exp":%d}' \
    "$BENCH_SA_EMAIL" "$BENCH_TOKEN_URI" "$now" "$((now + 3600))" | b64url)
sig=$(printf '%s.%s' "$header" "$claims" | openssl dgst -sha256 -sign "$BENCH_SA_KEY_PEM" | b64url)
token=$(curl -fsS --data-urlencode grant_type=urn:ietf:params:oauth:grant-type:jwt-bearer \
    --data-urlencode "assertion=$header.$claims.$sig" "$BENCH_TOKEN_URI" |
    sed -n 's/.*"access_token": *"\([^"]*\)".*/\1/p')
[ -n "$token" ]

upload() { # FILE OBJECT CONTENT_TYPE
    local loc
    loc=$(curl -fsS -D - -o /dev/null -X POST -H "Authorization: Bearer $token" \
        -H "Content-Type: application/json" -H "X-Upload-Content-Type: $3" \
        -d "{\"name\":\"$2\"}" \
        "$BENCH_GCS_ENDPOINT/upload/storage/v1/b/$BENCH_GCS_BUCKET/o?uploadType=resumable&name=$2" |
        tr -d '\r' | sed -n 's/^[Ll]ocation: //p')
    local size
    size=$(stat -c %s "$1")
    curl -fsS -o /dev/null -H "Authorization: Bearer $token" -H "Content-Type: $3" \
        -H "Content-Range: bytes 0-$((size - 1))/$size" -T "$1" "$loc"
}
upload "$image" "$prefix/image.qcow2" application/octet-stream
printf '{"artifact_sha256":"%s","source_iso_sha256":"%s"}\n' "$image_sha" "$sha" >"$work/manifest.json"
upload "$work/manifest.json" "$prefix/manifest.json" application/json
echo "$image_sha"
