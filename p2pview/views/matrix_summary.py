"""``p2pview matrix`` on a selection too big for a table: a summary a person can read.

A table is drawn up to :data:`TABLE_CELLS` cells. Past that, the verdicts are
counted instead, a block of provider rows at a time (:data:`BLOCK_CELLS`
cells, so memory does not grow with the topology):

* by verdict (map type, or in the v4.20-v5.3 eras the returned int), with the
  distances seen and how many rest on an assumed fact;
* by the path the kernel's walk found (a common upstream device with or
  without an ACS redirect, or none, under one host bridge or two), which says
  why each verdict comes out as it does;
* by host-bridge pair: the verdict most of its pairs get, and the pairs that
  differ from it, with the first few of them (a second pass over the blocks,
  which stops once it has them).

Then a table of the P2P devices alone when the whole topology was asked for
and they fit, and the commands that give everything: ``--json``, or
``--providers``/``--clients`` for a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.kernel.matrix import (
    CODE_BUS_ADDR,
    CODE_INT_ERA,
    CODE_NOT_SUPPORTED,
    CODE_THRU_HOST_BRIDGE,
    CODE_UNDETERMINED,
    PairMatrix,
    chain_arrays,
    pair_matrix,
)
from p2pview.model import BDF, PcieType, RootBus, Topology
from p2pview.model.select import SelectionError, select
from p2pview.session import Session
from p2pview.views.matrix_table import (
    CELL_STYLE,
    cell_text,
    legend,
    matrix_table,
    matrix_width,
)
from p2pview.views.session_header import header_text

#: The most cells ``p2pview matrix`` draws as a table (100 x 100); past it, the summary.
TABLE_CELLS = 10_000
#: Cells decided at once while counting (about 10 bytes a cell while a block lives).
BLOCK_CELLS = 1 << 20
#: Pairs shown for each verdict that differs from its host-bridge pair's majority.
EXAMPLES = 2
#: Host-bridge pairs listed one a line; the rest are counted.
MAX_BLOCK_LINES = 32

# Verdict categories: the map codes themselves, then the v4.20-v5.3 ints by meaning.
_CAT_INT_OK = 4
_CAT_INT_NO_BRIDGE = 5
_CAT_INT_ACS = 6
_CAT_INT_AMD = 7
N_CATEGORIES = 8

#: Mark and meaning of each category, in the order they are listed.
CATEGORIES: dict[int, tuple[str, str]] = {
    CODE_BUS_ADDR: ("B", "BUS_ADDR"),
    CODE_THRU_HOST_BRIDGE: ("T", "THRU_HOST_BRIDGE"),
    CODE_NOT_SUPPORTED: ("X", "NOT_SUPPORTED"),
    CODE_UNDETERMINED: ("?", "undetermined"),
    _CAT_INT_OK: ("n", "a distance: common upstream bridge, no ACS redirect"),
    _CAT_INT_NO_BRIDGE: ("-1", "no common upstream bridge"),
    _CAT_INT_ACS: ("-2", "ACS redirect on the path"),
    _CAT_INT_AMD: ("4096+n", "two AMD 1022:1450 root complexes (v5.1-v5.3)"),
}
_CAT_STYLE = {
    **CELL_STYLE,
    _CAT_INT_OK: "verdict.bus_addr",
    _CAT_INT_NO_BRIDGE: "verdict.unsupported",
    _CAT_INT_ACS: "verdict.unsupported",
    _CAT_INT_AMD: "verdict.bus_addr",
}

# What the kernel's walk found for a pair.
_PATH_COMMON = 0
_PATH_ACS = 1
_PATH_ONE_HOST = 2
_PATH_TWO_HOSTS = 3
_PATH_UNKNOWN = 4
PATHS = {
    _PATH_COMMON: "common upstream device, no ACS redirect",
    _PATH_ACS: "common upstream device, ACS redirect on the path",
    _PATH_ONE_HOST: "no common upstream device, one host bridge",
    _PATH_TWO_HOSTS: "no common upstream device, two host bridges",
    _PATH_UNKNOWN: "not shown: the source does not show what is above a chain",
}

Ints = npt.NDArray[np.int64]


def fits_table(providers: int, clients: int) -> bool:
    """A selection of this size is drawn as a table."""
    return providers * clients <= TABLE_CELLS


@dataclass(frozen=True)
class Example:
    """One pair that differs from the majority of its host-bridge pair."""

    provider: BDF
    client: BDF
    code: int
    distance: int
    assumed: bool


@dataclass
class HostBridgePair:
    """The pairs whose provider is below ``provider`` and whose client is below ``client``."""

    provider: RootBus
    client: RootBus
    counts: dict[int, int]
    examples: dict[int, list[Example]] = field(default_factory=dict)

    @property
    def pairs(self) -> int:
        """How many pairs the block holds."""
        return sum(self.counts.values())

    @property
    def majority(self) -> int:
        """The category most pairs get (the first listed on a tie)."""
        order = list(CATEGORIES)
        return max(self.counts, key=lambda c: (self.counts[c], -order.index(c)))

    @property
    def differing(self) -> dict[int, int]:
        """How many pairs get each other category."""
        top = self.majority
        return {c: n for c, n in self.counts.items() if c != top and n}


@dataclass
class MatrixSummary:
    """The counts :func:`summarise` gathers; every figure is over the selected pairs."""

    providers: int
    clients: int
    counts: dict[int, int]
    assumed: dict[int, int]
    distances: dict[int, tuple[int, int]]
    by_path: dict[int, dict[int, int]]
    blocks: list[HostBridgePair]
    #: The P2P devices' own table, when the whole topology was asked for and it fits.
    devices: PairMatrix | None = None

    @property
    def pairs(self) -> int:
        """Every ordered pair counted."""
        return self.providers * self.clients


def _categories(m: PairMatrix) -> npt.NDArray[np.int8]:
    """Each cell's category: its map code, or the meaning of the v4.20-v5.3 int."""
    code = m.map_code
    if not bool((code == CODE_INT_ERA).any()):
        return code
    d = m.distance
    ints = np.select(
        [d >= 0x1000, d >= 0, d == -2],
        [_CAT_INT_AMD, _CAT_INT_OK, _CAT_INT_ACS],
        default=_CAT_INT_NO_BRIDGE,
    ).astype(np.int8)
    return np.where(code == CODE_INT_ERA, ints, code).astype(np.int8)


