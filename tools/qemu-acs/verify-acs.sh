#!/bin/sh
# Check "ACS redirect on a PCIe switch's downstream ports" against real kernels:
# the switch topologies booted under the QEMU of tools/qemu-acs/build.sh
# (xio3130-downstream with ACS) with `p2pview verify --dsp-acs`, with -cpu qemu64
# (not Zen) and -cpu EPYC (cpu_supports_p2pdma() true), on each release's oracle
# kernel. Exit status 1 on any disagreement (every release is still checked).
#
# Builds what is not cached first: the oracle kernels (~6-10 min each on 2 cores)
# and the patched QEMU (~3 min on 2 cores); then about 30 s of guests per release.
#
# Usage: tools/qemu-acs/verify-acs.sh [PYTHON] [RELEASE...]
#   PYTHON: a python3 with p2pview importable (default: python3)
#   RELEASE: 5.10 6.1 6.12 7.2 7.3 (default: all five)
# Environment: JOBS (guests in parallel, default nproc), RECORD (a results file
# for `p2pview verify --record`).
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${1:-${PYTHON:-python3}}
[ $# -gt 0 ] && shift
RELEASES=${*:-5.10 6.1 6.12 7.2 7.3}
JOBS=${JOBS:-$(nproc)}
if ! QEMU=$("$HERE/build.sh"); then
    echo "the QEMU with downstream-port ACS did not build (see above); nothing checked"
    exit 1
fi
QEMU=$(printf '%s\n' "$QEMU" | tail -n 1)
status=0
for rel in $RELEASES; do
    if ! KDIR=$("$HERE/../oracle-kernel/build.sh" "$rel"); then
        echo "=== Linux $rel: the oracle kernel did not build (see above); not checked"
        status=1
        continue
    fi
    KDIR=$(printf '%s\n' "$KDIR" | tail -n 1)
    echo "=== Linux $(cat "$KDIR/kernelrelease") under the QEMU with downstream-port ACS"
    # switch-nvme has no ACS on its switch: the control case (same QEMU, nothing redirected).
    "$PY" -m p2pview.qemu verify \
        switch-acs-iommu switch-nvme-acs switch-nvme \
        --qemu "$QEMU" --dsp-acs \
        --kernel "$KDIR/bzImage" --kernel-build "$KDIR/build" \
        --cpu qemu64 --cpu EPYC --jobs "$JOBS" ${RECORD:+--record "$RECORD"} || status=1
done
exit $status
