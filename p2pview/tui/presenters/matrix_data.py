"""What the matrix screen shows, apart from how: filters, the cells in view, their texts.

Plain Python and numpy (no Textual), so that it can be tested and timed alone.
A :class:`MatrixView` copies no matrix: it reads the few cells on screen
through index arrays into the analysis's whole all-pairs matrix when the topology
is small, else from tiles decided as they come into view
(:meth:`~p2pview.tui.verdicts.Comparison.cells`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import numpy.typing as npt

from p2pview.kernel import PathKind, Verdict
from p2pview.kernel.matrix import (
    CODE_BUS_ADDR,
    CODE_INT_ERA,
    CODE_NOT_SUPPORTED,
    CODE_THRU_HOST_BRIDGE,
    CODE_UNDETERMINED,
)
from p2pview.kernel.tiles import CellStats, PairTiles
from p2pview.kernel.verdict import WhitelistCheck
from p2pview.model import BDF, Kind, PcieType, Topology, kind_of
from p2pview.model.nvlabel import derive_label
from p2pview.model.select import select
from p2pview.sources.pciids import ids_text
from p2pview.tui.analysis import WhatIf
from p2pview.tui.verdicts import WholeCells
from p2pview.views.explain import FACT_NAMES
from p2pview.views.matrix_table import CELL_LETTER

Indices = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]

#: The mark after a cell whose verdict differs from the topology as loaded.
CHANGED_MARK = "Δ"
#: The mark after a cell whose verdict assumed no ACS redirect on an unreadable function.
ASSUMED_MARK = "*"
#: The NVIDIA column of a function paired with itself (nvidia-smi prints ``X``).
NV_SELF = "-"
#: Cells of an NVIDIA label: ``NODE``, ``SYS?``.
NV_WIDTH = 4


@dataclass(frozen=True)
class MatrixFilter:
    """Providers (rows) x clients (columns), as two selections of :mod:`p2pview.model.select`."""

    title: str
    providers: str
    clients: str

    @property
    def spec(self) -> str:
        """The text the ``/`` prompt starts from: ``nvme,gpu x all``."""
        if self.providers == self.clients:
            return self.providers
        return f"{self.providers} x {self.clients}"


#: What ``f`` cycles through.
PRESETS = (
    MatrixFilter("Endpoints", "endpoint", "endpoint"),
    MatrixFilter("P2P devices", "devices", "devices"),
    MatrixFilter("p2pmem providers x all", "p2pmem", "all"),
    MatrixFilter("Everything", "all", "all"),
)


def parse_filter(text: str) -> MatrixFilter:
    """A typed filter: ``SEL`` (both sides), ``SEL x SEL`` or ``SEL ; SEL``.

    Raises:
        ValueError: nothing was typed.
    """
    spec = text.strip()
    if not spec:
        raise ValueError("type a selection such as 'nvme,gpu' or 'p2pmem x all'")
    padded = f" {spec} "  # "x nic": all providers x NICs
    for separator in (";", " x ", " X "):
        if separator in padded:
            rows, _, cols = padded.partition(separator)
            rows, cols = rows.strip() or "all", cols.strip() or "all"
            return MatrixFilter("Selection", rows, cols)
    return MatrixFilter("Selection", spec, spec)


def resolve_filter(topo: Topology, wanted: MatrixFilter) -> tuple[tuple[BDF, ...], tuple[BDF, ...]]:
    """The providers and clients a filter names, in BDF order.

    Raises:
        SelectionError: a term names no function.
    """
    providers = select(topo, wanted.providers)
    if wanted.clients == wanted.providers:
        return providers, providers
    return providers, select(topo, wanted.clients)


@dataclass(frozen=True)
class MatrixView:
    """The cells a filter picks: row ``i`` is ``providers[i]``, column ``j`` ``clients[j]``.

    ``rows`` and ``cols`` are their function indices; ``stats`` bounds the cell
    texts (see :func:`kernel_width`); ``marked``: some cell may carry the
    changed mark.
    """

    topology: Topology
    providers: tuple[BDF, ...]
    clients: tuple[BDF, ...]
    rows: Indices
    cols: Indices
    cells: WholeCells | PairTiles
    stats: CellStats
    marked: bool
    filter: MatrixFilter

    @classmethod
    def of(
        cls,
        whatif: WhatIf,
        providers: tuple[BDF, ...],
        clients: tuple[BDF, ...],
        wanted: MatrixFilter,
    ) -> MatrixView:
        """``providers`` x ``clients`` as edited, marked against the original."""
        comparison = whatif.comparison
        verdicts = comparison.after
        rows, cols = verdicts.indices(providers), verdicts.indices(clients)
        return cls(
            whatif.topology,
            providers,
            clients,
            rows,
            cols,
            comparison.cells(rows, cols),
            verdicts.stats,
            comparison.marked,
            wanted,
        )

    @property
    def n_rows(self) -> int:
        """Providers in view."""
        return len(self.providers)

    @property
    def n_cols(self) -> int:
        """Clients in view."""
        return len(self.clients)

    @property
    def empty(self) -> bool:
        """No cell to show."""
        return self.n_rows == 0 or self.n_cols == 0

    @property
    def int_era(self) -> bool:
        """v4.20-v5.3: the kernel returned an int, not a map type."""
        return self.stats.int_era

    def provider(self, row: int) -> BDF:
        """The provider of row ``row``."""
        return self.providers[row]

    def client(self, col: int) -> BDF:
        """The client of column ``col``."""
        return self.clients[col]

    @cached_property
    def _row_index(self) -> dict[BDF, int]:
        return {b: i for i, b in enumerate(self.providers)}

    @cached_property
    def _col_index(self) -> dict[BDF, int]:
        if self.clients == self.providers:
            return self._row_index
        return {b: j for j, b in enumerate(self.clients)}

    def row_of(self, provider: BDF) -> int | None:
        """The row of a provider, if in view."""
        return self._row_index.get(provider)

    def col_of(self, client: BDF) -> int | None:
        """The column of a client, if in view."""
        return self._col_index.get(client)

    def cell(self, row: int, col: int) -> tuple[int, int, bool, bool]:
        """``(map code, distance, assumed, changed)`` of one cell."""
        return self.cells.cell(row, col)

    def row_cells(
        self, row: int, first: int, stop: int
    ) -> tuple[list[int], list[int], list[bool], list[bool] | None]:
        """Codes, distances, assumed and changed flags of columns ``first:stop`` of a row."""
        return self.cells.row(row, first, stop)

    @property
    def kernel_width(self) -> int:
        """Cells the widest kernel cell text of this view can need."""
        return kernel_width(self.stats, self.marked)


def kernel_text(code: int, distance: int, assumed: bool, changed: bool) -> str:
    """A cell as the CLI prints it (``B4``, ``T6``, ``X4``, the int of v4.20-v5.3), and marks."""
    if code == CODE_UNDETERMINED:
        head = CELL_LETTER[code]
    elif code == CODE_INT_ERA:
        head = str(distance)
    else:
        head = f"{CELL_LETTER[code]}{distance}"
    return head + (ASSUMED_MARK if assumed else "") + (CHANGED_MARK if changed else "")


def kernel_width(stats: CellStats, marked: bool) -> int:
    """Cells the widest kernel cell text needs: letter, distance digits, ``*``, ``Δ``.

    From the whole topology's figures (not the view's), so that a filter never
    changes the column width; a bound on large topologies.
    """
    if stats.empty:
        return 2
    digits = max(len(str(stats.low)), len(str(stats.high)))
    letter = 0 if stats.all_int_era else 1
    return letter + digits + (1 if stats.assumed else 0) + (1 if marked else 0)


#: Component class (of the grid) for each map code; int eras split on the sign.
CODE_COMPONENT = {
    CODE_BUS_ADDR: "matrix--bus-addr",
    CODE_THRU_HOST_BRIDGE: "matrix--thru-host",
    CODE_NOT_SUPPORTED: "matrix--not-supported",
    CODE_UNDETERMINED: "matrix--undetermined",
}


def cell_component(code: int, distance: int) -> str:
    """The grid's component class for a cell."""
    if code == CODE_INT_ERA:
        return "matrix--int-ok" if distance >= 0 else "matrix--int-fail"
    return CODE_COMPONENT[code]