def _paths(m: PairMatrix, same_host: npt.NDArray[np.bool_]) -> npt.NDArray[np.int8]:
    path = np.where(same_host, _PATH_ONE_HOST, _PATH_TWO_HOSTS).astype(np.int8)
    path[m.common] = _PATH_COMMON
    path[m.common & m.acs] = _PATH_ACS
    path[m.map_code == CODE_UNDETERMINED] = _PATH_UNKNOWN
    return path


def _count(keys: Ints, space: int) -> dict[int, int]:
    """How often each key occurs (a dense count while the key space is small)."""
    if space <= 1 << 20:
        counts = np.bincount(keys.ravel(), minlength=space)
        present = np.flatnonzero(counts)
        return dict(zip(present.tolist(), counts[present].tolist(), strict=True))
    values, counts = np.unique(keys.ravel(), return_counts=True)
    return dict(zip(values.tolist(), counts.tolist(), strict=True))


def _add(into: dict[int, int], more: dict[int, int]) -> None:
    for key, n in more.items():
        into[key] = into.get(key, 0) + n


def summarise(
    session: Session,
    providers: Sequence[BDF],
    clients: Sequence[BDF],
    *,
    whole: bool = False,
    block_cells: int = BLOCK_CELLS,
) -> MatrixSummary:
    """Count every selected pair's verdict, ``block_cells`` cells at a time.

    ``whole``: no selection was given, so the table of the P2P devices alone
    (``--providers devices --clients devices``) is made too when it fits.
    """
    state = session.state
    topo = session.topology
    arrays = chain_arrays(state)
    roots = [hb.root for hb in topo.host_bridges]
    n_hb = max(1, len(roots))
    hb_of = arrays.host_bridge
    col_hb = hb_of[[arrays.index[b] for b in clients]].astype(np.int64)
    step = max(1, block_cells // max(1, len(clients)))
    space = n_hb * n_hb * N_CATEGORIES

    block_counts: dict[int, int] = {}
    cat_counts: dict[int, int] = {}
    assumed: dict[int, int] = {}
    lo: dict[int, int] = {}
    hi: dict[int, int] = {}
    path_counts: dict[int, int] = {}
    for start in range(0, len(providers), step):
        rows = providers[start : start + step]
        m = pair_matrix(state, rows, clients, arrays)
        cat = _categories(m).astype(np.int64)
        row_hb = hb_of[[arrays.index[b] for b in rows]].astype(np.int64)
        _add(
            block_counts,
            _count((row_hb[:, None] * n_hb + col_hb[None, :]) * N_CATEGORIES + cat, space),
        )
        _add(cat_counts, _count(cat, N_CATEGORIES))
        _add(assumed, _count(cat[m.assumed], N_CATEGORIES))
        paths = _paths(m, row_hb[:, None] == col_hb[None, :]).astype(np.int64)
        _add(path_counts, _count(paths * N_CATEGORIES + cat, len(PATHS) * N_CATEGORIES))
        for c in np.unique(cat).tolist():
            d = m.distance[cat == c]
            lo[c] = min(lo.get(c, 1 << 20), int(d.min()))
            hi[c] = max(hi.get(c, -(1 << 20)), int(d.max()))

    blocks: dict[tuple[int, int], HostBridgePair] = {}
    for key, n in sorted(block_counts.items()):
        pair, c = divmod(key, N_CATEGORIES)
        hp, hc = divmod(pair, n_hb)
        block = blocks.setdefault((hp, hc), HostBridgePair(roots[hp], roots[hc], {}))
        block.counts[c] = n
    by_path: dict[int, dict[int, int]] = {}
    for key, n in path_counts.items():
        p, c = divmod(key, N_CATEGORIES)
        by_path.setdefault(p, {})[c] = n
    _find_examples(session, providers, clients, blocks, n_hb, step)
    devices = _devices(topo) if whole else ()
    return MatrixSummary(
        len(providers),
        len(clients),
        cat_counts,
        assumed,
        {c: (lo[c], hi[c]) for c in lo},
        by_path,
        [blocks[k] for k in sorted(blocks)],
        pair_matrix(state, devices, devices, arrays)
        if devices and fits_table(len(devices), len(devices))
        else None,
    )


def _find_examples(
    session: Session,
    providers: Sequence[BDF],
    clients: Sequence[BDF],
    blocks: dict[tuple[int, int], HostBridgePair],
    n_hb: int,
    step: int,
) -> None:
    """The first :data:`EXAMPLES` pairs of each verdict that differs from its block's majority.

    Pairs of two different endpoints first (a function with itself, or a
    bridge, says little); a second pass over the row blocks, in order, that
    stops once every such verdict has its examples (usually in the first block
    or two). Bridges are taken only for verdicts no endpoint pair shows.
    """
    wanted = {
        (hp * n_hb + hc) * N_CATEGORIES + c
        for (hp, hc), block in blocks.items()
        for c in block.differing
    }
    if not wanted:
        return
    majority = np.full((n_hb, n_hb), -1, dtype=np.int64)
    for (hp, hc), block in blocks.items():
        majority[hp, hc] = block.majority
    found: dict[int, list[Example]] = {}
    _scan(session, providers, clients, majority, step, wanted, found, endpoints_only=True)
    missing = {k for k in wanted if not found.get(k)}
    if missing:
        _scan(session, providers, clients, majority, step, missing, found, endpoints_only=False)
    for key, examples in found.items():
        pair, c = divmod(key, N_CATEGORIES)
        hp, hc = divmod(pair, n_hb)
        blocks[(hp, hc)].examples[c] = examples


def _scan(
    session: Session,
    providers: Sequence[BDF],
    clients: Sequence[BDF],
    majority: Ints,
    step: int,
    wanted: set[int],
    found: dict[int, list[Example]],
    *,
    endpoints_only: bool,
) -> None:
    """Fill ``found`` with up to :data:`EXAMPLES` pairs for each key of ``wanted``."""
    state = session.state
    topo = session.topology
    arrays = chain_arrays(state)
    n_hb = majority.shape[0]
    col_hb = arrays.host_bridge[[arrays.index[b] for b in clients]].astype(np.int64)
    col_ix = np.array([arrays.index[b] for b in clients], dtype=np.int64)
    endpoint = np.array([not topo[b].is_bridge for b in arrays.bdfs], dtype=np.bool_)
    for start in range(0, len(providers), step):
        rows = providers[start : start + step]
        m = pair_matrix(state, rows, clients, arrays)
        cat = _categories(m).astype(np.int64)
        row_ix = np.array([arrays.index[b] for b in rows], dtype=np.int64)
        row_hb = arrays.host_bridge[row_ix].astype(np.int64)
        keys = (row_hb[:, None] * n_hb + col_hb[None, :]) * N_CATEGORIES + cat
        take = (cat != majority[row_hb[:, None], col_hb[None, :]]) & np.isin(keys, list(wanted))
        take &= row_ix[:, None] != col_ix[None, :]
        if endpoints_only:
            take &= endpoint[row_ix][:, None] & endpoint[col_ix][None, :]
        flat = np.flatnonzero(take)
        if not len(flat):
            continue
        flat_keys = keys.ravel()[flat]
        # Group the cells by key, keeping row-major order inside a group.
        order = np.argsort(flat_keys, kind="stable")
        sorted_keys = flat_keys[order]
        firsts = np.flatnonzero(np.r_[True, sorted_keys[1:] != sorted_keys[:-1]])
        ends = np.r_[firsts[1:], len(sorted_keys)]
        for s, e in zip(firsts.tolist(), ends.tolist(), strict=True):
            have = found.setdefault(int(sorted_keys[s]), [])
            for k in order[s : min(e, s + EXAMPLES - len(have))].tolist():
                i, j = divmod(int(flat[k]), len(clients))
                code, dist = int(m.map_code[i, j]), int(m.distance[i, j])
                have.append(Example(rows[i], clients[j], code, dist, bool(m.assumed[i, j])))
        if all(len(found.get(k, ())) >= EXAMPLES for k in wanted):
            break


# -- rendering -------------------------------------------------------------------


def _mark(c: int) -> Text:
    return Text(CATEGORIES[c][0], style=_CAT_STYLE[c])


def _share(n: int, total: int) -> str:
    share = 100 * n / total if total else 0.0
    return f"{share:.1f}%" if share >= 0.1 or n == 0 else "<0.1%"


def verdict_table(summary: MatrixSummary) -> Table:
    """Pairs per verdict, their share, the distances seen, and how many rest on an assumption."""
    table = Table(box=None, pad_edge=False, show_header=True, header_style="bold")
    table.add_column("", no_wrap=True)
    table.add_column("verdict", no_wrap=True)
    table.add_column("pairs", justify="right", no_wrap=True)
    table.add_column("share", justify="right", no_wrap=True)
    table.add_column("distance", justify="right", no_wrap=True)
    table.add_column("* assumed", justify="right", no_wrap=True)
    for c in CATEGORIES:
        n = summary.counts.get(c, 0)
        if not n:
            continue
        lo, hi = summary.distances[c]
        dist = "-" if c == CODE_UNDETERMINED else (str(lo) if lo == hi else f"{lo}-{hi}")
        table.add_row(
            _mark(c),
            CATEGORIES[c][1],
            f"{n:,}",
            _share(n, summary.pairs),
            dist,
            f"{summary.assumed.get(c, 0):,}",
        )
    return table


def path_table(summary: MatrixSummary) -> Table:
    """Pairs per path the walk found, and the verdicts each path got."""
    cats = [c for c in CATEGORIES if summary.counts.get(c)]
    table = Table(box=None, pad_edge=False, header_style="bold")
    table.add_column("path the kernel's walk finds", no_wrap=True)
    table.add_column("pairs", justify="right", no_wrap=True)
    for c in cats:
        table.add_column(_mark(c), justify="right", no_wrap=True)
    for p, name in PATHS.items():
        row = summary.by_path.get(p)
        if not row:
            continue
        cells = [f"{row[c]:,}" if row.get(c) else "" for c in cats]
        table.add_row(name, f"{sum(row.values()):,}", *cells)
    return table


def _example_text(ex: Example) -> Text:
    text = Text(f"{ex.provider} -> {ex.client} ")
    text.append_text(cell_text(ex.code, ex.distance, ex.assumed))
    return text


def host_bridge_lines(session: Session, summary: MatrixSummary) -> Text:
    """One line per host-bridge pair: its majority verdict, and the pairs that differ."""
    text = Text(
        "By host bridge, provider -> client: the verdict most pairs get, and those that differ",
        style="bold",
    )
    for block in summary.blocks[:MAX_BLOCK_LINES]:
        top = block.majority
        text.append(f"\n  {block.provider} -> {block.client}  {block.pairs:,} pairs: ")
        text.append_text(_mark(top))
        if not block.differing:
            text.append(" all")
            continue
        text.append(f" {_share(block.counts[top], block.pairs)}; differ:")
        for k, (c, n) in enumerate(block.differing.items()):
            text.append(" " if k == 0 else "; ")
            text.append_text(_mark(c))
            text.append(f" {n:,}")
            examples = block.examples.get(c, [])
            if examples:
                text.append(" (")
                for e, ex in enumerate(examples):
                    if e:
                        text.append(", ")
                    text.append_text(_example_text(ex))
                text.append(", ..." if n > len(examples) else "")
                text.append(")")
    rest = summary.blocks[MAX_BLOCK_LINES:]
    if rest:
        mixed = sum(1 for b in rest if b.differing)
        text.append(
            f"\n  and {len(rest):,} more host-bridge pairs ({mixed:,} of them mixed):"
            " --json has every pair"
        )
    return text


def _selection_size(topo: Topology, spec: str) -> int:
    try:
        return len(select(topo, spec))
    except SelectionError:
        return 0


def _switch_example(topo: Topology) -> BDF | None:
    """The largest switch (or Root Port) subtree with devices whose table fits, for a hint."""
    best: tuple[int, BDF] | None = None
    for dev in topo.devices:
        if dev.pcie_type not in (PcieType.UPSTREAM, PcieType.ROOT_PORT):
            continue
        below = topo.subtree(dev.bdf)
        n = len(below)
        if n >= 3 and fits_table(n, n) and (best is None or n > best[0]):
            best = (n, dev.bdf)
    return None if best is None else best[1]


def hints(session: Session, summary: MatrixSummary, command: str) -> Text:
    """How to get every pair, or a table: ``--json``, or rows and columns that fit."""
    topo = session.topology
    text = Text("Every pair: ", style="bold")
    text.append(
        f"{command} --json  (streamed a block of rows at a time, one pair a line:"
        f" {summary.pairs:,} pairs)",
        style="",
    )
    text.append(
        f"\nA table: choose rows and columns with --providers and --clients (at most"
        f" {TABLE_CELLS:,} cells), e.g.:",
        style="bold",
    )
    options: list[tuple[str, int, int]] = []
    for prov, cli in (("p2pmem", "devices"), ("devices", "devices"), ("gpu", "nic")):
        rows, cols = _selection_size(topo, prov), _selection_size(topo, cli)
        if rows and cols:
            options.append((f"--providers {prov} --clients {cli}", rows, cols))
    switch = _switch_example(topo)
    if switch is not None:
        n = len(topo.subtree(switch))
        options.append((f"--providers subtree:{switch} --clients subtree:{switch}", n, n))
    too_big = []
    for option, rows, cols in options:
        if fits_table(rows, cols):
            text.append(f"\n  {command} {option}  ({rows:,} x {cols:,})", style="")
        else:
            too_big.append(f"{option.replace('--providers ', '').replace(' --clients ', ' x ')}"
                           f" ({rows:,} x {cols:,})")  # fmt: skip
    if too_big:
        text.append(
            f"\n  (too big for a table here: {'; '.join(too_big)}; narrow them with BDFs,"
            " vendor:device or subtree:BDF)",
            style="",
        )
    return text


def summary_view(session: Session, summary: MatrixSummary, *, command: str) -> RenderableType:
    """Everything ``p2pview matrix`` prints for a selection too big for a table.

    ``command`` is the ``p2pview matrix SOURCE ...`` the hints add options to.
    """
    parts: list[RenderableType] = [
        header_text(session),
        Text(""),
        Text(
            f"{summary.providers:,} providers x {summary.clients:,} clients ="
            f" {summary.pairs:,} ordered pairs, more than a table of {TABLE_CELLS:,} cells:"
            " a summary.",
            style="bold",
        ),
        verdict_table(summary),
        Text(""),
        path_table(summary),
        Text(""),
        host_bridge_lines(session, summary),
        Text(""),
    ]
    if summary.devices is not None:
        parts.append(
            Text(
                "The P2P devices alone (storage, GPUs, NICs, accelerators, p2pmem"
                " providers; --providers devices --clients devices):",
                style="bold",
            )
        )
        parts.append(matrix_table(session, summary.devices))
        parts.append(Text(""))
    parts.append(legend(session, summary.devices))
    for note in session.notes:
        parts.append(Text(f"note: {note}", style="italic"))
    parts.append(Text(""))
    parts.append(hints(session, summary, command))
    return Group(*parts)


def _devices(topo: Topology) -> tuple[BDF, ...]:
    try:
        return select(topo, "devices")
    except SelectionError:
        return ()


def summary_width(session: Session, summary: MatrixSummary) -> int | None:
    """Columns the devices' table needs, so that it is never squeezed."""
    return None if summary.devices is None else matrix_width(session, summary.devices)
