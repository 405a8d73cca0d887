#!/usr/bin/env bash
# Builds the bootable VyOS-shaped fixture ISOs (issue #10) from Debian packages, without root-only
# mounts: Debian's kernel taken out of its .deb (`apt-get download` + `dpkg-deb -x`, nothing
# installed), a busybox-static initramfs (cpio) whose /init
#   - loads the virtio modules (virtio_ring, virtio, virtio_pci_legacy_dev, virtio_pci_modern_dev,
#     virtio_pci, virtio_blk, virtio_console, in that order) and FAT support for the seed,
#   - prints a VyOS-like banner and `vyos login:` on ttyS0,
#   - mounts the NoCloud seed (label `cidata`), records its instance-id where cloud-init would
#     (/var/lib/cloud/data/instance-id, /run/cloud-init/result.json), applies a `write_files`
#     entry of the user-data (one file, literal content) and prints its `final_message`,
#   - runs Debian's real `qemu-ga` (qemu-guest-agent .deb + its shared libraries) on /dev/vport0p1,
# packed by grub-mkrescue (BIOS, serial console) with /version.json in the ISO root.
# Variants (kernel command line `hyops_fixture=`): vyos-boot.iso (works), vyos-boot-noagent.iso (no
# qemu-ga), vyos-boot-panic.iso (kernel panic right after the banner), vyos-boot-hang.iso (banner,
# then nothing).
# Usage: build-fixture.sh OUT_DIR   (idempotent: skipped when OUT_DIR/stamp matches this script)
# Needs: apt-get (download only), dpkg-deb, busybox-static, cpio, grub-mkrescue (grub-pc-bin,
# grub-common), mtools, xorriso, ldd, gzip.
set -euo pipefail
out="${1:?usage: build-fixture.sh OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
stamp="$(sha256sum "$here/build-fixture.sh" | cut -d' ' -f1)"
if [ -f "$out/stamp" ] && [ "$(cat "$out/stamp")" = "$stamp" ] && [ -f "$out/vyos-boot.iso" ]; then
  exit 0
fi
log() { printf '[boot-fixture] %s\n' "$*" >&2; }
for tool in apt-get dpkg-deb busybox cpio grub-mkrescue xorriso mformat ldd gzip; do
  command -v "$tool" >/dev/null || { log "missing $tool (scripts/install-tools.sh installs it)"; exit 1; }
done
mkdir -p "$out"
out="$(cd "$out" && pwd)"
work="$(mktemp -d "${TMPDIR:-/tmp}/hyops-boot-fixture.XXXXXX")"
trap 'rm -rf "$work"' EXIT
chmod 0755 "$work" # apt-get download drops to the _apt user
cd "$work"

kpkg="$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')"
[ -n "$kpkg" ] || { log "cannot resolve linux-image-amd64 to a kernel package"; exit 1; }
log "downloading $kpkg and qemu-guest-agent (apt-get download, nothing installed)"
apt-get download -q "$kpkg" qemu-guest-agent >/dev/null
dpkg-deb -x ./linux-image-*.deb kernel
dpkg-deb -x ./qemu-guest-agent_*.deb qga
kver="$(ls kernel/lib/modules | head -n1)"
vmlinuz="kernel/boot/vmlinuz-$kver"
[ -f "$vmlinuz" ] || { log "no vmlinuz in $kpkg"; exit 1; }

root="$work/initramfs"
mkdir -p "$root"/{bin,sbin,dev,proc,sys,run,tmp,mnt/seed,lib/modules,etc,var/lib/cloud/data,usr/bin}
cp "$(command -v busybox)" "$root/bin/busybox"
file "$root/bin/busybox" 2>/dev/null | grep -q 'dynamically' && { log "busybox is not static (install busybox-static)"; exit 1; }
mods=(virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci virtio_blk virtio_console
      fat vfat nls_cp437 nls_ascii nls_utf8 nls_iso8859-1)
for m in "${mods[@]}"; do
  f="$(find "kernel/lib/modules/$kver" -name "$m.ko*" | head -n1)"
  [ -n "$f" ] || continue
  case "$f" in
    *.xz) xz -dc "$f" >"$root/lib/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" >"$root/lib/modules/$m.ko" ;;
    *) cp "$f" "$root/lib/modules/$m.ko" ;;
  esac
done
for m in virtio_ring virtio_pci virtio_blk virtio_console; do
  [ -f "$root/lib/modules/$m.ko" ] || grep -q "/$m.ko" "kernel/lib/modules/$kver/modules.builtin" ||
    { log "kernel $kver lacks $m"; exit 1; }
done
printf '%s\n' "${mods[@]}" >"$root/lib/modules/order"

# qemu-ga and the shared libraries it links (resolved by the host's loader: same Debian release).
cp qga/usr/sbin/qemu-ga "$root/usr/bin/qemu-ga"
ldd qga/usr/sbin/qemu-ga | awk '/=>/ && $3 ~ /^\// {print $3} /^\t\/lib/ {print $1}' | sort -u |
  while read -r lib; do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
