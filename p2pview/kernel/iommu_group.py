"""IOMMU groups as ``pci_device_group()`` forms them, and what an edit changes in them.

The IOMMU drivers for PCI (intel-iommu, amd-iommu, arm-smmu) ask
``pci_device_group()`` (drivers/iommu/iommu.c) for each function's group when
it is added: a function shares its group with the nearest bridge that DMA
aliases it (a PCIe-to-PCI bridge takes over the requester ID), else with its
upstream bridge unless everything from that bridge up has ACS SV, RR, CR and UF
(``REQ_ACS_FLAGS``, ``pci_acs_path_enabled()``), else with the other functions
of its slot when neither it nor they are isolated (``pci_acs_enabled()``,
drivers/pci/pci.c, which asks the device-specific quirks of
:mod:`p2pview.kernel.acs_quirks` first). So ACS edits, ``pci=disable_acs_redir=``
and ``pci=config_acs=`` (both applied before the groups are made) and turning
the IOMMU on change the groups, and the kernel's documentation of
``disable_acs_redir`` warns of exactly that.

Read in Linux 6.12.117 drivers/iommu/iommu.c (``pci_device_group()``,
``get_pci_alias_group()``, ``get_pci_function_alias_group()``,
``get_pci_alias_or_group()``), drivers/pci/pci.c (``pci_acs_enabled()``,
``pci_acs_flags_enabled()``, ``pci_acs_path_enabled()``) and drivers/pci/search.c
(``pci_for_each_dma_alias()``) [read]; the same functions are unchanged in
6.1.176, 7.2.13 and 7.3-rc7 [read: compared]. The kernel numbers groups in the
order functions are added, which p2pview does not predict: groups here are sets
of functions. Whether two functions share a group does not depend on that order
[inferred: each function joins the group of a function added before it, its
upstream bridge or alias bridge, or a sibling function that answers alike].
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import networkx as nx

from p2pview.kernel.acs_quirks import REQ_ACS_FLAGS, dev_specific_acs_enabled, dma_alias_quirk
from p2pview.kernel.decision import KernelState
from p2pview.model import BDF, AcsBits, AcsPresence, IommuMode, PciDevice, PcieType, Topology

_EC = int(AcsBits.EC)
_BITS = tuple((int(b), b.name or "") for b in AcsBits)


@dataclass(frozen=True, slots=True)
class AcsAnswer:
    """``pci_acs_enabled(dev, REQ_ACS_FLAGS)``: ``enabled`` ``None`` when not known, ``why``."""

    enabled: bool | None
    why: str


def pci_acs_enabled(state: KernelState, bdf: BDF, flags: int = REQ_ACS_FLAGS) -> AcsAnswer:
    """Whether ``bdf`` is isolated for ``flags``, as ``pci_acs_enabled()`` answers.

    The ACS Control register is the one after boot (the IOMMU driver's default
    enabling and the command-line parameters applied), as ``state`` holds it.
    """
    dev = state.topology[bdf]
    quirk = dev_specific_acs_enabled(dev, flags)
    if quirk is not None:
        return AcsAnswer(quirk.enabled, quirk.why)
    kind = dev.pcie_type
    if kind is None:
        if dev.fact("pcie_type").is_assumed or dev.placeholder:
            return AcsAnswer(None, "whether it is PCI Express is not known")
        return AcsAnswer(False, "conventional PCI: never isolated")
    if kind in (PcieType.PCIE_BRIDGE, PcieType.PCI_BRIDGE, PcieType.RC_EC):
        return AcsAnswer(False, f"{kind.kernel_name}: ACS never applies")
    if kind in (PcieType.DOWNSTREAM, PcieType.ROOT_PORT):
        return _flags_enabled(state, dev, flags)
    mf_types = (PcieType.ENDPOINT, PcieType.UPSTREAM, PcieType.LEG_END, PcieType.RC_END)
    if kind in mf_types and _multifunction(dev):
        return _flags_enabled(state, dev, flags)
    return AcsAnswer(True, "a single function: isolated")


def _multifunction(dev: PciDevice) -> bool:
    # pci_iov_add_virtfn() clears multifunction on a VF.
    return dev.multifunction and dev.physfn is None


def _flags_enabled(state: KernelState, dev: PciDevice, flags: int) -> AcsAnswer:
    """``pci_acs_flags_enabled()``: flags the capability lacks count as hard-wired on."""
    acs = dev.acs
    if acs.presence is AcsPresence.ABSENT:
        return AcsAnswer(False, "no ACS capability")  # pci_acs_flags_enabled(): !pdev->acs_cap
    effect = state.acs.get(dev.bdf)
    ctrl = None if effect is None else effect.ctrl
    if acs.presence is AcsPresence.UNKNOWN or acs.cap is None or ctrl is None:
        return AcsAnswer(None, "its ACS capability could not be read")
    wanted = flags & (acs.cap | _EC)
    missing = wanted & ~ctrl
    if missing:
        names = "|".join(name for bit, name in _BITS if bit & missing)
        return AcsAnswer(False, f"ACS {names} off (ctrl {ctrl:#06x})")
    return AcsAnswer(True, f"ACS SV|RR|CR|UF on where implemented (ctrl {ctrl:#06x})")


@dataclass(frozen=True, slots=True)
class IommuGroups:
    """The functions that share an IOMMU group, as ``pci_device_group()`` would make them.

    Attributes:
        groups: each group's functions in BDF order; groups ordered by their
            first function.
        unknown: functions whose group p2pview cannot tell, with the reason
            (every function of such a group is listed).
        reasons: for each function that joined another function's group, the
            kernel's rule and what decided it, for the faces.
    """

    groups: tuple[tuple[BDF, ...], ...]
    unknown: Mapping[BDF, str] = field(default_factory=dict)
    reasons: Mapping[BDF, str] = field(default_factory=dict)
    _of: dict[BDF, tuple[BDF, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Each function's group, looked up once per function rather than by a
        # scan of every group (check_groups() asks for each read group).
        of = {bdf: group for group in self.groups for bdf in group}
        object.__setattr__(self, "_of", of)

    def group_of(self, bdf: BDF) -> tuple[BDF, ...] | None:
        """The group ``bdf`` is in (``None`` when not known or no groups)."""
        return self._of.get(bdf)


def iommu_groups_exist(topo: Topology) -> bool:
    """Whether the kernel makes IOMMU groups: an IOMMU translates or passes through."""
    return topo.platform.iommu in (IommuMode.TRANSLATED, IommuMode.PASSTHROUGH)


class _Grouper:
    def __init__(self, state: KernelState) -> None:
        self.state = state
        self.topo = state.topology
        self.answers: dict[BDF, AcsAnswer] = {}
        self.paths: dict[BDF, AcsAnswer] = {}

    def acs(self, bdf: BDF) -> AcsAnswer:
        answer = self.answers.get(bdf)
        if answer is None:
            answer = self.answers[bdf] = pci_acs_enabled(self.state, bdf)
        return answer

    def path_enabled(self, bdf: BDF) -> AcsAnswer:
        """``pci_acs_path_enabled(bdf, NULL, REQ_ACS_FLAGS)``: ``bdf`` and every bridge above."""
        answer = self.paths.get(bdf)
        if answer is not None:
            return answer
        own = self.acs(bdf)
        if own.enabled is not True:
            answer = AcsAnswer(own.enabled, f"{bdf.short()} has {own.why}")
        else:
            parent = self.topo.upstream_bridge(bdf)
            answer = own if parent is None else self.path_enabled(parent)
        self.paths[bdf] = answer
        return answer

    def alias_bridge(self, dev: PciDevice) -> tuple[BDF | None, str | None]:
        """The nearest bridge ``pci_for_each_dma_alias()`` reports above ``dev``.

        Root, upstream and downstream ports pass requester IDs through; a
        PCIe-to-PCI bridge, a PCI-to-PCIe bridge or a conventional bridge takes
        them over. The second value says why it is not known, when it is not.
        """
        for up in self.topo.upstream_chain(dev.bdf)[1:]:
            bridge = self.topo[up]
            kind = bridge.pcie_type
            if kind in (PcieType.ROOT_PORT, PcieType.UPSTREAM, PcieType.DOWNSTREAM):
                continue
            if kind is None and (bridge.fact("pcie_type").is_assumed or bridge.placeholder):
                return None, f"{up.short()}: whether it is PCI Express is not known"
            return up, None
        return None, None

    def edges(self, bdf: BDF) -> tuple[list[tuple[BDF, str]], str | None]:
        """The functions ``bdf`` shares a group with by ``pci_device_group()``'s rules."""
        dev = self.topo[bdf]
        alias, unknown = self.alias_bridge(dev)
        if unknown is not None:
            return [], unknown
        if alias is not None:
            return [(alias, f"joins {alias.short()}: that bridge is its DMA alias")], None
        parent = self.topo.upstream_bridge(bdf)
        if parent is not None:
            path = self.path_enabled(parent)
            if path.enabled is None:
                return [], path.why
            if not path.enabled:
                return [(parent, f"joins {parent.short()}: {path.why}")], None
        quirk = dma_alias_quirk(dev)
        if quirk is not None:
            return [], f"{quirk}() in drivers/pci/quirks.c gives it DMA aliases"
        if not _multifunction(dev):
            return [], None
        own = self.acs(bdf)
        if own.enabled is None:
            return [], own.why
        if own.enabled:
            return [], None
        out: list[tuple[BDF, str]] = []
        for other in self._slot_siblings(dev):
            theirs = self.acs(other)
            if theirs.enabled is None:
                return [], f"{other.short()}: {theirs.why}"
            if not theirs.enabled:
                out.append((other, f"joins {other.short()}: functions of one slot, {own.why}"))
        return out, None

    def _slot_siblings(self, dev: PciDevice) -> Iterable[BDF]:
        parent = dev.parent
        siblings = (
            self.topo.children(parent)
            if parent is not None
            else self.topo.root_bus_devices(self.topo.root_bus_of(dev.bdf))
        )
        mine = dev.bdf
        for o in siblings:
            same_slot = (o.domain, o.bus, o.dev) == (mine.domain, mine.bus, mine.dev)
            if o != mine and same_slot and self.topo[o].physfn is None:
                yield o


