"""Infer what a dump leaves out from what it shows, before anything is assumed.

Two facts the kernel's decision needs are often missing from dumps of other
machines, yet follow from the PCI functions the dump does show:

* **the CPU** (``cpu_supports_p2pdma()``: x86 AMD family 0x17 or later): a
  root complex or host-bridge function at the top of a root bus belongs to
  one CPU generation (``p2pview/data/root_complexes.toml``, each row with its
  source), and at least its vendor says whose CPU it is;
* **the function the whitelist looks at** when an exporter dropped it
  (hwloc's default filter leaves out host-bridge functions): on the Intel
  platforms of ``pci_p2pdma_whitelist[]`` the root ports it kept name the
  platform, and with it the function at devfn 00.0
  (``p2pview/data/host_bridge_from_root_ports.toml``).

What cannot be inferred stays assumed, and the verdicts that use it say so.
A hypervisor's emulated host bridge (QEMU's q35 or i440fx) says nothing of the
host CPU, so a guest's dump infers nothing from it.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

from p2pview.model import BDF, Acs, Fact, PciDevice, Platform, RootBus, Topology
from p2pview.sources.packaged import package_file

#: Vendors whose functions on a root bus mean a virtual machine (the chipset is emulated).
HYPERVISOR_VENDORS = {
    0x1AF4: "virtio (Red Hat)",
    0x1B36: "QEMU",
    0x15AD: "VMware",
    0x1414: "Microsoft Hyper-V",
    0x5853: "Xen",
    0x1AB8: "Parallels",
}

#: Root-bus vendors that name the CPU vendor when no table row matches.
VENDOR_CPU = {
    0x8086: ("GenuineIntel", 6, "an Intel root complex: the CPU is Intel (not AMD Zen)"),
    0x1D94: ("HygonGenuine", 0x18, "a Hygon root complex: the CPU is Hygon (not AMD Zen)"),
    0x1D17: ("CentaurHauls", 7, "a Zhaoxin root complex: the CPU is Zhaoxin (not AMD Zen)"),
}

#: Root-bus vendors of non-x86 machines (``cpu_supports_p2pdma()`` is false off x86).
VENDOR_ARCH = {
    0x1014: ("ppc64le", "an IBM POWER host bridge"),
    0x1DEF: ("aarch64", "an Ampere root port"),
    0x19E5: ("aarch64", "a HiSilicon (Huawei) root port"),
    0x10EE: ("aarch64", "a Xilinx root port"),
}


@dataclass(frozen=True, slots=True)
class RootComplexRow:
    """One row of ``root_complexes.toml``."""

    vendor: int
    device: int
    role: str
    cpu_vendor: str
    cpu_families: tuple[int, ...]
    platform: str
    source: str

    @property
    def emulated(self) -> bool:
        """A hypervisor's host bridge: no CPU follows from it."""
        return self.role == "emulated"


@dataclass(frozen=True, slots=True)
class RootPortRow:
    """One row of ``host_bridge_from_root_ports.toml``."""

    vendor: int
    device: int
    host_bridge_device: int | None
    every_root_bus: bool
    platform: str
    source: str


def _rows(name: str, table: str) -> list[dict[str, Any]]:
    """The ``[[table]]`` rows of a data file shipped in ``p2pview/data``."""
    text = package_file("data", name).read_text(encoding="utf-8")
    rows: list[dict[str, Any]] = tomllib.loads(text).get(table, [])
    return rows


@cache
def root_complexes() -> dict[tuple[int, int], RootComplexRow]:
    """The root-complex table, by ``(vendor, device)``."""
    rows: dict[tuple[int, int], RootComplexRow] = {}
    for item in _rows("root_complexes.toml", "function"):
        row = RootComplexRow(
            vendor=int(item["vendor"], 16),
            device=int(item["device"], 16),
            role=item["role"],
            cpu_vendor=item.get("cpu_vendor", ""),
            cpu_families=tuple(int(f, 16) for f in item.get("cpu_family", [])),
            platform=item.get("platform", ""),
            source=item.get("source", ""),
        )
        rows[(row.vendor, row.device)] = row
    return rows


@cache
def root_ports() -> dict[tuple[int, int], RootPortRow]:
    """The Intel root-port table, by ``(vendor, device)``."""
    rows: dict[tuple[int, int], RootPortRow] = {}
    for item in _rows("host_bridge_from_root_ports.toml", "root_port"):
        hb = item.get("host_bridge_device", "")
        row = RootPortRow(
            vendor=int(item["vendor"], 16),
            device=int(item["device"], 16),
            host_bridge_device=int(hb, 16) if hb else None,
            every_root_bus=str(item.get("scope", "")).startswith("every"),
            platform=item.get("platform", ""),
            source=item.get("source", ""),
        )
        rows[(row.vendor, row.device)] = row
    return rows


def infer_missing(topo: Topology) -> Topology:
    """The topology with what its dump left out inferred where the dump allows it."""
    topo = _infer_host_bridge_functions(topo)
    return _infer_cpu(topo)


# -- the CPU -------------------------------------------------------------------------


def _root_bus_functions(topo: Topology) -> list[PciDevice]:
    """Functions on root buses whose vendor is known, lowest address first.

    A function whose device ID is unknown (``8086:????``, a name pci.ids
    gives the vendor of only) still tells the CPU's vendor.
    """
    return [
        d for d in topo.devices if d.parent is None and not d.placeholder and d.vendor != 0xFFFF
    ]


