"""NVIDIA's ``nvidia-smi topo -m`` labels, derived from a PCIe tree.

``nvidia-smi topo -m`` labels each pair of GPUs and NICs with the "closest
common ancestor" level NVML reports (``nvmlDeviceGetTopologyCommonAncestor``).
Its legend (current form, drivers of 2017 and later)::

    SYS  = Connection traversing PCIe as well as the SMP interconnect between
           NUMA nodes (e.g., QPI/UPI)
    NODE = Connection traversing PCIe as well as the interconnect between PCIe
           Host Bridges within a NUMA node
    PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
    PXB  = Connection traversing multiple PCIe bridges (without traversing the
           PCIe Host Bridge)
    PIX  = Connection traversing at most a single PCIe bridge
    NV#  = Connection traversing a bonded set of # NVLinks

The old form (2016 drivers, K80 era) has ``SOC`` ("Path traverses a
socket-level link (e.g. QPI)") where the current one has ``SYS``, calls PIX
"a PCIe internal switch" and PXB "multiple PCIe internal switches", and has
no ``NODE``. NVML's levels behind the labels are SINGLE (one PCIe switch),
MULTIPLE (no host bridge crossed), HOSTBRIDGE (same host bridge), NODE (same
NUMA node, possibly several host bridges; called CPU in old NVML) and SYSTEM.

How p2pview derives the label of a pair ``(a, b)`` from the two upstream
chains (``Topology.upstream_chain``: the function, its upstream bridge, ...,
up to the function on the root bus; the host bridge is not in the chain):

1. **Common upstream function.** Let ``c`` be the first function of ``a``'s
   chain that is also in ``b``'s chain, at index ``i`` in ``a``'s chain and
   ``j`` in ``b``'s (the kernel's ``dist_a``/``dist_b``). The bridges the
   path crosses are ``chain(a)[1..i]`` and ``chain(b)[1..j-1]``.

   * **PIX** when every one of them belongs to one bridge or one switch:
     either ``c`` is the only one (``i <= 1`` and ``j <= 1``: both sit on
     ``c``'s secondary bus, e.g. two functions of one card under a Root Port
     or a downstream port), or ``c`` is a switch upstream port and
     ``i <= 2``, ``j <= 2`` (each side crosses at most one downstream port of
     that same switch). A switch's upstream and downstream ports are several
     PCI bridges in sysfs but one "PCIe switch" to NVIDIA: two GPUs on one
     K80, or a GPU and a NIC on one HGX level-2 switch, are PIX. When the
     port type of ``c`` was not read, a bridge that is not on a root bus is
     taken for a switch upstream port (the rule says so).
   * **PXB** otherwise: more than one switch (nested switches, as between
     the level-2 switches of an HGX board under one level-1 switch), or a
     Root Port plus a bridge below it. No host bridge is crossed.

   NCCL makes the same split: its PCI nodes are switches (``src/graph/xml.cc``
   finds a device's parent by rewinding two sysfs levels, "follow the upper
   PCI switch, or stop if we reach a CPU root complex"), and
   ``src/graph/paths.cc`` makes a path through one PCI node ``PATH_PIX``, a
   PCI-PCI link ``PATH_PXB`` and a link to a CPU node ``PATH_PHB``. NCCL's
   CPU nodes are NUMA nodes and it has no NODE: what nvidia-smi calls NODE,
   NCCL calls PHB.

2. **No common upstream function** (the kernel's "no common upstream
   bridge" case; the chains end on two different Root Ports or root-bus
   functions):

   * **PHB** when both chains end on the same root bus, i.e. the same host
     bridge (``pci_find_host_bridge()``; ``/sys/devices/pciDDDD:BB``). On
     Haswell-era Xeons every Root Port of a socket is on one root bus, so
     GPUs on two Root Ports of a socket are PHB.
   * **NODE** when the host bridges differ and both functions are in the
     same NUMA node. On Skylake-SP and later Xeons, and on AMD EPYC, most
     Root Ports have a root bus (host bridge) of their own, so most
     cross-port pairs are NODE there.
   * **SYS** (old legend: **SOC**) when the NUMA nodes differ.
   * When a NUMA node is unknown (sysfs ``numa_node`` -1, or not in the
     topology) NODE and SYS are both possible. nvidia-smi itself prints SYS
     for a device it cannot place: the NIC of the 8x L40S matrix in
     ``tests/data/nvidia-smi`` shows no NUMA affinity and SYS to every GPU.
     p2pview reports SYS with NODE as the other candidate.

   A function's NUMA node is its own ``numa_node``, else the nearest one up
   its chain, else its host bridge's.

3. **NV#** (NVLink) cannot be derived: NVLink is not PCIe and leaves no
   trace in the PCIe tree. nvidia-smi prints NV# in place of the PCIe label
   when two GPUs share NVLinks; p2pview derives the PCIe label of such a
   pair and says that it cannot see NVLink.

The old legend has no NODE. What it printed for two host bridges of one
socket is not known here (NVML's level existed as "CPU"); p2pview maps
NODE to PHB for the old legend and marks the mapping as an assumption.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from p2pview.model.bdf import BDF, RootBus
from p2pview.model.device import PcieType
from p2pview.model.topology import Topology

#: What p2pview says about NV# labels.
NVLINK_NOT_DERIVABLE = (
    "NVLink is not PCIe and leaves no trace in the PCIe tree: p2pview cannot derive NV#"
)

_NVLINK_RE = re.compile(r"^NV[0-9]{1,3}$")


class NvLevel(StrEnum):
    """A PCIe label of ``nvidia-smi topo -m``, nearest first (current legend names)."""

    PIX = "PIX"
    PXB = "PXB"
    PHB = "PHB"
    NODE = "NODE"
    SYS = "SYS"

    @property
    def rank(self) -> int:
        """0 for PIX up to 4 for SYS."""
        return list(NvLevel).index(self)

    @property
    def old_legend(self) -> str:
        """The label the old (SOC) legend prints: SYS is SOC; NODE is assumed PHB."""
        return {NvLevel.SYS: "SOC", NvLevel.NODE: "PHB"}.get(self, self.value)

    @property
    def meaning(self) -> str:
        """The current legend's text for this label."""
        return _MEANINGS[self]


