#!/bin/sh
# Check p2pview's verdicts against the oracle kernel on every bundled topology
# QEMU can express, with -cpu qemu64 (AuthenticAMD family 15: not Zen) and
# -cpu EPYC (family 0x17: cpu_supports_p2pdma() is true). Exit status 1 on any
# disagreement. Builds the kernel first if it is not cached (~6-8 min on 2 cores),
# then about 3-4 min of guests on 2 cores (see the timings in the README section).
#
# Usage: tools/oracle-kernel/verify-all.sh [PYTHON]   (default: python3 with p2pview importable)
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${1:-${PYTHON:-python3}}
OUT=$("$HERE/build.sh" | tail -n 1)
JOBS=${JOBS:-$(nproc)}
# Left out: sriov-nic (QEMU 7.2 cannot create its SR-IOV VFs: 'p2pview qemu sriov-nic' says so)
# and desktop-intel (no p2pmem provider, so no pair to check).
exec "$PY" -m p2pview.qemu verify \
    switch-nvme switch-nvme-acs multifunction-acs skylake-rootports epyc-2s \
    arm64-offset switch-acs-iommu hgx-8gpu \
    --kernel "$OUT/bzImage" --kernel-build "$OUT/build" \
    --cpu qemu64 --cpu EPYC --jobs "$JOBS"
