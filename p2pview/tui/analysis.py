"""What the TUI explores: immutable analyses, and what-if edits as functions between them.

An :class:`Analysis` is one topology judged by one kernel: the source as read,
the :class:`~p2pview.session.EngineConfig` it was booted with, the engine's
session and every verdict. It never changes. A what-if edit (:data:`Edit`) is
a pure function from one analysis to the next, so a thread worker can run it
while the screens keep showing the last one, and the UI thread only swaps a
reference. :class:`WhatIf` holds the analysis as loaded, the current one and
the way back (undo is a list of analyses).

Plain Python (no Textual): the app keeps a :class:`WhatIf`, a
:class:`Selection` and a :class:`StepperRun` as reactive attributes, and the
screens redraw from them.

Memory does not grow with the square of the function count: all pairs are
decided at once only while they are few
(:data:`~p2pview.tui.verdicts.WHOLE_CELLS`); above that the screens decide the
pairs they show a tile at a time (:class:`~p2pview.kernel.tiles.PairTiles`),
and changes against the original are found only among the pairs an edit can
reach (:mod:`p2pview.kernel.reach`). Undo keeps analyses without their
verdicts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cached_property

from p2pview.iosim import Scenario, Trace, simulate
from p2pview.kernel import KernelTarget, Verdict, calc_map_type_and_dist
from p2pview.kernel.acs import with_iommu_acs, without_iommu_acs
from p2pview.model import BDF, Acs, AcsPresence, IommuMode, RootBus, Topology
from p2pview.model.select import SelectionError, select
from p2pview.session import CpuChoice, EngineConfig, Session, session_for
from p2pview.sources import Loaded, to_toml
from p2pview.tui.verdicts import Comparison, Verdicts


@dataclass(frozen=True, eq=False)
class Analysis:
    """One topology judged by one kernel, with every verdict. Immutable.

    ``verdicts`` is computed on first use and kept (a worker asks for it, so
    that the UI thread never computes it); an analysis kept only for undo
    drops it (:meth:`light`) and computes it again if it comes back.
    """

    #: The source as read (what-if edits never change it).
    loaded: Loaded
    #: The settings the engine was booted with.
    config: EngineConfig
    session: Session
    #: The what-if edits that led here from the source as loaded, oldest first.
    edits: tuple[str, ...] = ()

    @cached_property
    def verdicts(self) -> Verdicts:
        """Every pair's verdict (or the per-function arrays, on a big topology)."""
        return Verdicts.of(self.session)

    @property
    def topology(self) -> Topology:
        """The topology as the engine sees it."""
        return self.session.topology

    def verdict(self, provider: BDF, client: BDF) -> Verdict:
        """One pair's verdict."""
        return calc_map_type_and_dist(self.session.state, provider, client)

    def light(self) -> Analysis:
        """The same analysis without its verdicts (what undo keeps: they are big)."""
        return replace(self)

    def toml(self) -> str:
        """The topology as a TOML topology file, the edits named in its header."""
        topo = self.topology  # the session already carries the CPU and command line
        if self.config.kernel is not None:
            topo = topo.with_platform(kernel=str(self.config.kernel.version))
        header = "Saved from the p2pview TUI after these what-if edits:\n" + "\n".join(
            f"  - {e}" for e in self.edits
        )
        return to_toml(topo, header)


def analyse(loaded: Loaded, config: EngineConfig) -> Analysis:
    """Boot the engine on ``loaded`` with ``config``, verdicts included (slow: a worker's job)."""
    analysis = Analysis(loaded, config, session_for(loaded, config))
    _ = analysis.verdicts
    return analysis


def _edited(analysis: Analysis, topology: Topology, config: EngineConfig, what: str) -> Analysis:
    """The engine booted again on an edited topology or config, verdicts included.

    The IOMMU choice was applied to the topology's ACS once, at load (and by
    :func:`set_iommu`): it is not applied again.
    """
    loaded = Loaded(topology, analysis.loaded.kind, analysis.loaded.report)
    session = session_for(loaded, replace(config, iommu=None))
    edited = Analysis(analysis.loaded, config, session, (*analysis.edits, what))
    _ = edited.verdicts
    return edited


#: One what-if edit: the next analysis from the current one (raises on a refused value).
Edit = Callable[[Analysis], Analysis]


