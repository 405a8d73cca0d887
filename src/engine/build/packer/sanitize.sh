#!/bin/bash
# Template sanitation: the last step of the packaged VyOS build (stage 2, as root over SSH, right
# before `poweroff`). A Proxmox template is cloned many times; nothing a clone must own may stay on
# the disk, and the build's known password must not open SSH. Each item is checked at the end;
# the build fails loudly if one is not met.
#
#  1. SSH host keys removed (VyOS's ssh service generates missing keys when SSH is configured).
#  2. /etc/machine-id empty (systemd creates a fresh one on first boot); dbus's copy removed.
#  3. cloud-init state cleaned (`cloud-init clean --logs --seed`, /var/lib/cloud emptied), so a
#     clone runs cloud-init as a new instance.
#  4. No builder-specific ethernet config: hw-id (MAC) lines removed from the saved config,
#     persistent-net rules and DHCP leases removed. (The build's DHCP address on eth0 lives in the
#     running config only and is never saved.)
#  5. No usable known password over SSH: `service ssh` removed from the saved config (the build
#     enabled it in the running config only) and, with HYOPS_LOCK_BUILD_PASSWORD=true (default),
#     the build user's password locked in the saved config. Access comes from cloud-init at clone
#     time (ssh keys, password), which is how Proxmox templates are meant to be used.
#
# HYOPS_SANITIZE_ROOT prefixes every path and skips the commands that act on the running system
# (`cloud-init clean`, `passwd -l`; their effect is covered by emptying /var/lib/cloud and locking
# the password in the saved config): it sanitizes an offline tree, e.g. the mounted root of a
# vyos-vm-images build (docs/guides/template-sanitation.md), and lets tests run it on a fake tree.
set -euo pipefail

r="${HYOPS_SANITIZE_ROOT:-}"
lock_password="${HYOPS_LOCK_BUILD_PASSWORD:-true}"
build_user="${HYOPS_BUILD_USER:-vyos}"
configs=()
for cfg in "$r/opt/vyatta/etc/config/config.boot" "$r/config/config.boot"; do
  [ -f "$cfg" ] && configs+=("$cfg")
done

# 1. SSH host keys
rm -f "$r"/etc/ssh/ssh_host_*

# 2. machine-id
truncate -s 0 "$r/etc/machine-id"
rm -f "$r/var/lib/dbus/machine-id"

# 3. cloud-init state
if [ -z "$r" ] && command -v cloud-init >/dev/null 2>&1; then
  cloud-init clean --logs --seed || cloud-init clean --logs
fi
rm -rf "$r"/var/lib/cloud/* "$r"/var/log/cloud-init*.log

# 4. builder-specific ethernet config
rm -f "$r/etc/udev/rules.d/70-persistent-net.rules"
rm -f "$r"/var/lib/dhcp/*.leases "$r"/var/lib/dhcp/dhclient* 2>/dev/null || true
for cfg in "${configs[@]}"; do
  sed -i -E '/^[[:space:]]*hw-id[[:space:]]/d' "$cfg"
done

# 5. SSH and the build password, in the saved configuration (python3 ships with VyOS)
for cfg in "${configs[@]}"; do
  HYOPS_CFG="$cfg" HYOPS_LOCK="$lock_password" HYOPS_USER="$build_user" python3 - <<'PY'
import os, re
path = os.environ["HYOPS_CFG"]
text = open(path).read()

def drop_block(text, parent, child):
    """Remove `child { ... }` directly inside `parent { ... }` (VyOS config.boot syntax)."""
    out, i = [], 0
    pat = re.compile(r"(^|\n)([ \t]*)" + re.escape(parent) + r" \{")
    m = pat.search(text)
    if not m:
        return text
    start = m.end()
    cm = re.compile(r"\n[ \t]*" + re.escape(child) + r"( \{|\s*\n)").search(text, start)
    if not cm:
        return text
    # the child must sit inside the parent block: count braces from the parent's opening
    depth, j = 1, start
    while j < cm.start() and depth > 0:
        depth += {"{": 1, "}": -1}.get(text[j], 0)
        j += 1
    if depth != 1:
        return text
    if cm.group(1).strip() != "{":
        return text[: cm.start()] + text[cm.end() - 1 :]
    depth, k = 1, cm.end()
    while k < len(text) and depth > 0:
        depth += {"{": 1, "}": -1}.get(text[k], 0)
        k += 1
    return text[: cm.start()] + text[k:]

text = drop_block(text, "service", "ssh")
if os.environ["HYOPS_LOCK"] == "true":
    user = re.escape(os.environ["HYOPS_USER"])
    m = re.search(r"user " + user + r" \{", text)
    if m:
        seg_end = text.find("\n        }", m.end())
        seg_end = len(text) if seg_end < 0 else seg_end
        seg = re.sub(r'encrypted-password\s+"?[^"\s]*"?', 'encrypted-password "!"', text[m.end():seg_end])
        seg = re.sub(r'plaintext-password\s+"[^"]*"', 'plaintext-password ""', seg)
        text = text[: m.end()] + seg + text[seg_end:]
open(path, "w").write(text)
PY
done
if [ "$lock_password" = "true" ] && [ -z "$r" ]; then
  passwd -l "$build_user" >/dev/null
fi

# Check every item; fail the build loudly if one is not met.
fail() { echo "FATAL: template sanitation: $*" >&2; exit 1; }
compgen -G "$r/etc/ssh/ssh_host_*" >/dev/null && fail "SSH host keys remain"
[ -s "$r/etc/machine-id" ] && fail "/etc/machine-id is not empty"
[ -n "$(ls -A "$r/var/lib/cloud" 2>/dev/null)" ] && fail "cloud-init state remains in /var/lib/cloud"
[ -e "$r/etc/udev/rules.d/70-persistent-net.rules" ] && fail "persistent-net rules remain"
for cfg in "${configs[@]}"; do
  grep -qE '^[[:space:]]*hw-id[[:space:]]' "$cfg" && fail "hw-id remains in $cfg"
  python3 -c 'import re,sys; t=open(sys.argv[1]).read(); sys.exit(1 if re.search(r"service \{[^}]*\n\s*ssh( \{|\s*\n)", t) else 0)' "$cfg" ||
    fail "service ssh remains in $cfg"
  if [ "$lock_password" = "true" ]; then
    grep -qE 'encrypted-password "?\$' "$cfg" && fail "a usable password hash remains in $cfg"
  fi
done
echo "template sanitation: ssh host keys, machine-id, cloud-init state, ethernet hw-id, ssh service and build password (lock: $lock_password) done"
sync
