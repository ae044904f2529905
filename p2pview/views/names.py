"""Short names for functions in tables and trees."""

from __future__ import annotations

from p2pview.model import BDF, Kind, PciDevice, PcieType, Topology, kind_of

_PORT_NAMES = {
    PcieType.ROOT_PORT: "Root Port",
    PcieType.UPSTREAM: "Switch Upstream Port",
    PcieType.DOWNSTREAM: "Switch Downstream Port",
    PcieType.PCI_BRIDGE: "PCIe-to-PCI bridge",
    PcieType.PCIE_BRIDGE: "PCI-to-PCIe bridge",
    PcieType.RC_END: "RC integrated endpoint",
    PcieType.RC_EC: "RC event collector",
    PcieType.ENDPOINT: "Endpoint",
    PcieType.LEG_END: "Legacy endpoint",
}


def bdf_text(topo: Topology, bdf: BDF) -> str:
    """``BB:DD.F`` when every function is in domain 0, else the full name."""
    return topo.bdf_name(bdf)


def role(dev: PciDevice) -> str:
    """What the function is: port type for bridges, kind or driver for endpoints."""
    if dev.pcie_type is not None and (dev.is_bridge or dev.pcie_type not in (PcieType.ENDPOINT,)):
        text = _PORT_NAMES[dev.pcie_type]
        return text + (" (inferred)" if dev.pcie_type_inferred else "")
    kind = kind_of(dev)
    if kind is Kind.OTHER and dev.driver:
        return dev.driver
    if kind is Kind.HOST:
        return "host bridge device"
    return kind.value


#: Longest label a table row shows (lspci and hwloc names run to 60 characters).
LABEL_WIDTH = 24


def short_label(dev: PciDevice) -> str:
    """A few words for a table row: the label if any (cut to fit), else the role."""
    if dev.label:
        text = dev.label
        return text if len(text) <= LABEL_WIDTH else text[: LABEL_WIDTH - 1] + "…"
    kind = kind_of(dev)
    if kind in (Kind.BRIDGE, Kind.HOST, Kind.OTHER):
        return role(dev)
    return kind.value
