#!/usr/bin/env bash
# Build an "oracle" kernel that `p2pview verify` boots under QEMU.
#
# usage: tools/oracle-kernel/build.sh [RELEASE]     RELEASE: 5.10 | 6.1 | 6.12 (default) | 7.2 | 7.3
#
# The source is Debian's linux-source-RELEASE package, fetched from the suite that
# carries it (bullseye 5.10, bookworm 6.1, trixie 6.12, sid 7.2, experimental 7.3)
# with the ordinary apt client: a private sources file that reuses the URI of the
# system's own Debian sources, with its own apt lists under the cache directory.
# Nothing under /etc/apt or /var/lib/apt changes, and nothing is installed.
#
# Config: `make tinyconfig`, then the common fragment p2pdma.config and, where the
# release's Kconfig needs it, p2pdma-RELEASE.config, merged with merge_config.sh
# and `make olddefconfig`. Every option of p2pdma.config exists under the same
# name from 5.10 to 7.3 and survives olddefconfig in all five (checked), so no
# release needs a fragment of its own today; the hook is there for the next one. Only what `p2pview verify` needs is built: bzImage
# (what QEMU boots) and `make modules` (for Module.symvers, so that the one
# out-of-tree module, p2pview/qemu/guest/p2pdist.c, can be built against it).
#
# Cache: ${P2PVIEW_CACHE:-~/.cache/p2pview}/oracle-kernel/
#   linux-source-REL_VERSION-KEY/   one build: bzImage, kernelrelease, version,
#                                   build-seconds, build -> src (the kernel tree)
#   debs/                           the downloaded .deb files
#   apt/SUITE/                      the private apt lists
# VERSION is the Debian package version and KEY a hash of the config fragments and
# of these build steps, so a new package version or a changed fragment builds anew.
# Idempotent: with a finished build for RELEASE and the current KEY a run only
# prints its directory (no network). P2PVIEW_KERNEL_REFRESH=1 asks apt for the
# suite's current version first (and builds it if it is new).
#
# Compilers: Debian 12's gcc 12 and binutils 2.40 build all five as they are. 5.10
# needed nothing either, measured with 5.10.223: its stable series carries the
# gcc-12 fixes (tools/lib/subcmd's xrealloc() no longer calls realloc() on a freed
# pointer, which gcc 12 reports as -Werror=use-after-free in objtool's -Werror
# build [recalled]), and 5.10 has no CONFIG_WERROR (it came in 5.15), so a
# compiler warning in the kernel proper cannot fail the build.
#
# Cost (2-core Debian 12 VM shared with other jobs, measured): 6-15 min per
# release, most of it compiling; ~1.5 GB of disk per build tree.
# Needs: apt-get install flex bison libelf-dev bc cpio kmod xz-utils gcc make
#
# Prints on stdout, last line: the build's directory (pass DIR/bzImage to
# `p2pview verify --kernel`; DIR/build is found beside it for the module).
#
# Every kernel has the Intel IOMMU compiled in (iommu.config): it stays off unless
# the guest's firmware has a DMAR table, which QEMU gives only with its
# intel-iommu device (`p2pview verify --io --iommu`). Without one,
# detect_intel_iommu() (drivers/iommu/intel/dmar.c) finds no table, never calls
# pci_request_acs(), and DMA is dma-direct, as in a kernel without the driver
# [read: 5.10.223 and 6.12.117 dmar.c]. One kernel per release serves both checks,
# so a cold CI builds five kernels, not eight.
set -euo pipefail

REL=${1:-6.12}
case $REL in
  5.10) SUITE=bullseye ;;
  6.1) SUITE=bookworm ;;
  6.12) SUITE=trixie ;;
  7.2) SUITE=sid ;;
  7.3) SUITE=experimental ;;
  *) echo "build.sh: unknown release '$REL' (one of 5.10, 6.1, 6.12, 7.2, 7.3)" >&2; exit 2 ;;
esac
PKG=linux-source-$REL
HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${P2PVIEW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/p2pview}/oracle-kernel
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
FRAGS=("$HERE/p2pdma.config" "$HERE/iommu.config")
[ -f "$HERE/p2pdma-$REL.config" ] && FRAGS+=("$HERE/p2pdma-$REL.config")
NAME=$PKG
MUST="IOMMU_SUPPORT INTEL_IOMMU"
# dma-iommu is what `verify --io --iommu` maps through; the releases it runs on
# (userspace P2PDMA, 6.2 and later) must have it.
case $REL in 5.10|6.1) ;; *) MUST="$MUST IOMMU_DMA" ;; esac
# Bump KEY_EXTRA when the build steps below change what gets built.
KEY_EXTRA=3
KEY=$( (cat "${FRAGS[@]}"; echo "$KEY_EXTRA") | sha256sum | cut -c1-12)

