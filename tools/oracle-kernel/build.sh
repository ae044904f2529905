#!/bin/sh
# Build the "oracle" kernel p2pview verify boots under QEMU.
#
# Idempotent: the result is cached under ${P2PVIEW_CACHE:-~/.cache/p2pview}/oracle-kernel/
# and a second run only prints the path of the kernel image. The cache key is
# the Debian source package version plus a hash of the config fragment.
#
# Cost: about 8 minutes on 2 cores (bzImage 436 s + modules, measured on a
# Debian 12 VM with 2 cores; see shared/spec/qemu-kernel-oracle.md) and ~1.5 GB
# of disk for the build tree.
#
# Needs: apt-get install flex bison libelf-dev bc cpio kmod gcc make
#        (and network access to fetch linux-source-6.12 with `apt-get download`).
# Prints on stdout, last line: the directory holding bzImage, vmlinux and the
# build tree (pass it as --kernel DIR/bzImage and --kernel-build DIR/build).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${P2PVIEW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/p2pview}/oracle-kernel
PKG=${P2PVIEW_KERNEL_PKG:-linux-source-6.12}
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
FRAG="$HERE/p2pdma.config"
# The cache key: the config fragment (bump KEY_EXTRA when the build steps change).
KEY_EXTRA=1
KEY=$( (cat "$FRAG"; echo "$KEY_EXTRA") | sha256sum | cut -c1-12)
OUT="$CACHE/$PKG-$KEY"

if [ -f "$OUT/done" ]; then
    echo "$OUT"
    exit 0
fi

mkdir -p "$OUT"
cd "$OUT"
log() { echo "[oracle-kernel] $*" >&2; }

if [ ! -d src ]; then
    if ! ls "$CACHE"/${PKG}_*.deb >/dev/null 2>&1; then
        log "fetching $PKG with apt-get download"
        (cd "$CACHE" && apt-get download "$PKG" >&2) || {
            log "apt-get download failed: run 'apt-get update' (the package is in bookworm-security)"
            exit 2
        }
    fi
    DEB=$(ls "$CACHE"/${PKG}_*.deb | tail -n 1)
    log "unpacking $DEB"
    rm -rf deb && mkdir deb && dpkg -x "$DEB" deb
    TARBALL=$(ls deb/usr/src/linux-source-*.tar.* | head -n 1)
    rm -rf src.tmp && mkdir src.tmp
    tar -C src.tmp -xf "$TARBALL"
    mv src.tmp/linux-source-* src && rm -rf src.tmp deb
fi

cd src
if [ ! -f .config.p2pview ]; then
    log "configuring: tinyconfig + $FRAG"
    make -s tinyconfig >&2
    scripts/kconfig/merge_config.sh -m .config "$FRAG" >&2
    make -s olddefconfig >&2
    # Refuse a config where the fragment silently lost an option that matters.
    for opt in PCI_P2PDMA KPROBE_EVENTS MODULES BLK_DEV_NVME ZONE_DEVICE PVH; do
        grep -q "^CONFIG_$opt=y" .config || { log "CONFIG_$opt did not survive olddefconfig"; exit 3; }
    done
    cp .config .config.p2pview
fi
log "building bzImage, vmlinux and modules with -j$JOBS (about 8 min on 2 cores)"
START=$(date +%s)
make -s -j"$JOBS" bzImage modules >&2
log "kernel built in $(( $(date +%s) - START )) s"
cp arch/x86/boot/bzImage "$OUT/bzImage"
cp vmlinux "$OUT/vmlinux"
make -s kernelrelease > "$OUT/kernelrelease"
cd "$OUT"
ln -sfn src build
touch done
echo "$OUT"