_MEANINGS = {
    NvLevel.PIX: "at most a single PCIe bridge (one switch)",
    NvLevel.PXB: "multiple PCIe bridges, no host bridge",
    NvLevel.PHB: "through a PCIe host bridge",
    NvLevel.NODE: "between host bridges within a NUMA node",
    NvLevel.SYS: "across NUMA nodes (SMP interconnect)",
}


def is_nvlink(label: str) -> bool:
    """``NV1`` ... ``NV18``: a bonded set of NVLinks."""
    return _NVLINK_RE.match(label) is not None


def normalize_label(label: str) -> NvLevel | None:
    """The PCIe level a printed label stands for; ``SOC`` is ``SYS``.

    ``None`` for ``X``, ``NV#``, ``N/A`` and anything unknown.
    """
    text = label.strip().upper()
    if text == "SOC":
        return NvLevel.SYS
    try:
        return NvLevel(text)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class DerivedLabel:
    """The label p2pview derives for a pair, and how.

    ``candidates`` holds more than ``level`` only when a NUMA node is
    unknown (NODE or SYS). ``bridges`` are the PCI bridge functions the path
    crosses, from ``a`` up and down to ``b``; ``common`` is the common
    upstream function (``None`` when the path goes through host bridges).
    """

    level: NvLevel
    candidates: tuple[NvLevel, ...]
    common: BDF | None
    bridges: tuple[BDF, ...]
    host_bridges: tuple[RootBus, ...]
    numa: tuple[int | None, int | None]
    rule: str

    @property
    def certain(self) -> bool:
        """One candidate only."""
        return len(self.candidates) == 1

    @property
    def text(self) -> str:
        """``PIX``, or ``SYS|NODE`` when uncertain (the preferred level first)."""
        return "|".join(c.value for c in self.candidates)

    def matches(self, level: NvLevel) -> bool:
        """Whether ``level`` is one of the candidates."""
        return level in self.candidates


