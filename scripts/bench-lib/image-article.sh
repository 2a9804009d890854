#!/usr/bin/env bash
# The article's recipe for the root filesystem image (docs/walkthrough.md): dd, mkfs.ext4, losetup -fP,
# mount, fill it, umount, losetup -d.
#
#   image-article.sh busybox IMG MB              fill it with busybox as cloon-img --busybox does
#   image-article.sh debootstrap IMG MB MIRROR   the article's debootstrap (needs the network)
#
# MB = 1000 is the article's `dd bs=100M count=10`. As in cycle-article.sh, the image is mounted
# with `mount $DEVLOOP`, not the article's `mount -o loop $DEVLOOP` (a second loop device on top
# of the first). Run by scripts/bench inside a private mount namespace.
set -euo pipefail
kind=$1 img=$2 mb=$3 mirror=${4:-http://deb.debian.org/debian}
mnt=$(mktemp -d /var/tmp/cloon-bench-mnt.XXXXXX)
DEVLOOP=""
cleanup() {
  if mountpoint -q "$mnt"; then umount "$mnt"; fi
  if [ -n "$DEVLOOP" ] && [ -n "$(losetup -l -n -O NAME "$DEVLOOP" 2>/dev/null)" ]; then
    losetup -d "$DEVLOOP" 2>/dev/null || true
  fi
  rmdir "$mnt" 2>/dev/null || true
}
trap cleanup EXIT

if [ "$mb" = 1000 ]; then
  dd if=/dev/zero of="$img" bs=100M count=10 status=none
else
  dd if=/dev/zero of="$img" bs=1M count="$mb" status=none
fi
mkfs.ext4 -q "$img"
losetup -fP "$img"
DEVLOOP=$(losetup -l | grep "$img" | awk '{print $1}')
mount "$DEVLOOP" "$mnt"
case $kind in
  busybox)
    mkdir -p -m 755 "$mnt"/{bin,sbin,usr/bin,usr/sbin,etc,proc,sys,dev,run,mnt,var/log}
    mkdir -p -m 700 "$mnt/root"
    mkdir -p -m 1777 "$mnt/tmp"
    cp /bin/busybox "$mnt/bin/busybox"
    for a in $(/bin/busybox --list-full); do
      [ "$a" = bin/busybox ] || ln -sf /bin/busybox "$mnt/$a"
    done
    printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n' >"$mnt/etc/passwd"
    printf 'root:x:0:\nnogroup:x:65534:\n' >"$mnt/etc/group"
    printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$mnt/etc/hosts"
    : >"$mnt/etc/resolv.conf"
    ;;
  debootstrap)
    debootstrap --arch "$(dpkg --print-architecture)" \
      --include=openssh-client,vim,bash-completion,net-tools,tcpdump,tini \
      bookworm "$mnt" "$mirror" >/dev/null
    ;;
  *) echo "image-article.sh: busybox or debootstrap, not $kind" >&2; exit 2 ;;
esac
umount "$mnt"
losetup -d "$DEVLOOP"
DEVLOOP=""
rmdir "$mnt"