def _device_known(dev: PciDevice) -> bool:
    return not dev.fact("ids").is_assumed or dev.device != 0xFFFF


def _infer_cpu(topo: Topology) -> Topology:
    plat = topo.platform
    if not plat.facts.cpu.is_assumed:
        return topo
    on_root = _root_bus_functions(topo)
    table = root_complexes()
    guests = [d for d in on_root if d.vendor in HYPERVISOR_VENDORS]
    emulated = [
        d
        for d in on_root
        if _device_known(d) and (row := table.get((d.vendor, d.device))) and row.emulated
    ]
    if guests or emulated:
        first = (emulated or guests)[0]
        why = (
            f"{plat.facts.cpu.how}; the root bus holds {first.bdf} {first.ids}, a virtual"
            " machine's emulated device, which says nothing of the host's CPU"
        )
        return topo.with_platform(facts=plat.facts.with_fact("cpu", Fact.assumed(why)))
    for dev in on_root:
        row = table.get((dev.vendor, dev.device)) if _device_known(dev) else None
        if row is None or not row.cpu_vendor or not row.cpu_families:
            continue
        families = row.cpu_families
        zen = {f >= 0x17 for f in families}
        if row.cpu_vendor == "AuthenticAMD" and len(zen) > 1:
            continue  # a platform that spans Zen and pre-Zen says nothing about the check
        how = f"{dev.bdf} {dev.ids} ({row.platform})"
        return _with_cpu(topo, "x86_64", row.cpu_vendor, max(families), Fact.inferred(how))
    for dev in on_root:
        known = VENDOR_CPU.get(dev.vendor)
        if known is not None:
            vendor, family, what = known
            how = f"{dev.bdf} {dev.ids}, {what}"
            return _with_cpu(topo, "x86_64", vendor, family, Fact.inferred(how))
        arch = VENDOR_ARCH.get(dev.vendor)
        if arch is not None:
            how = f"{dev.bdf} {dev.ids}, {arch[1]}: not x86, so cpu_supports_p2pdma() is false"
            return _with_cpu(topo, arch[0], f"({arch[0]})", 0, Fact.inferred(how))
    amd = next((d for d in on_root if d.vendor == 0x1022), None)
    if amd is not None:
        why = (
            f"{amd.bdf} {amd.ids} is an AMD root-bus function, so the CPU is AMD, but this"
            " ID does not tell whether it is Zen (family 0x17 or later): AuthenticAMD family"
            " 0x17 assumed"
        )
        return _with_cpu(topo, "x86_64", "AuthenticAMD", 0x17, Fact.assumed(why))
    return topo


def _with_cpu(topo: Topology, arch: str, vendor: str, family: int, fact: Fact) -> Topology:
    plat = topo.platform
    changed: Platform = plat.replace(arch=arch, cpu_vendor=vendor, cpu_family=family)
    return topo.with_platform(
        arch=changed.arch,
        cpu_vendor=changed.cpu_vendor,
        cpu_family=changed.cpu_family,
        facts=plat.facts.with_fact("cpu", fact),
    )


# -- host-bridge functions an exporter dropped --------------------------------------------


def _infer_host_bridge_functions(topo: Topology) -> Topology:
    """Add a root bus's devfn 00.0 function that the exporter dropped, when root ports tell.

    Only for root buses marked as possibly incomplete (``root_functions``
    assumed) that show no function at devfn 00.0; the added function's IDs
    and its presence are inferred, and the host bridge then says so.
    """
    table = root_ports()
    added: list[PciDevice] = []
    facts: dict[RootBus, Fact] = {}
    for hb in topo.host_bridges:
        if not hb.root_functions.is_assumed:
            continue
        on_bus = [topo[b] for b in topo.root_bus_devices(hb.root)]
        if any(d.bdf.devfn == 0 for d in on_bus):
            continue
        for port in on_bus:
            row = table.get((port.vendor, port.device))
            if row is None or row.host_bridge_device is None or port.fact("ids").is_assumed:
                continue
            if not row.every_root_bus and (hb.root.domain, hb.root.bus) != (0, 0):
                continue
            bdf = BDF(hb.root.domain, hb.root.bus, 0, 0)
            how = (
                f"Root Port {port.bdf} {port.ids} ({row.platform}), whose root bus starts"
                f" with {port.vendor:04x}:{row.host_bridge_device:04x} at devfn 00.0"
            )
            added.append(
                PciDevice(
                    bdf,
                    port.vendor,
                    row.host_bridge_device,
                    class_code=0x060000,
                    header_type=0,
                    numa_node=port.numa_node,
                    label=None,
                    notes=("not in the dump (its exporter leaves out host-bridge functions)",),
                    placeholder=True,
                )
                .with_fact("ids", Fact.inferred(how))
                .with_fact("class_code", Fact.inferred(how))
                .with_fact("parent", Fact.inferred(f"{how}; the exporter leaves it out"))
                .with_fact("acs", Fact.assumed("not in the dump; no ACS redirect assumed"))
                .replace(acs=Acs.unknown())
            )
            facts[hb.root] = Fact.inferred(how)
            break
    if not added:
        return topo
    bridges = [
        hb if hb.root not in facts else replace(hb, root_functions=facts[hb.root])
        for hb in topo.host_bridges
    ]
    return topo.with_devices([*topo.devices, *added], bridges)