def bdf_namer(topo: Topology) -> Callable[[BDF], str]:
    """``BB:DD.F`` when every function is in domain 0, else the full name.

    :meth:`p2pview.model.Topology.bdf_name` as a plain function of the address.
    """
    return BDF.short if topo.short_names else str


def verdict_reason(
    name: Callable[[BDF], str], verdict: Verdict, topo: Topology | None = None
) -> str:
    """Why, in one line: the common device, the ACS redirect, the host-bridge check.

    ``name`` writes a BDF (see :func:`bdf_namer`); with ``topo``, IDs the
    source did not give read "IDs unknown" instead of ``ffff:ffff``.
    """

    def checked(check: WhitelistCheck) -> str:
        dev = None if topo is None or check.device is None else topo.get(check.device)
        if dev is not None and dev.fact("ids").is_assumed:
            return ids_text(dev)
        return check.ids or "no device"

    def names(bdfs: tuple[BDF, ...]) -> str:
        return ", ".join(name(b) for b in bdfs)

    parts: list[str] = []
    if verdict.undetermined:
        return f"undetermined: {verdict.undetermined}"
    if verdict.path is PathKind.COMMON_UPSTREAM and verdict.common is not None:
        parts.append(f"common upstream {name(verdict.common)}, no ACS redirect")
    elif verdict.path is PathKind.ACS_REDIRECT:
        parts.append(f"ACS redirect at {names(verdict.acs_redirect)}")
    else:
        parts.append("no common upstream bridge")
    if verdict.path is not PathKind.COMMON_UPSTREAM and verdict.map_type is not None:
        if verdict.cpu_supports:
            parts.append("cpu_supports_p2pdma() is true")
        elif verdict.whitelist_checks:
            failed = [c for c in verdict.whitelist_checks if not c.passed]
            shown = failed or list(verdict.whitelist_checks)
            ids = ", ".join(sorted({checked(c) for c in shown}))
            parts.append(f"host bridge {'not ' if failed else ''}whitelisted ({ids})")
    if verdict.distance >= 0x1000 and verdict.map_type is None:
        parts.append("both root complexes AMD 1022:1450 (+0x1000)")
    if verdict.assumptions:
        facts = ", ".join(
            dict.fromkeys(FACT_NAMES.get(a.fact, a.fact) for a in verdict.assumptions)
        )
        parts.append(f"* rests on assumed {facts}")
        if verdict.alternatives:
            parts.append(f"otherwise {verdict.alternatives[0].text}")
    return "; ".join(parts)


