"""Time the O_DIRECT simulator end to end on 1 GiB I/Os (target: under 2 s each).

Usage: python benchmarks/bench_iosim.py [--kernel 6.12]

1. a 1 GiB O_DIRECT read into a CMB buffer (one contiguous P2P chunk: one bvec,
   split into max_sectors requests);
2. a 1 GiB readv (IOV_MAX = 1024 iovecs of 1 MiB) into 4 KiB anonymous pages
   scattered over physical memory (a bvec and a scatterlist entry per page,
   bios split at max_segments).
Each runs every stage from mmap to munmap; best of three.
"""

from __future__ import annotations

import argparse
import time

from p2pview.iosim import BufferKind, BufferSegment, Iovec, Scenario, simulate
from p2pview.kernel import KernelTarget, prepare
from p2pview.model import BDF, Acs, Bar, P2pMem, PciDevice, PcieType, Platform, Topology

GiB = 1 << 30


def topology() -> Topology:
    """One NVMe controller with a 2 GiB CMB below a Skylake-SP Root Port."""
    b = BDF.parse
    cmb = Bar(4, 0x38000000000, 2 * GiB, prefetchable=True, is_64bit=True)
    return Topology(
        [
            PciDevice(b("00:00.0"), 0x8086, 0x2020, 0x060000),
            PciDevice(
                b("00:01.0"),
                0x8086,
                0x2030,
                0x060400,
                header_type=1,
                pcie_type=PcieType.ROOT_PORT,
                acs=Acs.present(0x5F, 0x1D),
            ),
            PciDevice(
                b("01:00.0"),
                0x1DE5,
                0x1000,
                0x010802,
                parent=b("00:01.0"),
                pcie_type=PcieType.ENDPOINT,
                driver="nvme",
                bars=(Bar(0, 0xFE000000, 0x4000, is_64bit=True), cmb),
                p2pmem=P2pMem(2 * GiB, 2 * GiB, True, 4),
            ),
        ],
        platform=Platform(),
        name="bench",
    )


def best_of(runs: int, scenario: Scenario, topo: Topology, kernel: str) -> tuple[float, str]:
    state = prepare(topo, KernelTarget.parse(kernel))
    best = float("inf")
    summary = ""
    for _ in range(runs):
        start = time.perf_counter()
        trace = simulate(scenario, topo, state)
        best = min(best, time.perf_counter() - start)
        requests = len(trace.steps[-1].state.requests)
        entries = sum(len(sg) for sg in trace.final_sgls)
        summary = f"{requests} requests, {entries} DMA entries, result {trace.result.outcome}"
    return best, summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--kernel", default="6.12")
    args = parser.parse_args()
    topo = topology()
    client = BDF.parse("01:00.0")
    mib = 1 << 20
    readv = tuple(Iovec(i * mib, mib) for i in range(GiB // mib))
    cases = {
        "1 GiB read into a CMB buffer": (
            BufferSegment(BufferKind.P2PMEM, GiB, provider=client),
            (),
        ),
        "1 GiB readv (1024 iovecs) into scattered 4 KiB RAM pages": (
            BufferSegment(BufferKind.RAM, GiB, layout="scattered"),
            readv,
        ),
    }
    for title, (segment, iovecs) in cases.items():
        scenario = Scenario("bench", title, "bench", args.kernel, (segment,), client, iovecs=iovecs)
        took, summary = best_of(3, scenario, topo, args.kernel)
        print(f"{title} (kernel {args.kernel}): {took:.3f} s, {summary}")


if __name__ == "__main__":
    main()