def toggle_acs_bit(bdf: BDF, bit: int) -> Edit:
    """Flip one ACS Control bit (RR 0x4, CR 0x8, EC 0x20 ...) of a function with ACS."""

    def edit(analysis: Analysis) -> Analysis:
        dev = analysis.topology[bdf]
        if dev.acs.presence is not AcsPresence.PRESENT or dev.acs.cap is None:
            raise ValueError(f"{bdf} has no ACS capability to edit")
        ctrl = (dev.acs.ctrl or 0) ^ bit
        topo = analysis.topology.with_acs(bdf, Acs.present(dev.acs.cap, ctrl, dev.acs.fw_ctrl))
        return _edited(analysis, topo, analysis.config, f"ACS Control of {bdf} -> {ctrl:#06x}")

    return edit


def set_iommu(on: bool) -> Edit:
    """IOMMU on: ACS as an IOMMU driver enables it; off: ACS back to firmware values."""

    def edit(analysis: Analysis) -> Analysis:
        topo = analysis.topology
        topo = with_iommu_acs(topo) if on else without_iommu_acs(topo)
        topo = topo.with_platform(iommu=IommuMode.TRANSLATED if on else IommuMode.OFF)
        return _edited(analysis, topo, analysis.config, f"IOMMU {'on' if on else 'off'}")

    return edit


def set_cmdline(cmdline: str) -> Edit:
    """Replace the kernel command line (disable_acs_redir=, config_acs= ...)."""

    def edit(analysis: Analysis) -> Analysis:
        config = replace(analysis.config, cmdline=cmdline)
        what = f"command line: {cmdline or '(empty)'}"
        return _edited(analysis, analysis.topology, config, what)

    return edit


def set_cpu(cpu: CpuChoice) -> Edit:
    """Replace the CPU (``amd:0x19``, ``intel:6``, ``arm64``), parsed by the caller."""

    def edit(analysis: Analysis) -> Analysis:
        config = replace(analysis.config, cpu=cpu)
        return _edited(analysis, analysis.topology, config, f"CPU: {cpu.text}")

    return edit


def set_kernel(target: KernelTarget) -> Edit:
    """Model another kernel release, parsed by the caller."""

    def edit(analysis: Analysis) -> Analysis:
        config = replace(analysis.config, kernel=target)
        return _edited(analysis, analysis.topology, config, f"kernel: {target.version}")

    return edit


def set_host_bridge_ids(root: RootBus, vendor: int, device: int) -> Edit:
    """Give a root bus's first function other IDs (what the whitelist checks)."""

    def edit(analysis: Analysis) -> Analysis:
        # IDs the user gives are read, not the assumption the dump left there
        topo = analysis.topology.with_host_bridge_ids(root, vendor, device)
        what = f"host bridge {root} IDs -> {vendor:04x}:{device:04x}"
        return _edited(analysis, topo, analysis.config, what)

    return edit


@dataclass(frozen=True, eq=False)
class WhatIf:
    """The analysis as loaded, the current one, and the way back. Immutable.

    Each method returns a new value; the app assigns it on the UI thread.
    """

    original: Analysis
    current: Analysis
    #: The analyses before each edit, oldest first (kept light but for the original:
    #: see :meth:`Analysis.light`).
    history: tuple[Analysis, ...]
    #: The verdicts as edited against those as loaded.
    comparison: Comparison

    @classmethod
    def start(cls, analysis: Analysis) -> WhatIf:
        """Nothing edited yet."""
        return cls(analysis, analysis, (), Comparison.same(analysis.verdicts))

    def _to(self, current: Analysis, history: tuple[Analysis, ...]) -> WhatIf:
        comparison = Comparison.between(self.comparison.before, current.verdicts)
        return WhatIf(self.original, current, history, comparison)

    def apply(self, edit: Edit) -> WhatIf:
        """After one more edit (raises, changing nothing, when the edit is refused).

        Undo keeps the analysis as loaded whole (the comparison holds its
        verdicts anyway), so undoing the first edit computes nothing again.
        """
        before = self.current if self.current is self.original else self.current.light()
        return self._to(edit(self.current), (*self.history, before))

    def undone(self) -> WhatIf | None:
        """Before the last edit (``None``: nothing to undo)."""
        if not self.history:
            return None
        *rest, last = self.history
        return self._to(last, tuple(rest))

    def reset(self) -> WhatIf:
        """Back to the analysis as loaded."""
        return WhatIf.start(self.original)

    # -- what the screens read ---------------------------------------------------

    @property
    def session(self) -> Session:
        """The current session."""
        return self.current.session

    @property
    def topology(self) -> Topology:
        """The topology as edited."""
        return self.current.topology

    @property
    def original_topology(self) -> Topology:
        """The topology as loaded."""
        return self.original.topology

    @property
    def verdicts(self) -> Verdicts:
        """The verdicts as edited."""
        return self.comparison.after

    @property
    def edits(self) -> tuple[str, ...]:
        """The edits in place, oldest first."""
        return self.current.edits

    def verdict(self, provider: BDF, client: BDF) -> Verdict:
        """The current verdict for a pair."""
        return self.current.verdict(provider, client)

    def original_verdict(self, provider: BDF, client: BDF) -> Verdict | None:
        """The verdict before any edit (``None`` when the pair did not exist)."""
        topo = self.original_topology
        if provider not in topo or client not in topo:
            return None
        return self.original.verdict(provider, client)