missing="$(ldd qga/usr/sbin/qemu-ga | grep 'not found' || true)"
[ -z "$missing" ] || { log "qemu-ga libraries not found on this host: $missing"; exit 1; }
echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"

cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin:/usr/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /run
mkdir -p /run/cloud-init /var/lib/cloud/instance
mode=normal
for arg in $(cat /proc/cmdline); do
  case "$arg" in hyops_fixture=*) mode="${arg#hyops_fixture=}" ;; esac
done
for m in $(cat /lib/modules/order); do
  [ -f "/lib/modules/$m.ko" ] && insmod "/lib/modules/$m.ko" 2>/dev/null
done
echo
echo "Welcome to VyOS - fixture 1.5-hyops (hyops boot-verification fixture, mode $mode)"
echo
if [ "$mode" = panic ]; then
  echo 1 >/proc/sys/kernel/sysrq
  echo c >/proc/sysrq-trigger
fi
if [ "$mode" = hang ]; then
  while true; do sleep 3600; done
fi
# The NoCloud seed: a FAT or ISO 9660 volume labelled cidata (any case).
seed=""
for try in 1 2 3 4 5 6 7 8 9 10; do
  for dev in /dev/vd* /dev/sd* /dev/sr*; do
    [ -b "$dev" ] || continue
    if mount -o ro "$dev" /mnt/seed 2>/dev/null; then
      if [ -f /mnt/seed/meta-data ]; then seed="$dev"; break 2; fi
      umount /mnt/seed
    fi
  done
  sleep 0.5
done
if [ -n "$seed" ]; then
  iid="$(sed -n 's/^instance-id:[[:space:]]*//p' /mnt/seed/meta-data | tr -d '"\r')"
  echo "$iid" >/var/lib/cloud/data/instance-id
  ln -s /var/lib/cloud/data/instance-id /var/lib/cloud/instance/instance-id 2>/dev/null
  # write_files: one entry, `path:` and `content:` on their own lines.
  wpath="$(sed -n 's/^[[:space:]-]*path:[[:space:]]*//p' /mnt/seed/user-data | head -n1)"
  wcontent="$(sed -n 's/^[[:space:]]*content:[[:space:]]*//p' /mnt/seed/user-data | head -n1)"
  if [ -n "$wpath" ]; then mkdir -p "$(dirname "$wpath")"; printf '%s\n' "$wcontent" >"$wpath"; fi
  printf '{"v1": {"datasource": "DataSourceNoCloud [seed=%s]", "errors": []}}\n' "$seed" \
    >/run/cloud-init/result.json
  date >/var/lib/cloud/instance/boot-finished
  echo "cloud-init: NoCloud seed $seed, instance-id $iid"
  # final_message, printed on the console when cloud-init finishes (no template expansion here).
  fm="$(sed -n 's/^final_message:[[:space:]]*//p' /mnt/seed/user-data | head -n1 | tr -d '"')"
  [ -z "$fm" ] || echo "$fm"
else
  echo "cloud-init: no NoCloud seed found"
fi
if [ "$mode" != noagent ]; then
  if [ -c /dev/vport0p1 ]; then
    mkdir -p /run/qga
    qemu-ga --method=virtio-serial --path=/dev/vport0p1 --statedir=/run/qga \
      --pidfile=/run/qga/qemu-ga.pid >/run/qga/log 2>&1 &
  else
    echo "qemu-ga: no virtio-serial port /dev/vport0p1"
  fi
fi
echo
echo "vyos login: "
while true; do sleep 3600; done
INIT
chmod 0755 "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >initrd.img

build_iso() { # NAME MODE
  local iso="$work/iso-$2"
  mkdir -p "$iso/boot/grub"
  cp "$vmlinuz" "$iso/boot/vmlinuz"
  cp initrd.img "$iso/boot/initrd.img"
  cat >"$iso/boot/grub/grub.cfg" <<CFG
serial --unit=0 --speed=115200
terminal_input serial console
terminal_output serial console
set timeout=0
menuentry "VyOS fixture ($2)" {
  linux /boot/vmlinuz console=ttyS0,115200 panic=0 quiet loglevel=3 hyops_fixture=$2
  initrd /boot/initrd.img
}
CFG
  cat >"$iso/version.json" <<JSON
{"version": "1.5-hyops-fixture", "flavor": "generic", "architecture": "amd64", "build_uuid": "00000000-0000-4000-8000-0000000000b0", "build_git": "fixture", "release_train": "circinus", "built_on": "Thu 01 Jan 1970 00:00 UTC"}
JSON
  grub-mkrescue -o "$out/$1" "$iso" -- -volid VYOS_FIXTURE >/dev/null 2>&1 ||
    { log "grub-mkrescue failed for $1"; exit 1; }
  sha256sum "$out/$1" | cut -d' ' -f1 >"$out/$1.sha256"
}
log "packing ISOs with grub-mkrescue (kernel $kver)"
build_iso vyos-boot.iso normal
build_iso vyos-boot-noagent.iso noagent
build_iso vyos-boot-panic.iso panic
build_iso vyos-boot-hang.iso hang
echo "$stamp" >"$out/stamp"
log "fixture ready in $out"
