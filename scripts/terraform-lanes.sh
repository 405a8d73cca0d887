#!/usr/bin/env bash
# Lists the Terraform/OpenTofu binaries the Terraform test suite runs against, one lane a line:
#   PATH<TAB>NAME VERSION
# First the pinned Terraform (argument 1, installed by scripts/install-tools.sh), then every other
# `terraform` or `tofu` on PATH, then each path in HYOPS_TEST_TERRAFORM_EXTRA (colon-separated).
# A binary whose name and version equal an earlier lane's is the same lane and is listed once.
# Usage: scripts/terraform-lanes.sh PINNED_TERRAFORM
set -euo pipefail
pinned="$1"

candidates=("$pinned")
while IFS= read -r p; do candidates+=("$p"); done < <(type -ap terraform tofu 2>/dev/null || true)
if [ -n "${HYOPS_TEST_TERRAFORM_EXTRA:-}" ]; then
  IFS=: read -r -a extra <<<"$HYOPS_TEST_TERRAFORM_EXTRA"
  for p in "${extra[@]}"; do [ -n "$p" ] && candidates+=("$p"); done
fi

seen=" "
for bin in "${candidates[@]}"; do
  [ -x "$bin" ] || { echo "terraform-lanes: $bin is not executable; skipped" >&2; continue; }
  # `version -json` exists since Terraform 0.13 and in every OpenTofu.
  json="$(CHECKPOINT_DISABLE=1 TF_CLI_CONFIG_FILE=/dev/null "$bin" version -json 2>/dev/null || true)"
  version="$(printf '%s' "$json" | sed -n 's/.*"terraform_version": *"\([^"]*\)".*/\1/p' | head -n 1)"
  [ -n "$version" ] || { echo "terraform-lanes: $bin did not report a version; skipped" >&2; continue; }
  name=terraform
  case "$(basename "$bin")" in tofu*) name=tofu ;; esac
  key="$name-$version"
  case "$seen" in *" $key "*) continue ;; esac
  seen="$seen$key "
  printf '%s\t%s %s\n' "$bin" "$name" "$version"
done