log() { echo "[oracle-kernel $REL] $*" >&2; }

# 1. A finished build with this KEY: print it, touch nothing.
if [ "${P2PVIEW_KERNEL_REFRESH:-0}" != 1 ]; then
    for done in "$CACHE"/"$NAME"_*-"$KEY"/done; do
        if [ -f "$done" ]; then
            dirname "$done"
            exit 0
        fi
    done
fi

mkdir -p "$CACHE/debs"

# 2. Which version the suite carries now, and its .deb.
uri=$(grep -hm1 -E '^URIs:' /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '{print $2}' || true)
[ -n "$uri" ] || uri=$(grep -hm1 -E '^deb ' /etc/apt/sources.list 2>/dev/null | awk '{print $2}' || true)
[ -n "$uri" ] || uri=http://deb.debian.org/debian
APTDIR="$CACHE/apt/$SUITE"
mkdir -p "$APTDIR/parts" "$APTDIR/lists/partial" "$APTDIR/archives/partial"
cat > "$APTDIR/parts/kernel.sources" <<SRC
Types: deb
URIs: $uri
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
APT=(-o Dir::Etc::sourcelist=/dev/null -o Dir::Etc::sourceparts="$APTDIR/parts"
     -o Dir::State::Lists="$APTDIR/lists" -o Dir::Cache::Archives="$APTDIR/archives"
     -o Dir::State::status=/dev/null -o Debug::NoLocking=1 -o Acquire::Languages=none
     -o APT::Sandbox::User=root)
VERSION=
log "asking apt for $PKG in $SUITE ($uri)"
if apt-get "${APT[@]}" -qq update >&2; then
    VERSION=$(apt-cache "${APT[@]}" show "$PKG" 2>/dev/null | awk '/^Version:/ {print $2}' \
        | sort -V | tail -n 1)
fi
if [ -z "$VERSION" ]; then
    # Offline, or the suite dropped the package: the newest .deb fetched before.
    deb=$(ls "$CACHE/debs/${PKG}_"*.deb 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$deb" ] || { log "no $PKG in $SUITE and none cached in $CACHE/debs"; exit 2; }
    VERSION=$(dpkg-deb -f "$deb" Version)
    log "apt gave no version: using the cached $deb"
fi
# The version as it appears in the .deb's file name (an epoch's ':' becomes %3a).
DEB="$CACHE/debs/${PKG}_${VERSION/:/%3a}_all.deb"
OUT="$CACHE/${NAME}_${VERSION}-$KEY"
if [ -f "$OUT/done" ]; then
    echo "$OUT"
    exit 0
fi
if [ ! -f "$DEB" ]; then
    log "downloading $PKG $VERSION"
    (cd "$CACHE/debs" && apt-get "${APT[@]}" -qq download "$PKG=$VERSION" >&2) || {
        log "apt-get download $PKG=$VERSION failed (needs access to $uri)"
        exit 2
    }
fi

# 3. The tree.
mkdir -p "$OUT"
cd "$OUT"
if [ ! -f src/Makefile ]; then
    log "unpacking $DEB"
    rm -rf deb src src.tmp && mkdir deb src.tmp
    dpkg-deb -x "$DEB" deb
    tar -C src.tmp -xf deb/usr/src/"$PKG".tar.xz
    mv src.tmp/"$PKG" src && rm -rf src.tmp deb
fi

# 4. Config.
cd src
if [ ! -f .config.p2pview ]; then
    log "configuring: tinyconfig + ${FRAGS[*]##*/}"
    make -s tinyconfig >&2
    scripts/kconfig/merge_config.sh -m .config "${FRAGS[@]}" >&2
    make -s olddefconfig >&2
    # Refuse a config where a fragment silently lost an option that matters.
    for opt in PCI_P2PDMA KPROBES KPROBE_EVENTS MODULES BLK_DEV_NVME ZONE_DEVICE PVH ACPI \
               PCIEPORTBUS CPU_SUP_AMD CPU_SUP_INTEL $MUST; do
        grep -q "^CONFIG_$opt=y" .config || { log "CONFIG_$opt did not survive olddefconfig"; exit 3; }
    done
    cp .config .config.p2pview
fi

# 5. Build.
log "building bzImage and modules with -j$JOBS"
START=$(date +%s)
make -s -j"$JOBS" bzImage modules >&2
SECONDS_TAKEN=$(( $(date +%s) - START ))
log "kernel built in $SECONDS_TAKEN s"
cp arch/x86/boot/bzImage "$OUT/bzImage"
make -s kernelrelease > "$OUT/kernelrelease"
cd "$OUT"
echo "$VERSION" > version
echo "$SECONDS_TAKEN" > build-seconds
ln -sfn src build
touch done
echo "$OUT"
