"""Loading what the TUI shows: this host, a source, or the bundled demo.

Plain Python (no Textual). :func:`load_start` reads the source, boots the
engine once (:func:`~p2pview.tui.analysis.analyse`) and picks the first pair
to show; the app keeps the result's :class:`~p2pview.tui.analysis.WhatIf` and
:class:`~p2pview.tui.analysis.Selection` as reactive attributes.
"""

from __future__ import annotations

from dataclasses import dataclass

from p2pview.model import Topology
from p2pview.session import EngineConfig
from p2pview.sources import Loaded, SourceError, load_source
from p2pview.tui.analysis import Selection, WhatIf, analyse, default_selection

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


@dataclass(frozen=True, eq=False)
class TuiStart:
    """What a load gives the app: the analysis to explore, where to start, what to say."""

    whatif: WhatIf
    selection: Selection
    #: Said once, as notifications.
    notes: tuple[str, ...]
    #: Why a bundled topology is shown instead of this host (``None``: it is not).
    stand_in: str | None = None


def load_start(
    source: str | None, config: EngineConfig | None = None, fmt: str | None = None
) -> TuiStart:
    """Load a source (this host, else the demo) and boot the engine on it (slow: a worker's job).

    ``config.iommu`` is applied once, here: the analysis's topology carries its
    ACS from then on, what-if edits and reset included.
    """
    loaded, notes, stand_in = load_default(source, fmt)
    analysis = analyse(loaded, config or EngineConfig())
    selection, more = default_selection(analysis.topology)
    return TuiStart(
        WhatIf.start(analysis),
        selection,
        (*notes, *analysis.session.notes, *more),
        stand_in,
    )
