#!/bin/sh
# Check "ACS redirect on a PCIe switch's downstream ports" against the oracle
# kernel: the switch topologies booted under the QEMU of tools/qemu-acs/build.sh
# (xio3130-downstream with ACS) with `p2pview verify --dsp-acs`, with -cpu qemu64
# (not Zen) and -cpu EPYC (cpu_supports_p2pdma() true). Exit status 1 on any
# disagreement.
#
# Builds what is not cached first: the oracle kernel (~8 min on 2 cores) and
# the patched QEMU (~3 min on 2 cores); then about 25 s of guests.
#
# Usage: tools/qemu-acs/verify-acs.sh [PYTHON]   (default: python3 with p2pview importable)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${1:-${PYTHON:-python3}}
KDIR=$("$HERE/../oracle-kernel/build.sh" | tail -n 1)
QEMU=$("$HERE/build.sh" | tail -n 1)
JOBS=${JOBS:-$(nproc)}
# switch-nvme has no ACS on its switch: the control case (the same QEMU, nothing redirected).
exec "$PY" -m p2pview.qemu verify \
    switch-acs-iommu switch-nvme-acs switch-nvme \
    --qemu "$QEMU" --dsp-acs \
    --kernel "$KDIR/bzImage" --kernel-build "$KDIR/build" \
    --cpu qemu64 --cpu EPYC --jobs "$JOBS"
