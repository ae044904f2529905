"""Readers' shared steps for provenance: say why a fact is missing, and what an exporter drops.

Each reader knows which facts its format never carries (``lspci -tv`` has no
ACS, hwloc keeps no extended config space, NCCL records no host bridges).
These helpers write that knowledge into the topology's facts, so that an
unknown is never read as a fact about the machine.
"""

from __future__ import annotations

from p2pview.model import AcsPresence, Fact, HostBridge, Topology


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
