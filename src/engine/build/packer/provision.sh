#!/bin/bash
# Stage-2 provisioning of the packaged VyOS build (runs as root inside the VM over SSH).
# Installs cloud-init and the guest agent, optionally a VyOS cloud-init module, cleans state,
# removes builder-specific ethernet config, and fails loudly if cloud-init is missing.
set -euo pipefail

list=/etc/apt/sources.list.d/hyops-build.list
echo "deb ${HYOPS_DEBIAN_MIRROR} ${HYOPS_DEBIAN_RELEASE} main" > "$list"
trap 'rm -f "$list"; apt-get clean || true' EXIT
export DEBIAN_FRONTEND=noninteractive
apt-get update

packages=()
if [ "${HYOPS_CLOUD_INIT}" = "true" ]; then
  packages+=(cloud-init)
fi
case "${HYOPS_GUEST_AGENT}" in
  qemu) packages+=(qemu-guest-agent) ;;
  vmware) packages+=(open-vm-tools) ;;
  none|"") ;;
  *) echo "unknown guest agent ${HYOPS_GUEST_AGENT}" >&2; exit 1 ;;
esac
if [ "${#packages[@]}" -gt 0 ]; then
  apt-get install -y --no-install-recommends "${packages[@]}"
fi

if [ "${HYOPS_CLOUD_INIT}" = "true" ]; then
  if ! command -v cloud-init >/dev/null 2>&1; then
    echo "FATAL: cloud-init is not installed after provisioning" >&2
    exit 1
  fi
  cloud-init --version
  ds_list=$(echo "${HYOPS_CLOUD_INIT_DS}" | sed 's/,/, /g')
  printf 'datasource_list: [ %s ]\n' "$ds_list" > /etc/cloud/cloud.cfg.d/90_hyops_datasources.cfg

  if [ -s /tmp/cc_vyos.py ]; then
    moddir=$(python3 -c 'import os, cloudinit.config as c; print(os.path.dirname(c.__file__))')
    install -m 0644 /tmp/cc_vyos.py "$moddir/cc_vyos.py"
    python3 - <<'PY'
import yaml
path = "/etc/cloud/cloud.cfg"
with open(path) as f:
    cfg = yaml.safe_load(f)
mods = cfg.setdefault("cloud_config_modules", [])
if "vyos" not in mods:
    mods.append("vyos")
with open(path, "w") as f:
    yaml.safe_dump(cfg, f, default_flow_style=False)
PY
    grep -q -- '- vyos' /etc/cloud/cloud.cfg || { echo "FATAL: cc_vyos not registered" >&2; exit 1; }
  fi
  cloud-init clean --logs
  rm -rf /var/lib/cloud/*
fi
rm -f /tmp/cc_vyos.py

# Builder-specific network identity: the stage VMs' MAC addresses and persistent-net rules.
for cfg in /opt/vyatta/etc/config/config.boot /config/config.boot; do
  [ -f "$cfg" ] && sed -i '/^[[:space:]]*hw-id /d' "$cfg"
done
rm -f /etc/udev/rules.d/70-persistent-net.rules
rm -f /var/lib/dhcp/*.leases /var/lib/dhcp/dhclient* 2>/dev/null || true
truncate -s 0 /etc/machine-id || true
sync
