"""Generated topologies of any size, for benchmarks and scale tests.

Each host bridge owns one PCI domain: a host-bridge function at devfn 00.0,
Root Ports, and below them single NVMe controllers (with a CMB), multi-function
devices, GPUs and NICs, or switches (sometimes nested) with ACS on some
Downstream Ports. The layout is a deterministic function of the seed.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

from p2pview.model import BDF, Acs, Bar, P2pMem, PciDevice, PcieType, Platform, Topology

_ACS_ON = Acs.present(0x005F, 0x001D, 0x0000)
_ACS_OFF = Acs.present(0x005F, 0x0000)
#: Where generated CMBs start (above 4 GiB, as firmware places 64-bit BARs).
_CMB_BASE = 0x3800_0000_0000


class _Builder:
    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.rng = random.Random(seed)
        self.devices: list[PciDevice] = []
        self.domain = -1
        self.next_bus = 0
        self.next_cmb = 0

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
            # A CMB is a prefetchable 64-bit BAR holding the p2pmem (BAR 2 on
            # most controllers); each gets its own 2 MiB slot high in the
            # address space so that the I/O simulator can place chunks in it.
            bars: tuple[Bar, ...] = ()
            if mem is not None:
                start = _CMB_BASE + self.next_cmb * mem.size
                self.next_cmb += 1
                bars = (Bar(2, start, mem.size, prefetchable=True, is_64bit=True),)
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
                    bars=bars,
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


def encode_config(dev: PciDevice, size: int, secondary: int = 0, subordinate: int = 0) -> bytes:
    """Config space for ``dev`` as the kernel would show it: header, PCIe and ACS capabilities.

    The inverse of :func:`p2pview.sources.configspace.decode` for the fields the
    model holds; ``size`` is what a reader gets (64 without root, 4096 with).
    """
    cfg = bytearray(4096)
    cfg[0:2] = dev.vendor.to_bytes(2, "little")
    cfg[2:4] = dev.device.to_bytes(2, "little")
    cfg[8] = dev.revision & 0xFF
    cfg[9:12] = dev.class_code.to_bytes(3, "little")
    header = dev.header_type if dev.header_type is not None else 0
    cfg[0x0E] = header | (0x80 if dev.multifunction else 0)
    if header == 1:
        cfg[0x18], cfg[0x19], cfg[0x1A] = dev.bdf.bus, secondary, subordinate
    elif dev.subsystem_vendor is not None and dev.subsystem_device is not None:
        cfg[0x2C:0x2E] = dev.subsystem_vendor.to_bytes(2, "little")
        cfg[0x2E:0x30] = dev.subsystem_device.to_bytes(2, "little")
    if dev.pcie_type is not None:
        cfg[0x06] |= 0x10  # capability list
        cfg[0x34] = 0x40
        cfg[0x40:0x44] = bytes([0x10, 0x00, (int(dev.pcie_type) << 4) | 0x2, 0x00])
        if dev.acs.cap is not None and dev.acs.ctrl is not None:
            cfg[0x100:0x104] = (0x000D | (1 << 16)).to_bytes(4, "little")
            cfg[0x104:0x106] = dev.acs.cap.to_bytes(2, "little")
            cfg[0x106:0x108] = dev.acs.ctrl.to_bytes(2, "little")
    return bytes(cfg[:size])


def write_sysfs_tree(topo: Topology, root: Path, *, privileged: bool = True) -> None:
    """Write ``topo`` as a gathered sysfs tree under ``root`` (for benchmarks and tests).

    With ``privileged`` False, ``config`` files hold 64 bytes, as a non-root
    read gives.
    """
    devices_dir = root / "sys/devices"
    bus_dir = root / "sys/bus/pci/devices"
    bus_dir.mkdir(parents=True, exist_ok=True)
    paths: dict[BDF, Path] = {}
    for bdf in topo.bdfs:
        chain = topo.upstream_chain(bdf)
        top = topo.root_bus_of(bdf)
        paths[bdf] = devices_dir.joinpath(str(top), *(str(b) for b in reversed(chain)))
    for bdf, path in paths.items():
        dev = topo[bdf]
        path.mkdir(parents=True, exist_ok=True)
        below = [b.bus for b in topo.subtree(bdf)[1:]]
        kids = [b.bus for b in topo.children(bdf)]
        cfg = encode_config(
            dev,
            4096 if privileged and dev.pcie_type is not None else 256 if privileged else 64,
            min(kids, default=0),
            max(below, default=0),
        )
        (path / "config").write_bytes(cfg)
        values = {
            "vendor": f"{dev.vendor:#06x}",
            "device": f"{dev.device:#06x}",
            "class": f"{dev.class_code:#08x}",
            "revision": f"{dev.revision:#04x}",
            "numa_node": str(dev.numa_node if dev.numa_node is not None else -1),
        }
        if dev.link.speed:
            values["current_link_speed"] = dev.link.speed
            values["current_link_width"] = str(dev.link.width or 0)
        for name, value in values.items():
            (path / name).write_text(value + "\n")
        resource = ["0x0000000000000000 0x0000000000000000 0x0000000000000000"] * 17
        for bar in dev.bars:
            flags = 0x200 | (0x2000 if bar.prefetchable else 0) | (0x100000 if bar.is_64bit else 0)
            resource[bar.index] = f"{bar.start:#018x} {bar.end:#018x} {flags:#018x}"
        (path / "resource").write_text("\n".join(resource) + "\n")
        if dev.p2pmem is not None:
            mem = path / "p2pmem"
            mem.mkdir(exist_ok=True)
            (mem / "size").write_text(f"{dev.p2pmem.size}\n")
            (mem / "available").write_text(f"{dev.p2pmem.available}\n")
            (mem / "published").write_text(f"{int(dev.p2pmem.published)}\n")
        if dev.driver:
            drivers = root / "sys/bus/pci/drivers" / dev.driver
            drivers.mkdir(parents=True, exist_ok=True)
            os.symlink(os.path.relpath(drivers, path), path / "driver")
        if dev.physfn is not None:
            os.symlink(os.path.relpath(paths[dev.physfn], path), path / "physfn")
        os.symlink(os.path.relpath(path, bus_dir), bus_dir / str(bdf))
    proc = root / "proc"
    (proc / "sys/kernel").mkdir(parents=True, exist_ok=True)
    plat = topo.platform
    (proc / "cpuinfo").write_text(
        f"processor\t: 0\nvendor_id\t: {plat.cpu_vendor}\ncpu family\t: {plat.cpu_family}\n"
        f"model name\t: {plat.cpu_model_name or 'generated'}\n\n"
    )
    (proc / "cmdline").write_text(plat.cmdline + "\n")
    (proc / "sys/kernel/osrelease").write_text((plat.kernel or "6.12.0") + "\n")
    (proc / "sys/kernel/hostname").write_text(f"{topo.name}\n")