@dataclass(frozen=True)
class Selection:
    """The function selected in the tree, the peer it is judged against, the pair explained."""

    selected: BDF | None = None
    peer: BDF | None = None
    pair: tuple[BDF, BDF] | None = None

    def within(self, topology: Topology) -> Selection:
        """Only what still exists in ``topology`` (after a reload)."""

        def keep(bdf: BDF | None) -> BDF | None:
            return bdf if bdf is not None and bdf in topology else None

        pair = self.pair
        if pair is not None and not (pair[0] in topology and pair[1] in topology):
            pair = None
        return Selection(keep(self.selected), keep(self.peer), pair)


def default_selection(topology: Topology) -> tuple[Selection, list[str]]:
    """Start on a pair a user would ask about: a provider and a DMA-capable peer.

    The peer is the first storage/GPU/NIC/accelerator function other than the
    provider (not a host bridge's own function or a chipset device), so the
    first verdict shown is about two devices that would really do P2P DMA.
    Returns the selection and a note when no such device is known.
    """
    notes: list[str] = []
    providers = [d.bdf for d in topology.devices if d.p2pmem is not None]
    endpoints = [d.bdf for d in topology.devices if not d.is_bridge]
    if not endpoints:
        # a tree of bridges only (a filtered dump): any function will do
        endpoints = list(topology.bdfs)
    selected = providers[0] if providers else (endpoints[0] if endpoints else None)
    try:
        likely = set(select(topology, "devices"))
    except SelectionError:  # no storage, GPU or NIC known (lspci -t names no classes)
        likely = set()
        if len(endpoints) > 1:
            notes.append(
                "no storage, GPU, NIC or accelerator is known in this source (it names no"
                " classes, or has none): the first pair shown is two functions in address"
                " order; 2 (Matrix) shows them all"
            )
    others = [b for b in endpoints if b != selected]
    peers = [b for b in others if b in likely]
    peer = peers[0] if peers else (others[0] if others else selected)
    pair = (selected, peer) if selected is not None and peer is not None else None
    return Selection(selected, peer, pair), notes


@dataclass(frozen=True, eq=False)
class StepperRun:
    """A simulated I/O: the scenario, its trace and the analysis it ran on, which travel together.

    After a what-if edit the run is stale (its analysis is no longer the
    current one) and the stepper runs the scenario again.
    """

    scenario: Scenario
    trace: Trace
    analysis: Analysis


def simulate_scenario(analysis: Analysis, scenario: Scenario) -> StepperRun:
    """Simulate ``scenario`` on ``analysis``'s topology and kernel (pure: a worker may call it).

    A scenario that names another release (the stepper's ``k``) runs wholly
    under it, verdicts and data path alike: the engine is booted again on the
    same topology for that release.
    """
    state = analysis.session.state
    named = scenario.kernel
    if named is not None and named.version.series != state.target.version.series:
        state = state.under(named.target)
    return StepperRun(scenario, simulate(scenario, analysis.topology, state), analysis)
