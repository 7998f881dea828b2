#!/bin/bash
# Quick start: build casco, make a tiny image from Debian's busybox-static
# (no registry needed), and run a real container from it.
#
#   sudo bash scripts/quickstart.sh      # as root: store in /var/lib/casco
#   bash scripts/quickstart.sh           # as a user with /etc/subuid ranges: rootless
set -euo pipefail
cd "$(dirname "$0")/.."

if [ ! -x /bin/busybox ]; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "quickstart: needs /bin/busybox: run 'sudo apt-get install busybox-static' first" >&2
        exit 1
    fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static >/dev/null
fi

cargo build --release --quiet
casco=target/release/casco

# A root filesystem: busybox, a link per applet, and the files a shell expects.
rootfs=$(mktemp -d)
trap 'rm -rf "$rootfs"' EXIT
mkdir -p "$rootfs"/{bin,etc,tmp,root,proc,sys,dev}
cp /bin/busybox "$rootfs/bin/busybox"
for applet in $(/bin/busybox --list); do
    [ "$applet" = busybox ] || ln -s busybox "$rootfs/bin/$applet"
done
echo 'root:x:0:0:root:/root:/bin/sh' >"$rootfs/etc/passwd"
echo 'root:x:0:' >"$rootfs/etc/group"
chmod 1777 "$rootfs/tmp"

tar -C "$rootfs" -cf - . | "$casco" import --change 'CMD ["/bin/sh"]' - busybox
"$casco" images
"$casco" run --rm busybox sh -c 'echo "hello from container $(hostname): I am PID $$, and I see:"; ps'