_PORT_ABBREVIATIONS = {
    PcieType.ROOT_PORT: "root",
    PcieType.UPSTREAM: "usp",
    PcieType.DOWNSTREAM: "dsp",
    PcieType.PCI_BRIDGE: "bridge",
    PcieType.PCIE_BRIDGE: "bridge",
}


def kind_abbreviation(topo: Topology, bdf: BDF) -> str:
    """A column header's first line: ``nvme``, ``gpu``, ``nic``, ``dsp`` (a few letters)."""
    dev = topo[bdf]
    if dev.is_bridge and dev.pcie_type in _PORT_ABBREVIATIONS:
        return _PORT_ABBREVIATIONS[dev.pcie_type]
    kind = kind_of(dev)
    if kind is Kind.STORAGE:
        return "stor"
    if kind is Kind.OTHER and dev.p2pmem is not None:
        return "p2pmem"
    return kind.value


#: NVIDIA labels kept at most (the cache starts over past it: scrolling a large matrix
#: with labels on must not keep one per pair ever shown).
NV_KEPT = 1 << 16


class NvLabels:
    """NVIDIA ``topo -m`` labels, derived when first asked for and kept per topology."""

    def __init__(self, topo: Topology) -> None:
        self.topology = topo
        self._cache: dict[tuple[BDF, BDF], str] = {}

    def short(self, a: BDF, b: BDF) -> str:
        """``PIX`` ... ``SYS``; ``SYS?`` when NODE is possible too; ``-`` for a pair of one."""
        key = (a, b)
        text = self._cache.get(key)
        if text is None:
            if a == b:
                text = NV_SELF
            else:
                label = derive_label(self.topology, a, b)
                text = label.level.value + ("" if label.certain else "?")
            if len(self._cache) >= NV_KEPT:
                self._cache.clear()
            self._cache[key] = text
        return text

    def __len__(self) -> int:
        return len(self._cache)
