"""Generated topologies of any size, for benchmarks and scale tests.

Each host bridge owns one PCI domain: a host-bridge function at devfn 00.0,
Root Ports, and below them single NVMe controllers (with a CMB), multi-function
devices, GPUs and NICs, or switches (sometimes nested) with ACS on some
Downstream Ports. The layout is a deterministic function of the seed.
"""

from __future__ import annotations

import random

from p2pview.model import BDF, Acs, P2pMem, PciDevice, PcieType, Platform, Topology

_ACS_ON = Acs.present(0x005F, 0x001D, 0x0000)
_ACS_OFF = Acs.present(0x005F, 0x0000)


class _Builder:
    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.devices: list[PciDevice] = []
        self.domain = -1
        self.next_bus = 0

    def full(self) -> bool:
        return len(self.devices) >= self.size

    def bus(self) -> int | None:
        if self.next_bus > 0xFF:
            return None
        self.next_bus += 1
        return self.next_bus - 1

    def add(self, dev: PciDevice) -> None:
        if not self.full():
            self.devices.append(dev)

    def endpoint(self, bus: int, parent: BDF, slot: int = 0) -> None:
        kind = self.rng.random()
        if kind < 0.5:
            bdf = BDF(self.domain, bus, slot, 0)
            mem = P2pMem(1 << 21, 1 << 21, True) if self.rng.random() < 0.5 else None
            self.add(
                PciDevice(
                    bdf,
                    0x144D,
                    0xA824,
                    0x010802,
                    parent=parent,
                    pcie_type=PcieType.ENDPOINT,
                    driver="nvme",
                    p2pmem=mem,
                )
            )
        elif kind < 0.75:
            functions = self.rng.randint(2, 4)
            for fn in range(functions):
                self.add(
                    PciDevice(
                        BDF(self.domain, bus, slot, fn),
                        0x15B3,
                        0x101D,
                        0x020000,
                        parent=parent,
                        multifunction=True,
                        driver="mlx5_core",
                        pcie_type=PcieType.ENDPOINT,
                        acs=Acs.absent(),
                    )
                )
        else:
            self.add(
                PciDevice(
                    BDF(self.domain, bus, slot, 0),
                    0x10DE,
                    0x2330,
                    0x030200,
                    parent=parent,
                    pcie_type=PcieType.ENDPOINT,
                    driver="nvidia",
                )
            )

    def switch(self, bus: int, parent: BDF, depth: int) -> None:
        usp = BDF(self.domain, bus, 0, 0)
        self.add(
            PciDevice(
                usp,
                0x1000,
                0xC030,
                0x060400,
                header_type=1,
                parent=parent,
                pcie_type=PcieType.UPSTREAM,
                driver="pcieport",
            )
        )
        inner = self.bus()
        if inner is None:
            return
        for slot in range(self.rng.randint(2, 8)):
            if self.full():
                return
            dsp = BDF(self.domain, inner, slot, 0)
            acs = _ACS_ON if self.rng.random() < 0.3 else _ACS_OFF
            self.add(
                PciDevice(
                    dsp,
                    0x1000,
                    0xC030,
                    0x060400,
                    header_type=1,
                    parent=usp,
                    pcie_type=PcieType.DOWNSTREAM,
                    acs=acs,
                    driver="pcieport",
                )
            )
            below = self.bus()
            if below is None:
                return
            if depth < 2 and self.rng.random() < 0.25:
                self.switch(below, dsp, depth + 1)
            else:
                self.endpoint(below, dsp)

    def host_bridge(self) -> None:
        self.domain += 1
        self.next_bus = 1
        self.add(PciDevice(BDF(self.domain, 0, 0, 0), 0x8086, 0x09A2, 0x060000))
        for slot in range(1, 32):
            if self.full():
                return
            rp = BDF(self.domain, 0, slot, 0)
            self.add(
                PciDevice(
                    rp,
                    0x8086,
                    0x347A,
                    0x060400,
                    header_type=1,
                    pcie_type=PcieType.ROOT_PORT,
                    acs=_ACS_OFF,
                    driver="pcieport",
                )
            )
            bus = self.bus()
            if bus is None:
                return
            if self.rng.random() < 0.6:
                self.switch(bus, rp, 0)
            else:
                self.endpoint(bus, rp)
            if self.next_bus > 0xF0:
                return


def generate(size: int, seed: int = 0) -> Topology:
    """A topology of exactly ``size`` functions (``size`` >= 1)."""
    builder = _Builder(size, seed)
    while not builder.full():
        builder.host_bridge()
    platform = Platform(arch="x86_64", cpu_vendor="GenuineIntel", cpu_family=6, kernel="6.12")
    return Topology(
        builder.devices,
        platform=platform,
        name=f"generated-{size}",
        description=f"Generated topology of {size} functions (seed {seed})",
        source=f"generated:{size}",
    )
