"""Readers' shared steps for provenance: say why a fact is missing, and what an exporter drops.

Each reader knows which facts its format never carries (``lspci -tv`` has no
ACS, hwloc keeps no extended config space, NCCL records no host bridges).
These helpers write that knowledge into the topology's facts, so that an
unknown is never read as a fact about the machine.
"""

from __future__ import annotations

from collections.abc import Mapping

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


def placeholder_bridge(
    bdf: BDF,
    *,
    label: str,
    note: str,
    facts: DeviceFacts,
    parent: BDF | None = None,
    numa_node: int | None = None,
    pcie_type: PcieType | None = None,
) -> PciDevice:
    """A bridge the dump leaves out but the tree needs, at a made-up address.

    Its IDs are unknown (``ffff:ffff``, shown as "IDs unknown"), its class a
    PCI-to-PCI bridge, its ACS unknown; ``placeholder`` marks it so that no face
    shows the address as read. ``facts`` says what each value rests on.
    """
    return PciDevice(
        bdf,
        0xFFFF,
        0xFFFF,
        class_code=0x060400,
        header_type=1,
        pcie_type=pcie_type,
        acs=Acs.unknown(),
        parent=parent,
        numa_node=numa_node,
        label=label,
        notes=(note,),
        placeholder=True,
        facts=facts,
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
            placeholder_bridge(
                bridge,
                label=f"(not in the dump: the bridge to bus {bus.bus:02x})",
                note=f"the bridge that leads to bus {bus.bus:02x} is not in {what}; the"
                " address is a placeholder",
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


def restore_hidden_bridges(topo: Topology, secondary: Mapping[BDF, int], what: str) -> Topology:
    """Put back a bridge the dump hides between a bridge and a function below it.

    A function drawn directly below bridge P but on a bus other than P's
    secondary bus cannot hang on P: the kernel's ``pci_upstream_bridge()`` of a
    function on bus B is the bridge whose secondary bus is B. lstopo hides
    such bridges (a virtual switch's downstream port, say). One placeholder
    bridge on P's secondary bus leads to each such bus; the links are marked
    inferred (more than one bridge could be hidden).
    """
    by_bus: dict[tuple[BDF, int], list[BDF]] = {}
    for dev in topo.devices:
        parent = dev.parent
        if parent is None or parent not in secondary or dev.physfn is not None:
            continue
        if dev.bdf.bus != secondary[parent]:
            by_bus.setdefault((parent, dev.bdf.bus), []).append(dev.bdf)
    if not by_bus:
        return topo
    devices = {d.bdf: d for d in topo.devices}
    taken = set(devices)
    for (parent, bus), kids in sorted(by_bus.items()):
        sec = secondary[parent]
        slot = next((s for s in range(32) if BDF(parent.domain, sec, s, 0) not in taken), None)
        if slot is None:
            continue
        bridge = BDF(parent.domain, sec, slot, 0)
        taken.add(bridge)
        how = (
            f"{parent} leads to bus {sec:02x}, yet {what} draws functions of bus {bus:02x}"
            " below it: a bridge it does not show sits between"
        )
        devices[bridge] = placeholder_bridge(
            bridge,
            parent=parent,
            numa_node=devices[kids[0]].numa_node,
            label=f"(not in the dump: the bridge to bus {bus:02x})",
            note=f"hidden by {what}; the address is a placeholder",
            facts=DeviceFacts(
                ids=Fact.assumed(f"hidden by {what}"),
                class_code=Fact.inferred(how),
                parent=Fact.inferred(how),
                acs=Fact.assumed(f"hidden by {what}"),
            ),
        )
        for kid in kids:
            devices[kid] = (
                devices[kid].replace(parent=bridge).with_fact("parent", Fact.inferred(how))
            )
    return topo.with_devices(devices.values())
