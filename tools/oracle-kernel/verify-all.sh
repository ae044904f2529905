#!/bin/sh
# Check p2pview's verdicts against real kernels: for each release, build the oracle
# kernel (tools/oracle-kernel/build.sh, cached) and boot every bundled topology
# with -cpu qemu64 (AuthenticAMD family 15: not Zen) and -cpu EPYC (family 0x17:
# cpu_supports_p2pdma() is true). Topologies QEMU cannot build (sriov-nic: no
# SR-IOV VFs) or with no p2pmem provider (desktop-intel) are not booted; the run
# says so. Exit status 1 on any disagreement or failed boot (every release is
# still checked).
#
# Usage: tools/oracle-kernel/verify-all.sh [PYTHON] [RELEASE...]
#   PYTHON: a python3 with p2pview importable (default: python3)
#   RELEASE: 5.10 6.1 6.12 7.2 7.3 (default: all five)
# Environment: JOBS (guests in parallel, default nproc), RECORD (a results file
# for `p2pview verify --record`, e.g. verification-results.json).
#
# Cost on the project's 2-core CI machine: each kernel about 6-10 min to build the
# first time, then 1-2 min of guests per release (see README, "Checked against
# real kernels").
set -eu
HERE=$(cd "$(dirname "$0")" && pwd)
PY=${1:-${PYTHON:-python3}}
[ $# -gt 0 ] && shift
RELEASES=${*:-5.10 6.1 6.12 7.2 7.3}
JOBS=${JOBS:-$(nproc)}
TOPOLOGIES="arm64-offset desktop-intel epyc-2s hgx-8gpu multifunction-acs skylake-rootports
sriov-nic switch-acs-iommu switch-nvme-acs switch-nvme"
status=0
for rel in $RELEASES; do
    # Not a pipe into tail: a build that fails must stop this release, not
    # hand an empty directory to verify.
    if ! OUT=$("$HERE/build.sh" "$rel"); then
        echo "=== Linux $rel: the oracle kernel did not build (see above); not checked"
        status=1
        continue
    fi
    OUT=$(printf '%s\n' "$OUT" | tail -n 1)
    echo "=== Linux $(cat "$OUT/kernelrelease") (Debian linux-source-$rel $(cat "$OUT/version"))"
    # shellcheck disable=SC2086
    "$PY" -m p2pview.qemu verify $TOPOLOGIES \
        --kernel "$OUT/bzImage" --kernel-build "$OUT/build" \
        --cpu qemu64 --cpu EPYC --jobs "$JOBS" ${RECORD:+--record "$RECORD"} || status=1
done
exit $status
