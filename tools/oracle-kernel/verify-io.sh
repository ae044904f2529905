#!/bin/sh
# Check p2pview's O_DIRECT simulator against real kernels, as QEMU's NVMe saw the
# I/O: for each release with userspace P2PDMA, build the oracle kernel
# (tools/oracle-kernel/build.sh, cached) and run `p2pview verify --io` on
# switch-nvme (its generated scenarios: 512 B to 8 MiB, page offsets, readv/writev
# mixing P2P and RAM, two CMBs, a controller's own CMB) plus every bundled
# scenario (those QEMU cannot run are listed with the reason), -cpu qemu64, no
# IOMMU, once per nvme MDTS value; then once more through QEMU's intel-iommu with
# MDTS 7, on the same kernel (build.sh compiles the Intel IOMMU into every oracle
# kernel; it stays off without QEMU's intel-iommu device). Exit status 1 on any disagreement or failed
# boot (every release is still checked).
#
# Usage: tools/oracle-kernel/verify-io.sh [PYTHON] [RELEASE...]
#   PYTHON: a python3 with p2pview importable (default: python3)
#   RELEASE: 6.12 7.2 7.3 (default: all three; 5.10 and 6.1 have no p2pmem/allocate)
# Environment: JOBS (guests in parallel, default nproc), MDTS (nvme mdts values,
# default "7 0 3": QEMU's default 512 KiB, no limit, 32 KiB), IOMMU (0: skip the
# intel-iommu pass, default 1), RECORD (a results file for `p2pview verify
# --record`, e.g. verification-results.json).
#
# Cost on the project's 2-core CI machine: about a minute of guests per release
# when the kernels are cached (see README, "Check p2pview against your own kernel").
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${1:-${PYTHON:-python3}}
[ $# -gt 0 ] && shift
RELEASES=${*:-6.12 7.2 7.3}
JOBS=${JOBS:-$(nproc)}
SOURCES="switch-nvme adjacent-cmbs cmb-read-bus-addr eremoteio-dma-map eremoteio-gup
readv-mixed swiotlb-hang thru-iommu v5-series-nvme-mmap"
mdts_args=""
for m in ${MDTS:-7 0 3}; do mdts_args="$mdts_args --mdts $m"; done
status=0
for rel in $RELEASES; do
    if ! OUT=$("$HERE/build.sh" "$rel"); then
        echo "=== Linux $rel: the oracle kernel did not build (see above); not checked"
        status=1
        continue
    fi
    OUT=$(printf '%s\n' "$OUT" | tail -n 1)
    echo "=== Linux $(cat "$OUT/kernelrelease") (Debian linux-source-$rel $(cat "$OUT/version")): O_DIRECT"
    # shellcheck disable=SC2086
    "$PY" -m p2pview.qemu verify --io $SOURCES --kernel "$OUT/bzImage" $mdts_args \
        --jobs "$JOBS" ${RECORD:+--record "$RECORD"} || status=1
    [ "${IOMMU:-1}" = 1 ] || continue
    echo "=== Linux $(cat "$OUT/kernelrelease"): O_DIRECT through QEMU's intel-iommu"
    # shellcheck disable=SC2086
    "$PY" -m p2pview.qemu verify --io --iommu $SOURCES --kernel "$OUT/bzImage" --mdts 7 \
        --jobs "$JOBS" ${RECORD:+--record "$RECORD"} || status=1
done
exit $status
