"""What the matrix screen shows, apart from how: filters, the cells in view, their texts.

Plain Python and numpy (no Textual), so that it can be tested and timed alone.
A :class:`MatrixView` does not copy the matrix: it holds index arrays into the
rows and columns of a :class:`~p2pview.kernel.PairMatrix` (the model's full
all-pairs matrix when a filter only picks functions out of it), and the grid
reads the few cells that are on screen through them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from p2pview.kernel import PairMatrix, PathKind, Verdict
from p2pview.kernel.matrix import (
    CODE_BUS_ADDR,
    CODE_INT_ERA,
    CODE_NOT_SUPPORTED,
    CODE_THRU_HOST_BRIDGE,
    CODE_UNDETERMINED,
)
from p2pview.kernel.verdict import WhitelistCheck
from p2pview.model import BDF, Kind, PcieType, Topology, kind_of
from p2pview.model.nvlabel import derive_label
from p2pview.model.select import select
from p2pview.sources.pciids import ids_text
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
    return select(topo, wanted.providers), select(topo, wanted.clients)


def slice_indices(
    matrix: PairMatrix, providers: tuple[BDF, ...], clients: tuple[BDF, ...]
) -> tuple[Indices, Indices] | None:
    """Row and column indices of ``providers`` x ``clients`` in ``matrix``.

    ``None`` when a function is not in the matrix (the view must then be computed).
    """
    row_of = {b: i for i, b in enumerate(matrix.providers)}
    col_of = row_of if matrix.clients == matrix.providers else {
        b: i for i, b in enumerate(matrix.clients)
    }  # fmt: skip
    if any(b not in row_of for b in providers) or any(b not in col_of for b in clients):
        return None
    rows = np.fromiter((row_of[b] for b in providers), np.intp, len(providers))
    cols = np.fromiter((col_of[b] for b in clients), np.intp, len(clients))
    return rows, cols


def changed_against(matrix: PairMatrix, original: PairMatrix) -> Bools | None:
    """Cells of ``matrix`` whose map type or distance differs from ``original``.

    Pairs the original does not have count as changed. ``None`` when nothing changed.
    """
    if matrix is original:
        return None
    if matrix.providers == original.providers and matrix.clients == original.clients:
        changed: Bools = (matrix.map_code != original.map_code) | (
            matrix.distance != original.distance
        )
    else:
        row_of = {b: i for i, b in enumerate(original.providers)}
        col_of = {b: i for i, b in enumerate(original.clients)}
        rows = np.array([row_of.get(b, -1) for b in matrix.providers], dtype=np.intp)
        cols = np.array([col_of.get(b, -1) for b in matrix.clients], dtype=np.intp)
        ix = np.ix_(np.maximum(rows, 0), np.maximum(cols, 0))
        changed = (matrix.map_code != original.map_code[ix]) | (
            matrix.distance != original.distance[ix]
        )
        changed |= (rows < 0)[:, None] | (cols < 0)[None, :]
    return changed if bool(changed.any()) else None


@dataclass(frozen=True)
class MatrixView:
    """The cells a filter picks: ``matrix[rows[i], cols[j]]`` is cell ``(i, j)``.

    ``changed`` has the shape of ``matrix`` (``None``: no cell changed).
    """

    topology: Topology
    matrix: PairMatrix
    rows: Indices
    cols: Indices
    changed: Bools | None
    filter: MatrixFilter

    @classmethod
    def whole(
        cls,
        topology: Topology,
        matrix: PairMatrix,
        changed: Bools | None,
        wanted: MatrixFilter,
    ) -> MatrixView:
        """Every cell of ``matrix`` (one computed for the filter)."""
        rows = np.arange(len(matrix.providers), dtype=np.intp)
        cols = np.arange(len(matrix.clients), dtype=np.intp)
        return cls(topology, matrix, rows, cols, changed, wanted)

    @property
    def n_rows(self) -> int:
        """Providers in view."""
        return len(self.rows)

    @property
    def n_cols(self) -> int:
        """Clients in view."""
        return len(self.cols)

    @property
    def empty(self) -> bool:
        """No cell to show."""
        return self.n_rows == 0 or self.n_cols == 0

    @property
    def int_era(self) -> bool:
        """v4.20-v5.3: the kernel returned an int, not a map type."""
        return bool((self.matrix.map_code == CODE_INT_ERA).any())

    def provider(self, row: int) -> BDF:
        """The provider of row ``row``."""
        return self.matrix.providers[int(self.rows[row])]

    def client(self, col: int) -> BDF:
        """The client of column ``col``."""
        return self.matrix.clients[int(self.cols[col])]

    def row_of(self, provider: BDF) -> int | None:
        """The row of a provider, if in view."""
        for i, k in enumerate(self.rows.tolist()):
            if self.matrix.providers[k] == provider:
                return i
        return None

    def col_of(self, client: BDF) -> int | None:
        """The column of a client, if in view."""
        for j, k in enumerate(self.cols.tolist()):
            if self.matrix.clients[k] == client:
                return j
        return None

    def cell(self, row: int, col: int) -> tuple[int, int, bool, bool]:
        """``(map code, distance, assumed, changed)`` of one cell."""
        i, j = int(self.rows[row]), int(self.cols[col])
        m = self.matrix
        changed = self.changed is not None and bool(self.changed[i, j])
        return int(m.map_code[i, j]), int(m.distance[i, j]), bool(m.assumed[i, j]), changed

    def row_cells(
        self, row: int, first: int, stop: int
    ) -> tuple[list[int], list[int], list[bool], list[bool] | None]:
        """Codes, distances, assumed and changed flags of columns ``first:stop`` of a row."""
        i = int(self.rows[row])
        cols = self.cols[first:stop]
        m = self.matrix
        changed = None if self.changed is None else self.changed[i, cols].tolist()
        return (
            m.map_code[i, cols].tolist(),
            m.distance[i, cols].tolist(),
            m.assumed[i, cols].tolist(),
            changed,
        )

    def count_changed(self) -> int:
        """Cells in view whose verdict changed."""
        if self.changed is None or self.empty:
            return 0
        return int(self.changed[np.ix_(self.rows, self.cols)].sum())


def kernel_text(code: int, distance: int, assumed: bool, changed: bool) -> str:
    """A cell as the CLI prints it (``B4``, ``T6``, ``X4``, the int of v4.20-v5.3), and marks."""
    if code == CODE_UNDETERMINED:
        head = CELL_LETTER[code]
    elif code == CODE_INT_ERA:
        head = str(distance)
    else:
        head = f"{CELL_LETTER[code]}{distance}"
    return head + (ASSUMED_MARK if assumed else "") + (CHANGED_MARK if changed else "")


def kernel_width(matrix: PairMatrix, changed: Bools | None) -> int:
    """Cells the widest kernel cell text of ``matrix`` needs."""
    if matrix.distance.size == 0:
        return 2
    low, high = int(matrix.distance.min()), int(matrix.distance.max())
    digits = max(len(str(low)), len(str(high)))
    letter = 0 if bool((matrix.map_code == CODE_INT_ERA).all()) else 1
    assumed = 1 if bool(matrix.assumed.any()) else 0
    marked = 1 if changed is not None else 0
    return letter + digits + assumed + marked


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

    What :func:`p2pview.views.names.bdf_text` says, with the domains looked at once
    (``bdf_text`` looks at every function on each call).
    """
    if all(b.domain == 0 for b in topo.bdfs):
        return BDF.short
    return str


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
            self._cache[key] = text
        return text

    def __len__(self) -> int:
        return len(self._cache)