def pci_device_groups(state: KernelState) -> IommuGroups:
    """Every function's IOMMU group as ``pci_device_group()`` would form it.

    Empty when the platform has no IOMMU (the kernel makes no groups). A group
    with a function whose rule p2pview cannot decide is reported as unknown
    for all its functions.
    """
    topo = state.topology
    if not iommu_groups_exist(topo):
        return IommuGroups(groups=())
    grouper = _Grouper(state)
    graph: nx.Graph[BDF] = nx.Graph()
    graph.add_nodes_from(topo.bdfs)
    causes: dict[BDF, str] = {}
    reasons: dict[BDF, str] = {}
    for bdf in topo.bdfs:
        edges, unknown = grouper.edges(bdf)
        if unknown is not None:
            causes[bdf] = unknown
        for other, why in edges:
            graph.add_edge(bdf, other)
            reasons.setdefault(bdf, why)
    groups: list[tuple[BDF, ...]] = []
    unknown_of: dict[BDF, str] = {}
    for component in nx.connected_components(graph):
        members = tuple(sorted(component))
        cause = next((f"{b.short()}: {causes[b]}" for b in members if b in causes), None)
        if cause is None:
            groups.append(members)
        else:
            unknown_of.update(dict.fromkeys(members, cause))
    groups.sort()
    return IommuGroups(groups=tuple(groups), unknown=unknown_of, reasons=reasons)


