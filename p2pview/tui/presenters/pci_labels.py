"""The words of a tree row: short BDF, role, name and badges, each tagged with a role.

Plain Python (no Textual, no Rich): a row is a tuple of :data:`Part`, a piece
of text and the name of the style that draws it. :class:`~p2pview.tui.widgets.
pci_tree.PciTree` maps each style name to a component class of its CSS, so the
colours come from the theme and never from here.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from p2pview.kernel import AcsEffect, KernelState
from p2pview.kernel.decision import whitelist_check
from p2pview.model import (
    BDF,
    AcsPresence,
    HostBridge,
    Kind,
    Link,
    PciDevice,
    PcieType,
    RootBus,
    Topology,
    acs_bit_names,
    kind_of,
)
from p2pview.model.units import size_badge
from p2pview.sources.pciids import PciNames, ids_text

#: A piece of a row and the style (a ``pci-tree--<style>`` component class) that draws it.
Part = tuple[str, str]
#: What a tree node stands for: a host bridge or a PCI function.
NodeKey = BDF | RootBus

#: Short PCIe port types for tree rows (the detail pane spells them out).
PORT_ROLES = {
    PcieType.ROOT_PORT: "root port",
    PcieType.UPSTREAM: "switch upstream",
    PcieType.DOWNSTREAM: "switch downstream",
    PcieType.PCI_BRIDGE: "PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "PCI-to-PCIe bridge",
    PcieType.RC_END: "RC endpoint",
    PcieType.RC_EC: "RC event collector",
}
#: Full PCIe port types, as the spec names them.
PORT_NAMES = {
    PcieType.ENDPOINT: "PCI Express Endpoint",
    PcieType.LEG_END: "Legacy PCI Express Endpoint",
    PcieType.ROOT_PORT: "Root Port of PCI Express Root Complex",
    PcieType.UPSTREAM: "Upstream Port of PCI Express Switch",
    PcieType.DOWNSTREAM: "Downstream Port of PCI Express Switch",
    PcieType.PCI_BRIDGE: "PCI Express to PCI/PCI-X Bridge",
    PcieType.PCIE_BRIDGE: "PCI/PCI-X to PCI Express Bridge",
    PcieType.RC_END: "Root Complex Integrated Endpoint",
    PcieType.RC_EC: "Root Complex Event Collector",
}
#: Transfer rate (sysfs ``current_link_speed``, GT/s) -> PCIe generation.
_GENERATIONS = {"2.5": 1, "5.0": 2, "5": 2, "8.0": 3, "8": 3, "16.0": 4, "16": 4,
                "32.0": 5, "32": 5, "64.0": 6, "64": 6, "128.0": 7, "128": 7}  # fmt: skip
_RATE = re.compile(r"^\s*([0-9.]+)\s*GT/s")


def bdf_text(bdf: BDF, short: bool) -> str:
    """``BB:DD.F`` when ``short`` (every function in domain 0), else the full name."""
    return bdf.short() if short else str(bdf)


def all_in_domain_0(topology: Topology) -> bool:
    """Whether short BDFs (without the domain) name every function unambiguously."""
    return topology.short_names


def generation(speed: str | None) -> int | None:
    """The PCIe generation of a sysfs link speed (``16.0 GT/s PCIe`` -> 4)."""
    if not speed:
        return None
    m = _RATE.match(speed)
    return None if m is None else _GENERATIONS.get(m.group(1))


def link_badge(link: Link) -> tuple[str, bool] | None:
    """``Gen4 x16`` and whether the link runs below its maximum speed or width."""
    gen = generation(link.speed)
    if gen is None and link.width is None:
        return None
    words = []
    if gen is not None:
        words.append(f"Gen{gen}")
    elif link.speed:
        words.append(link.speed.split(" PCIe")[0])
    if link.width is not None:
        words.append(f"x{link.width}")
    max_gen = generation(link.max_speed)
    slower = gen is not None and max_gen is not None and gen < max_gen
    narrower = link.width is not None and link.max_width is not None
    narrower = narrower and (link.width or 0) < (link.max_width or 0)
    return " ".join(words), slower or narrower


def link_text(link: Link) -> str | None:
    """The link as sysfs says it: ``16.0 GT/s PCIe x16 (max 16.0 GT/s PCIe x16)``."""
    if link.speed is None and link.width is None:
        return None
    now = " ".join(w for w in (link.speed, None if link.width is None else f"x{link.width}") if w)
    top = " ".join(
        w for w in (link.max_speed, None if link.max_width is None else f"x{link.max_width}") if w
    )
    return f"{now} (max {top})" if top and top != now else now


def role_text(dev: PciDevice, names: PciNames) -> str:
    """What the function is, in a word or two: port type for ports, else its kind."""
    if dev.pcie_type in PORT_ROLES:
        return PORT_ROLES[dev.pcie_type]
    kind = kind_of(dev)
    if kind is Kind.BRIDGE:
        return "bridge"
    if kind is Kind.HOST:
        return "host bridge"
    if kind is Kind.OTHER:
        if dev.fact("class_code").is_assumed:
            return dev.driver or "class unknown"
        name = names.class_name(dev.class_code)
        return name if name is not None else (dev.driver or "function")
    return kind.value


def acs_badge(effect: AcsEffect | None) -> Part | None:
    """``ACS RR CR`` (redirects), ``acs`` (present, no redirect), ``ACS?`` (unknown)."""
    if effect is None:
        return None
    if not effect.known:
        return ("ACS?", "acs-unknown")
    if effect.presence is not AcsPresence.PRESENT:
        return None
    if effect.redirect:
        return ("ACS " + " ".join(acs_bit_names(effect.redirect)), "acs-redirect")
    return ("acs", "acs-off")


@dataclass(frozen=True, slots=True)
class RowContext:
    """What every row needs besides its function: computed once per tree."""

    topology: Topology
    state: KernelState
    names: PciNames
    short_bdfs: bool

    @classmethod
    def of(cls, state: KernelState, names: PciNames) -> RowContext:
        """The context for the topology ``state`` was booted on."""
        return cls(state.topology, state, names, all_in_domain_0(state.topology))


#: Kinds whose role is drawn as a badge (the ones P2P users look for).
_KIND_BADGES = frozenset({Kind.NVME, Kind.GPU, Kind.NIC, Kind.ACCEL, Kind.STORAGE})


def one_line(text: str) -> str:
    """``text`` on one line: a tree row cannot hold newlines or tabs from a label."""
    return " ".join(text.split())


def device_parts(ctx: RowContext, dev: PciDevice) -> tuple[Part, ...]:
    """The row of a function: BDF, role, label, badges, then the pci.ids name."""
    parts: list[Part] = [(bdf_text(dev.bdf, ctx.short_bdfs), "bdf")]
    role = role_text(dev, ctx.names)
    parts.append((role, "kind" if kind_of(dev) in _KIND_BADGES else "role"))
    if dev.pcie_type_inferred and dev.pcie_type in PORT_ROLES:
        parts.append(("(inferred)", "muted"))
    if dev.is_virtfn:
        parts.append(("VF", "role"))
    if dev.label:
        parts.append((one_line(dev.label), "label"))
    acs = acs_badge(ctx.state.acs.get(dev.bdf))
    if acs is not None:
        parts.append(acs)
    if dev.p2pmem is not None:
        size = size_badge(dev.p2pmem.size)
        if dev.p2pmem.published:
            parts.append((f"p2pmem {size}", "p2pmem"))
        else:
            parts.append((f"p2pmem {size} unpublished", "p2pmem-unpublished"))
    if dev.iommu_group is not None:
        parts.append((f"grp {dev.iommu_group}", "group"))
    link = link_badge(dev.link)
    if link is not None:
        text, degraded = link
        parts.append((text + ("↓" if degraded else ""), "link-degraded" if degraded else "link"))
    name = ctx.names.short(dev)
    if dev.fact("ids").is_assumed:
        parts.append((one_line(name or ids_text(dev)), "muted"))
    elif name is not None:
        parts.append((one_line(name), "name"))
    else:
        parts.append((dev.ids, "name"))
    return tuple(parts)


def host_bridge_parts(ctx: RowContext, hb: HostBridge) -> tuple[Part, ...]:
    """The row of a host bridge: its name, the whitelist check, NUMA node and label."""
    parts: list[Part] = [(hb.name, "host"), ("host bridge", "role")]
    lookup = ctx.state.host_bridge_devs.get(hb.root)
    if lookup is not None and lookup.device is not None:
        check = whitelist_check(ctx.state, hb.root, True)
        dev = ctx.topology[lookup.device]
        ids = ids_text(dev) if dev.fact("ids").is_assumed else check.ids or dev.ids
        if dev.fact("ids").is_assumed and not check.passed:
            parts.append((f"whitelist: {ids}", "acs-unknown"))
        elif check.passed:
            parts.append((f"whitelist {ids} ✓", "whitelist-pass"))
        else:
            parts.append((f"whitelist {ids} ✗", "whitelist-fail"))
    elif lookup is not None:
        parts.append(("whitelist: no device", "whitelist-fail"))
    if ctx.state.cpu_supports:
        # cpu_supports_p2pdma() lets THRU_HOST_BRIDGE pass without the whitelist
        parts.append(("CPU ✓", "whitelist-pass"))
    if hb.numa_node is not None:
        parts.append((f"NUMA {hb.numa_node}", "group"))
    if hb.label:
        parts.append((one_line(hb.label), "label"))
    return tuple(parts)


def parts_text(parts: tuple[Part, ...]) -> str:
    """The row as plain text: the parts joined by single spaces."""
    return " ".join(text for text, _ in parts)


def search_text(ctx: RowContext, dev: PciDevice) -> str:
    """Everything a find may match for a function, lower-cased."""
    words = [
        str(dev.bdf),
        ids_text(dev),
        dev.label or "",
        dev.driver or "",
        role_text(dev, ctx.names),
        ctx.names.describe(dev),
        ctx.names.short(dev) or "",
    ]
    if dev.subsystem_vendor is not None and dev.subsystem_device is not None:
        words.append(f"{dev.subsystem_vendor:04x}:{dev.subsystem_device:04x}")
    return "\n".join(words).lower()


def device_rows(ctx: RowContext) -> Mapping[NodeKey, tuple[Part, ...]]:
    """Every row of the tree, keyed by host bridge or BDF."""
    rows: dict[NodeKey, tuple[Part, ...]] = {}
    for hb in ctx.topology.host_bridges:
        rows[hb.root] = host_bridge_parts(ctx, hb)
    for dev in ctx.topology.devices:
        rows[dev.bdf] = device_parts(ctx, dev)
    return rows
