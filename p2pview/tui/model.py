"""What the TUI shows, apart from how: the loaded host, what-if edits, selections.

Plain Python (no Textual): the screens read it and call its edit methods; the
app bumps a version counter after every change so that each screen redraws.
Every edit builds a new immutable topology and a new engine state; the
original stays for comparison ("changed against the original").

Memory does not grow with the square of the function count: all pairs are
decided at once only while they are few (:data:`WHOLE_CELLS`); above that the
screens decide the pairs they show a tile at a time
(:class:`~p2pview.kernel.tiles.PairTiles`), and changes against the original
are found only among the pairs an edit can reach (:mod:`p2pview.kernel.reach`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from p2pview.iosim import Scenario, Trace, simulate
from p2pview.kernel import Verdict, calc_map_type_and_dist
from p2pview.kernel.acs import with_iommu_acs, without_iommu_acs
from p2pview.kernel.provenance import ALT_KERNEL
from p2pview.kernel.version import KernelVersion
from p2pview.model import BDF, Acs, AcsPresence, IommuMode, RootBus, Topology
from p2pview.model.select import SelectionError, select
from p2pview.session import Session, session_for
from p2pview.sources import Loaded, SourceError, load_source, to_toml
from p2pview.sources.bundled import bundled_scenario_path
from p2pview.tui.verdicts import Comparison, Verdicts

#: Shown when this host has no PCIe tree worth showing (no bridge, no p2pmem).
DEMO_TOPOLOGY = "switch-acs-iommu"


def worth_showing(topology: Topology) -> bool:
    """A tree with a bridge or a p2pmem provider (a VM's flat bus is not)."""
    return any(d.is_bridge or d.p2pmem is not None for d in topology.devices)


def load_default(
    source: str | None, fmt: str | None = None
) -> tuple[Loaded, list[str], str | None]:
    """Load SOURCE (as ``fmt``); with none, this host if it has a PCIe tree, else the demo.

    Returns what was loaded, notes for the user, and, when the bundled topology
    stands in for this host, why (the header says so for as long as it is shown).
    """
    notes: list[str] = []
    if source is not None:
        return load_source(source, fmt), notes, None
    try:
        live = load_source("/")
    except SourceError as exc:
        notes.append(f"{exc}; showing the bundled topology '{DEMO_TOPOLOGY}'")
        return load_source(DEMO_TOPOLOGY), notes, "/sys unreadable"
    if worth_showing(live.topology):
        return live, notes, None
    notes.append(
        f"this host's PCI tree ({len(live.topology)} functions) has no bridges and no p2pmem;"
        f" showing the bundled topology '{DEMO_TOPOLOGY}' instead"
    )
    return load_source(DEMO_TOPOLOGY), notes, "it has no bridges"


@dataclass
class Overrides:
    """Platform changes the user asked for (``None``: the source's own)."""

    kernel: str | None = None
    cpu: str | None = None
    cmdline: str | None = None


@dataclass
class TuiModel:
    """The loaded source, the current what-if state and the user's selections."""

    loaded: Loaded
    overrides: Overrides
    initial_overrides: Overrides
    original: Session
    session: Session
    #: The verdicts as edited against those as loaded.
    comparison: Comparison
    notes: list[str] = field(default_factory=list)
    edits: list[str] = field(default_factory=list)
    history: list[tuple[Topology, Overrides, list[str]]] = field(default_factory=list)
    #: The function selected in the tree, and the peer its verdict is shown against.
    selected: BDF | None = None
    peer: BDF | None = None
    #: The pair the explain screen shows.
    pair: tuple[BDF, BDF] | None = None
    #: The stepper's scenario and trace.
    scenario: Scenario | None = None
    trace: Trace | None = None
    source_spec: str | None = None
    #: Why a bundled topology is shown instead of this host (``None``: it is not).
    stand_in: str | None = None

    # -- building ------------------------------------------------------------

    @classmethod
    def load(
        cls,
        source: str | None,
        *,
        kernel: str | None = None,
        cpu: str | None = None,
        cmdline: str | None = None,
        iommu: str | None = None,
        fmt: str | None = None,
    ) -> TuiModel:
        """Load a source (this host, else the demo) and boot the engine on it.

        ``iommu`` (``on``/``off``) is applied once, here: the session's topology
        carries its ACS from then on, what-if edits and reset included.
        """
        loaded, notes, stand_in = load_default(source, fmt)
        overrides = Overrides(kernel, cpu, cmdline)
        session = session_for(loaded, kernel=kernel, cpu=cpu, cmdline=cmdline, iommu=iommu)
        verdicts = Verdicts.of(session)
        model = cls(
            loaded=loaded,
            overrides=overrides,
            initial_overrides=overrides,
            original=session,
            session=session,
            comparison=Comparison.same(verdicts),
            notes=[*notes, *session.notes],
            source_spec=source,
            stand_in=stand_in,
        )
        model._default_selection()
        return model

    def _default_selection(self) -> None:
        """Start on a pair a user would ask about: a provider and a DMA-capable peer.

        The peer is the first storage/GPU/NIC/accelerator function other than the
        provider (not a host bridge's own function or a chipset device), so the
        first verdict shown is about two devices that would really do P2P DMA.
        """
        topo = self.topology
        providers = [d.bdf for d in topo.devices if d.p2pmem is not None]
        endpoints = [d.bdf for d in topo.devices if not d.is_bridge]
        if not endpoints:
            # a tree of bridges only (a filtered dump): any function will do
            endpoints = list(topo.bdfs)
        self.selected = providers[0] if providers else (endpoints[0] if endpoints else None)
        try:
            likely = set(select(topo, "devices"))
        except SelectionError:  # no storage, GPU or NIC known (lspci -t names no classes)
            likely = set()
            if len(endpoints) > 1:
                self.notes.append(
                    "no storage, GPU, NIC or accelerator is known in this source (it names no"
                    " classes, or has none): the first pair shown is two functions in address"
                    " order; 2 (Matrix) shows them all"
                )
        others = [b for b in endpoints if b != self.selected]
        peers = [b for b in others if b in likely]
        self.peer = peers[0] if peers else (others[0] if others else self.selected)
        if self.selected is not None and self.peer is not None:
            self.pair = (self.selected, self.peer)

    @property
    def topology(self) -> Topology:
        """The topology as edited."""
        return self.session.topology

    @property
    def original_topology(self) -> Topology:
        """The topology as loaded."""
        return self.original.topology

    def verdict(self, provider: BDF, client: BDF) -> Verdict:
        """The current verdict for a pair."""
        return calc_map_type_and_dist(self.session.state, provider, client)

    def original_verdict(self, provider: BDF, client: BDF) -> Verdict | None:
        """The verdict before any edit (``None`` when the pair did not exist)."""
        topo = self.original_topology
        if provider not in topo or client not in topo:
            return None
        return calc_map_type_and_dist(self.original.state, provider, client)

    @property
    def verdicts(self) -> Verdicts:
        """The verdicts as edited."""
        return self.comparison.after

    # -- what-if edits -----------------------------------------------------------

    def _boot(self, topology: Topology, overrides: Overrides) -> Session:
        """The engine on ``topology`` with ``overrides`` (raises on a bad override)."""
        loaded = Loaded(topology, self.loaded.kind, self.loaded.report)
        ov = overrides
        return session_for(loaded, kernel=ov.kernel, cpu=ov.cpu, cmdline=ov.cmdline)

    def _show(self, session: Session, overrides: Overrides, edits: list[str]) -> None:
        self.session = session
        self.overrides = overrides
        self.comparison = Comparison.between(self.comparison.before, Verdicts.of(session))
        self.edits = edits
        self.trace = None

    def _apply(self, topology: Topology, overrides: Overrides, what: str) -> None:
        # Boot the engine on the edit first: a rejected edit (an unknown kernel,
        # a CPU string the model cannot parse) must leave model and history alone.
        session = self._boot(topology, overrides)
        self.history.append((self.topology, self.overrides, list(self.edits)))
        self._show(session, overrides, [*self.edits, what])

    def undo(self) -> bool:
        """Take the last edit back."""
        if not self.history:
            return False
        topology, overrides, edits = self.history.pop()
        self._show(self._boot(topology, overrides), overrides, edits)
        return True

    def reset(self) -> None:
        """Back to the topology as loaded."""
        self.history.clear()
        self.edits.clear()
        self.session = self.original
        self.overrides = self.initial_overrides
        self.comparison = Comparison.same(self.comparison.before)
        self.trace = None

    def toggle_acs_bit(self, bdf: BDF, bit: int) -> None:
        """Flip one ACS Control bit (RR 0x4, CR 0x8, EC 0x20 ...) of a function with ACS."""
        dev = self.topology[bdf]
        if dev.acs.presence is not AcsPresence.PRESENT or dev.acs.cap is None:
            raise ValueError(f"{bdf} has no ACS capability to edit")
        ctrl = (dev.acs.ctrl or 0) ^ bit
        acs = Acs.present(dev.acs.cap, ctrl, dev.acs.fw_ctrl)
        self._apply(self.topology.with_acs(bdf, acs), self.overrides,
                    f"ACS Control of {bdf} -> {ctrl:#06x}")  # fmt: skip

    def set_iommu(self, on: bool) -> None:
        """IOMMU on: ACS as an IOMMU driver enables it; off: ACS back to firmware values."""
        topo = with_iommu_acs(self.topology) if on else without_iommu_acs(self.topology)
        mode = IommuMode.TRANSLATED if on else IommuMode.OFF
        topo = topo.with_platform(iommu=mode)
        self._apply(topo, self.overrides, f"IOMMU {'on' if on else 'off'}")

    def set_cmdline(self, cmdline: str) -> None:
        """Replace the kernel command line (disable_acs_redir=, config_acs= ...)."""
        self._apply(self.topology, replace(self.overrides, cmdline=cmdline),
                    f"command line: {cmdline or '(empty)'}")  # fmt: skip

    def set_cpu(self, spec: str) -> None:
        """Replace the CPU (``amd:0x19``, ``intel:6``, ``arm64``)."""
        self._apply(self.topology, replace(self.overrides, cpu=spec), f"CPU: {spec}")

    def set_kernel(self, kernel: str) -> None:
        """Model another kernel release."""
        self._apply(self.topology, replace(self.overrides, kernel=kernel), f"kernel: {kernel}")

    def set_host_bridge_ids(self, root: RootBus, vendor: int, device: int) -> None:
        """Give a root bus's first function other IDs (what the whitelist checks)."""
        # IDs the user gives are read, not the assumption the dump left there
        topo = self.topology.with_host_bridge_ids(root, vendor, device)
        self._apply(topo, self.overrides, f"host bridge {root} IDs -> {vendor:04x}:{device:04x}")

    def save(self, path: Path) -> None:
        """Write the edited topology as a TOML topology file."""
        topo = self.topology  # the session already carries the CPU and command line
        if self.overrides.kernel is not None:
            topo = topo.with_platform(kernel=self.overrides.kernel)
        header = "Saved from the p2pview TUI after these what-if edits:\n" + "\n".join(
            f"  - {e}" for e in self.edits
        )
        path.write_text(to_toml(topo, header), encoding="utf-8")

    # -- the I/O stepper -----------------------------------------------------------

    def simulate_scenario(self, scenario: Scenario) -> Trace:
        """Simulate ``scenario`` on the current (edited) topology and kernel; change nothing.

        Only reads the model, so a thread worker may call it; the UI thread
        then keeps the result with :meth:`adopt_trace` (the same rule as the
        what-if edits' draft and adopt). A scenario that names another release
        (the stepper's ``k``) runs wholly under it, verdicts and data path alike:
        the engine is booted again on the same topology for that release.
        """
        state = self.session.state
        if scenario.kernel is not None:
            wanted = KernelVersion.parse(scenario.kernel)
            if wanted.series != state.target.version.series:
                state = state.alternative(ALT_KERNEL + scenario.kernel)
        return simulate(scenario, self.topology, state)

    def adopt_trace(self, scenario: Scenario, trace: Trace) -> None:
        """Make ``trace`` of ``scenario`` the model's current one (on the UI thread)."""
        self.scenario, self.trace = scenario, trace  # only together: they must match

    def run_scenario(self, scenario: Scenario) -> Trace:
        """Simulate and keep the trace at once, for a caller on the UI thread (the demo)."""
        trace = self.simulate_scenario(scenario)
        self.adopt_trace(scenario, trace)
        return trace

    def bundled_scenario(self, name: str) -> Path | None:
        """The file of a bundled scenario."""
        return bundled_scenario_path(name)