def read_groups(topo: Topology) -> dict[int, tuple[BDF, ...]]:
    """The groups the source read (``iommu_group`` links), by number."""
    out: dict[int, list[BDF]] = {}
    for dev in topo:
        if dev.iommu_group is not None:
            out.setdefault(dev.iommu_group, []).append(dev.bdf)
    return {n: tuple(sorted(m)) for n, m in sorted(out.items())}


@dataclass(frozen=True, slots=True)
class GroupCheck:
    """How the groups p2pview forms compare with the groups the source read.

    Attributes:
        checked: functions with a read group and a computed one.
        differing: read groups whose functions p2pview groups otherwise, as
            (read group number, its functions, p2pview's group of its first).
    """

    checked: int
    differing: tuple[tuple[int, tuple[BDF, ...], tuple[BDF, ...] | None], ...]

    @property
    def agrees(self) -> bool:
        """Every read group is a computed group."""
        return not self.differing


def check_groups(topo: Topology, groups: IommuGroups) -> GroupCheck:
    """Compare ``groups`` with the ``iommu_group`` numbers ``topo`` read."""
    differing = []
    checked = 0
    for number, members in read_groups(topo).items():
        known = tuple(b for b in members if b not in groups.unknown)
        if not known:
            continue
        checked += len(known)
        mine = groups.group_of(known[0])
        # Functions without a read group (a placeholder, a bridge the dump left
        # out) cannot be compared.
        mine_read = mine and tuple(b for b in mine if topo[b].iommu_group is not None)
        if mine_read != known:
            differing.append((number, members, mine))
    return GroupCheck(checked=checked, differing=tuple(differing))


@dataclass(frozen=True, slots=True)
class GroupChange:
    """One group after an edit that was not a group before.

    Attributes:
        after: the group's functions.
        before: the groups (before the edit) its functions came from.
    """

    after: tuple[BDF, ...]
    before: tuple[tuple[BDF, ...], ...]

    @property
    def joined(self) -> bool:
        """Functions of several groups now share one."""
        return len(self.before) > 1


def group_changes(before: IommuGroups, after: IommuGroups) -> list[GroupChange]:
    """The groups ``after`` has that ``before`` did not, with where their functions were.

    Functions whose group is unknown on either side are left out.
    """
    known_before = set(before.groups)
    out = []
    for group in after.groups:
        old = [before.group_of(b) for b in group]
        if group in known_before or None in old:
            continue
        sources = tuple(sorted({g for g in old if g is not None}))
        out.append(GroupChange(after=group, before=sources))
    return out


@dataclass(frozen=True, slots=True)
class GroupReport:
    """What an edit did to the IOMMU groups.

    Attributes:
        before: the groups p2pview forms for the source as loaded.
        after: the groups it forms after the edits.
        check: ``before`` against the groups the source read; when they differ,
            ``after`` is not a prediction worth showing.
        changes: the groups ``after`` has that ``before`` did not.
    """

    before: IommuGroups
    after: IommuGroups
    check: GroupCheck
    changes: tuple[GroupChange, ...]


def group_report(original: KernelState, edited: KernelState, before: IommuGroups) -> GroupReport:
    """Compare the groups of ``edited`` with ``before`` (the groups of ``original``)."""
    after = pci_device_groups(edited)
    check = check_groups(original.topology, before)
    return GroupReport(before, after, check, tuple(group_changes(before, after)))
