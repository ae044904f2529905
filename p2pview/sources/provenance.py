"""Readers' shared steps for provenance: say why a fact is missing, and what an exporter drops.

Each reader knows which facts its format never carries (``lspci -tv`` has no
ACS, hwloc keeps no extended config space, NCCL records no host bridges).
These helpers write that knowledge into the topology's facts, so that an
unknown is never read as a fact about the machine.
"""

from __future__ import annotations

from p2pview.model import (
    BDF,
    Acs,
    AcsPresence,
    DeviceFacts,
    Fact,
    HostBridge,
    PciDevice,
    PcieType,
    Topology,
)


def with_acs_reason(topo: Topology, why: str) -> Topology:
    """Every function whose ACS is unknown says ``why`` (e.g. "lspci -tv prints no capabilities").

    A reason a reader already gave (per function) is kept.
    """
    changed = False
    devices = []
    for dev in topo.devices:
        if dev.acs.presence is AcsPresence.UNKNOWN and not dev.facts.acs.how:
            dev = dev.with_fact("acs", Fact.assumed(f"{why}; no ACS redirect assumed"))
            changed = True
        devices.append(dev)
    return topo.with_devices(devices) if changed else topo


def with_root_functions(topo: Topology, fact: Fact) -> Topology:
    """Every host bridge's ``root_functions`` set to ``fact`` (an exporter's known drops)."""
    bridges = [
        HostBridge(hb.root, hb.mem_offset, hb.numa_node, hb.label, fact) for hb in topo.host_bridges
    ]
    return topo.with_devices(host_bridges=bridges)


#: Port types that are never on a root bus (the PCIe spec puts Root Complex
#: Integrated Endpoints and Root Ports there; these sit below a port).
_NEVER_ON_A_ROOT_BUS = frozenset(
    {PcieType.ENDPOINT, PcieType.LEG_END, PcieType.UPSTREAM, PcieType.DOWNSTREAM}
)


def place_orphan_buses(topo: Topology, what: str) -> Topology:
    """Put a placeholder bridge above each bus that cannot be a root bus.

    A dump of a few functions (``lspci -vvv -s 01:00.0``) leaves out the
    bridges above them; taken at face value, each bus would become a root bus
    of its own and every pair would cross host bridges. A bus whose functions
    include an Endpoint or a switch port (port types read from the
    capability) is not a root bus: a bridge the dump does not show leads to
    it. Functions on one such bus share that bridge (the kernel's
    ``pci_upstream_bridge()``), so their pairs can still be decided; what is
    above the placeholder is unknown (its parent is assumed), so pairs that
    would meet only there are undetermined.
    """
    orphans = sorted(
        hb.root
        for hb in topo.host_bridges
        if any(
            topo[b].pcie_type in _NEVER_ON_A_ROOT_BUS and topo[b].fact("pcie_type").is_read
            for b in topo.children(hb.root)
        )
    )
    if not orphans:
        return topo
    used = {(d.bdf.domain, d.bdf.bus) for d in topo.devices}
    devices = {d.bdf: d for d in topo.devices}
    placeholders: list[PciDevice] = []
    for bus in orphans:
        free = next((n for n in range(0xFF, 0, -1) if (bus.domain, n) not in used), None)
        if free is None:
            continue
        used.add((bus.domain, free))
        bridge = BDF(bus.domain, free, 0, 0)
        unknown_above = Fact.assumed(
            f"{what} shows no bridge leading to bus {bus.bus:02x}, so what is above it is unknown"
        )
        placeholders.append(
            PciDevice(
                bridge,
                0xFFFF,
                0xFFFF,
                class_code=0x060400,
                header_type=1,
                acs=Acs.unknown(),
                label=f"(not in the dump: the bridge to bus {bus.bus:02x})",
                notes=(
                    f"the bridge that leads to bus {bus.bus:02x} is not in {what}; the"
                    " address is a placeholder",
                ),
                facts=DeviceFacts(
                    ids=Fact.assumed(f"not in {what}"),
                    class_code=Fact.inferred(f"functions on bus {bus.bus:02x} below it"),
                    parent=unknown_above,
                    acs=Fact.assumed(f"not in {what}"),
                ),
            )
        )
        shared = Fact.inferred(
            f"bus {bus.bus:02x}: a bridge that {what} does not show leads to it (functions on"
            " one bus share their upstream bridge)"
        )
        for b in topo.children(bus):
            devices[b] = devices[b].replace(parent=bridge).with_fact("parent", shared)
    bridges = [
        HostBridge(
            BDF(p.bdf.domain, p.bdf.bus, 0, 0).root_bus,
            root_functions=Fact.assumed(f"not in {what}"),
        )
        for p in placeholders
    ]
    kept = [hb for hb in topo.host_bridges if hb.root not in orphans]
    return topo.with_devices([*devices.values(), *placeholders], [*kept, *bridges])
