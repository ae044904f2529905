"""Topologies and helpers for the data-path tests (spec TV12-TV14)."""

from __future__ import annotations

from p2pview.iosim import Scenario, simulate
from p2pview.iosim.datapath import DataPathKernel
from p2pview.iosim.scenario import (
    BufferKind,
    BufferSegment,
    DmaMode,
    Iovec,
    QueueLimits,
    TargetKind,
)
from p2pview.iosim.simulate import Trace
from p2pview.kernel import KernelTarget, prepare
from p2pview.model import (
    BDF,
    Acs,
    Bar,
    HostBridge,
    P2pMem,
    PciDevice,
    PcieType,
    Platform,
    RootBus,
    Topology,
)

B = BDF.parse
ACS_ON = Acs.present(0x5F, 0x1D)
MiB = 1 << 20


def nvme(
    bdf: str, parent: str, bar4: int | None, size: int = 2 * MiB, bus: int | None = None
) -> PciDevice:
    bars = [Bar(0, 0xFE000000 + (B(bdf).bus << 16), 0x4000, is_64bit=True)]
    mem = None
    if bar4 is not None:
        bars.append(Bar(4, bar4, size, prefetchable=True, is_64bit=True, bus_address=bus))
        mem = P2pMem(size, size, True, 4)
    return PciDevice(
        B(bdf),
        0x1DE5,
        0x1000,
        0x010802,
        parent=B(parent),
        driver="nvme",
        pcie_type=PcieType.ENDPOINT,
        bars=tuple(bars),
        p2pmem=mem,
    )


def host(ids: str = "8086:2020", bdf: str = "00:00.0") -> PciDevice:
    v, d = (int(x, 16) for x in ids.split(":"))
    return PciDevice(B(bdf), v, d, 0x060000)


def root_port(bdf: str, acs: Acs | None = None) -> PciDevice:
    return PciDevice(
        B(bdf),
        0x8086,
        0x2030,
        0x060400,
        header_type=1,
        driver="pcieport",
        pcie_type=PcieType.ROOT_PORT,
        acs=acs or Acs.absent(),
    )


def tv1() -> Topology:
    """TV1/TV12: nvme0 = 01:00.0 under an ACS Root Port, CMB BAR4 at 0xfb000000 (2 MiB)."""
    return Topology(
        [host(), root_port("00:01.0", ACS_ON), nvme("01:00.0", "00:01.0", 0xFB000000)],
        platform=Platform(),
    )


def tv3(hb: str = "8086:2020", second_cmb: int | None = None) -> Topology:
    """TV3/TV12-peer: nvme0 01:00.0 (CMB) and nvme1 02:00.0 on two Root Ports."""
    return Topology(
        [
            host(hb),
            root_port("00:01.0"),
            root_port("00:02.0"),
            nvme("01:00.0", "00:01.0", 0xFB000000),
            nvme("02:00.0", "00:02.0", second_cmb),
        ],
        platform=Platform(),
    )


def adjacent() -> Topology:
    """TV14(b): two CMBs physically adjacent: nvme0 0xfb000000-0xfb1fffff, nvme1 from 0xfb200000."""
    up = PciDevice(
        B("01:00.0"),
        0x10B5,
        0x8747,
        0x060400,
        header_type=1,
        parent=B("00:01.0"),
        pcie_type=PcieType.UPSTREAM,
    )
    dsp = [
        PciDevice(
            B(f"02:0{i}.0"),
            0x10B5,
            0x8747,
            0x060400,
            header_type=1,
            parent=B("01:00.0"),
            pcie_type=PcieType.DOWNSTREAM,
        )
        for i in (0, 1)
    ]
    return Topology(
        [
            host(),
            root_port("00:01.0"),
            up,
            *dsp,
            nvme("03:00.0", "02:00.0", 0xFB000000),
            nvme("04:00.0", "02:01.0", 0xFB200000),
        ],
        platform=Platform(),
    )


def arm64_offset() -> Topology:
    """TV13: a translating host bridge: BAR CPU 0x4000100000, bus 0x80100000."""
    return Topology(
        [root_port("00:01.0"), nvme("01:00.0", "00:01.0", 0x4000100000, bus=0x80100000)],
        [HostBridge(RootBus(0, 0), mem_offset=0x4000100000 - 0x80100000)],
        platform=Platform(arch="aarch64", cpu_vendor="ARM", cpu_family=0),
    )


def p2p(provider: str, size: int, **kw: object) -> BufferSegment:
    return BufferSegment(BufferKind.P2PMEM, size, provider=B(provider), **kw)  # type: ignore[arg-type]


def ram(size: int, pfns: tuple[int, ...] = (), layout: str = "contiguous") -> BufferSegment:
    return BufferSegment(BufferKind.RAM, size, pfns=pfns, layout=layout)


def scenario(
    buffer: tuple[BufferSegment, ...], client: str, kernel: str = "6.2", **kw: object
) -> Scenario:
    return Scenario(
        name="test",
        description="",
        source="test",
        kernel=DataPathKernel.parse(kernel),
        buffer=buffer,
        client=B(client),
        # A test that names the DMA mode means it (the topology does not decide).
        dma_given="dma" in kw,
        **kw,
    )  # type: ignore[arg-type]


def run(topo: Topology, sc: Scenario) -> Trace:
    target = sc.kernel.target if sc.kernel is not None else KernelTarget.parse("6.12")
    return simulate(sc, topo, prepare(topo, target))


__all__ = [
    "ACS_ON",
    "B",
    "BufferKind",
    "DmaMode",
    "Iovec",
    "MiB",
    "QueueLimits",
    "TargetKind",
    "adjacent",
    "arm64_offset",
    "p2p",
    "ram",
    "run",
    "scenario",
    "tv1",
    "tv3",
]