def numa_node_of(topo: Topology, bdf: BDF) -> int | None:
    """The function's NUMA node: its own, else the nearest up its chain, else its host bridge's."""
    for node in topo.upstream_chain(bdf):
        numa = topo[node].numa_node
        if numa is not None and numa >= 0:
            return numa
    numa = topo.host_bridge(bdf).numa_node
    return numa if numa is not None and numa >= 0 else None


def _switch_upstream(topo: Topology, bdf: BDF) -> tuple[bool, str]:
    """Whether ``bdf`` is a switch upstream port, and a note when that was inferred."""
    dev = topo[bdf]
    if dev.pcie_type is not None:
        if dev.pcie_type is PcieType.UPSTREAM and dev.pcie_type_inferred:
            return True, f" ({bdf}'s port type inferred from its position)"
        return dev.pcie_type is PcieType.UPSTREAM, ""
    if dev.parent is not None and dev.is_bridge:
        return True, f" ({bdf}'s port type was not read: taken as a switch upstream port)"
    return False, ""


def derive_label(topo: Topology, a: BDF, b: BDF) -> DerivedLabel:
    """NVIDIA's PCIe label for the pair ``(a, b)``, by the rules of this module's docstring.

    Raises:
        ValueError: ``a`` and ``b`` are the same function (nvidia-smi prints ``X``).
    """
    if a == b:
        raise ValueError(f"{a}: a function is 'X' to itself, not a pair")
    chain_a = topo.upstream_chain(a)
    chain_b = topo.upstream_chain(b)
    index_b = {bdf: k for k, bdf in enumerate(chain_b)}
    numa = (numa_node_of(topo, a), numa_node_of(topo, b))
    for i, node in enumerate(chain_a):
        if node not in index_b:
            continue
        j = index_b[node]
        ends = {a, b}
        bridges = tuple(x for x in (*chain_a[1 : i + 1], *reversed(chain_b[1:j])) if x not in ends)
        switch, inferred = _switch_upstream(topo, node)
        if len(bridges) <= 1:
            rule = f"both on the secondary bus of {node}: one PCIe bridge"
            return DerivedLabel(NvLevel.PIX, (NvLevel.PIX,), node, bridges, (), numa, rule)
        if switch and i <= 2 and j <= 2:
            rule = (
                f"both below downstream ports of the switch whose upstream port is {node}:"
                f" one PCIe switch{inferred}"
            )
            return DerivedLabel(NvLevel.PIX, (NvLevel.PIX,), node, bridges, (), numa, rule)
        rule = (
            f"common upstream bridge {node}, {len(bridges)} PCI bridges on the path:"
            " more than one switch or bridge, no host bridge"
        )
        return DerivedLabel(NvLevel.PXB, (NvLevel.PXB,), node, bridges, (), numa, rule)

    bridges = (*chain_a[1:], *reversed(chain_b[1:]))
    root_a, root_b = topo.root_bus_of(a), topo.root_bus_of(b)
    if root_a == root_b:
        rule = f"no common upstream bridge, both below host bridge {root_a}"
        return DerivedLabel(NvLevel.PHB, (NvLevel.PHB,), None, bridges, (root_a,), numa, rule)
    roots = (root_a, root_b)
    if numa[0] is not None and numa[1] is not None:
        if numa[0] == numa[1]:
            rule = f"host bridges {root_a} and {root_b}, both in NUMA node {numa[0]}"
            return DerivedLabel(NvLevel.NODE, (NvLevel.NODE,), None, bridges, roots, numa, rule)
        rule = f"host bridges {root_a} (NUMA node {numa[0]}) and {root_b} (NUMA node {numa[1]})"
        return DerivedLabel(NvLevel.SYS, (NvLevel.SYS,), None, bridges, roots, numa, rule)
    unknown = [str(x) for x, n in zip((a, b), numa, strict=True) if n is None]
    rule = (
        f"host bridges {root_a} and {root_b}; NUMA node unknown for {' and '.join(unknown)}:"
        " NODE or SYS (nvidia-smi prints SYS for a device it cannot place)"
    )
    return DerivedLabel(NvLevel.SYS, (NvLevel.SYS, NvLevel.NODE), None, bridges, roots, numa, rule)
