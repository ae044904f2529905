#!/bin/sh
# Build a QEMU whose PCIe switch downstream ports (xio3130-downstream) have an
# ACS capability, so `p2pview verify --qemu BIN --dsp-acs` can check "ACS
# redirect on a switch's downstream ports" against the real kernel. Debian's
# QEMU 7.2 (and upstream up to at least 10.0) has no ACS there.
#
# What it does: fetches Debian bookworm's qemu source package with
# `apt-get source` (a deb-src list of its own under the cache dir, with its own
# apt lists: the system's apt configuration is not touched), applies
# xio3130-acs.patch (pcie_acs_init after AER at 0x148, pcie_acs_reset in reset,
# and a "disable-acs" property, as pcie-root-port has), configures a minimal
# x86_64-softmmu TCG-only build and installs it under the cache dir. Firmware
# (seabios, linuxboot_dma.bin, pvh.bin) comes from Debian's installed packages
# via --firmwarepath, as Debian's own build does.
#
# Idempotent: cached under ${P2PVIEW_CACHE:-~/.cache/p2pview}/qemu-acs/<key>/,
# the key being a hash of the patch, the suite and this build's configure
# options (the Debian source version it got is kept in <key>/source-version);
# a second run only prints the path.
#
# Cost: about 3 min on 2 cores (176 s cold, fetch included, measured on the
# project's 2-core Debian 12 VM), ~600 MB of disk (the build tree is kept).
# Needs: apt-get install dpkg-dev gcc make ninja-build meson pkg-config
#        python3-venv libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev
#        qemu-system-x86 (for the firmware files), and access to Debian's mirror.
# Prints on stdout, last line: the path of the patched qemu-system-x86_64.
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE=${P2PVIEW_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/p2pview}/qemu-acs
JOBS=${JOBS:-$(( $(nproc) + 1 ))}
PATCH="$HERE/xio3130-acs.patch"
SUITE=${P2PVIEW_QEMU_SUITE:-bookworm}
FIRMWAREPATH=/usr/share/qemu:/usr/share/seabios:/usr/lib/ipxe/qemu
CONFIGURE_OPTS="--target-list=x86_64-softmmu --without-default-features --enable-tcg \
--disable-docs --disable-werror --disable-install-blobs --firmwarepath=$FIRMWAREPATH"
# Bump KEY_EXTRA when the build steps change.
KEY_EXTRA=1
KEY=$( (cat "$PATCH"; echo "$SUITE $CONFIGURE_OPTS $KEY_EXTRA") | sha256sum | cut -c1-12)
OUT="$CACHE/$SUITE-$KEY"
BIN="$OUT/install/bin/qemu-system-x86_64"

if [ -f "$OUT/done" ] && [ -x "$BIN" ]; then
    echo "$BIN"
    exit 0
fi

log() { echo "[qemu-acs] $*" >&2; }
mkdir -p "$OUT"
cd "$OUT"

if [ ! -f src.ok ]; then
    # A private deb-src list and apt state: nothing under /etc/apt or
    # /var/lib/apt/lists changes.
    APTDIR="$CACHE/apt"
    mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial"
    cat > "$APTDIR/deb-src.sources" <<EOF
Types: deb-src
URIs: http://deb.debian.org/debian
Suites: $SUITE
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOF
    set -- -o "Dir::Etc::sourcelist=$APTDIR/deb-src.sources" -o Dir::Etc::sourceparts=- \
        -o "Dir::State::lists=$APTDIR/lists" -o "Dir::Cache=$APTDIR/cache"
    log "fetching the qemu source package from $SUITE (apt-get source)"
    apt-get "$@" -q update >&2
    rm -rf dl && mkdir dl
    (cd dl && apt-get "$@" -q source qemu >&2) || {
        log "apt-get source qemu failed (needs dpkg-dev and access to Debian's mirror)"
        exit 2
    }
    rm -rf src
    mv dl/qemu-*/ src
    ls dl/*.dsc | sed 's,.*/,,' > source-version
    rm -rf dl
    log "applying $PATCH"
    patch -d src -p1 --forward < "$PATCH" >&2
    touch src.ok
fi

START=$(date +%s)
mkdir -p src/build-p2pview
cd src/build-p2pview
if [ ! -f build.ninja ]; then
    log "configuring: $CONFIGURE_OPTS"
    # shellcheck disable=SC2086
    ../configure --prefix="$OUT/install" $CONFIGURE_OPTS >&2 || { rm -f build.ninja; exit 4; }
fi
log "building with -j$JOBS (about 3 min on 2 cores)"
ninja -j"$JOBS" qemu-system-x86_64 >&2
rm -rf "$OUT/install"
mkdir -p "$OUT/install/bin"
cp qemu-system-x86_64 "$OUT/install/bin/"
log "QEMU built in $(( $(date +%s) - START )) s"
# Sanity: the switch downstream port must now offer the disable-acs property.
"$BIN" -device xio3130-downstream,help 2>&1 | grep -q disable-acs || {
    log "the built QEMU's xio3130-downstream has no disable-acs property: patch not applied?"
    exit 3
}
cd "$OUT"
touch done
echo "$BIN"
