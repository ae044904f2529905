"""Verdicts of a providers x clients selection a tile at a time, with memory bounded by a constant.

A screen shows a few hundred cells of a matrix that may hold 400 million
(20,000 functions). :class:`PairTiles` decides the tile of rows x columns a
cell falls in when it is first asked for (:func:`~p2pview.kernel.matrix.pair_matrix_at`
with the per-function arrays built once per kernel state), keeps the last
tiles used up to :data:`TILE_BUDGET` cells, and drops the least recently
used. With a state to compare against (:mod:`p2pview.kernel.reach`) a tile
also says which of its cells changed.

:func:`cell_stats` and :func:`cell_stats_bound` give what a column width needs
(the range of distances, whether a mark can appear) from a whole matrix, or
from per-function values without deciding any pair.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from p2pview.kernel.decision import AMD_PENALTY
from p2pview.kernel.matrix import (
    CODE_INT_ERA,
    PairMatrix,
    _host_tables,
    pair_matrix_at,
)
from p2pview.kernel.reach import EditReach, Indices, Side, changed_cells

#: Rows and columns of a tile: a screen or two of each, decided in a millisecond or two.
TILE_ROWS = 64
TILE_COLS = 256
#: Cells of all kept tiles together (about 5 bytes a cell: code, distance, two marks).
TILE_BUDGET = 1 << 21


@dataclass(frozen=True)
class Tile:
    """The cells of one tile, in the selection's order."""

    code: npt.NDArray[np.int8]
    distance: npt.NDArray[np.int16]
    assumed: npt.NDArray[np.bool_]
    #: ``None``: no cell of the tile changed.
    changed: npt.NDArray[np.bool_] | None

    @property
    def cells(self) -> int:
        """Cells held."""
        return int(self.code.size)


#: A row's cells: codes, distances, assumed flags and changed flags (``None``: none changed).
RowCells = tuple[list[int], list[int], list[bool], list[bool] | None]


class PairTiles:
    """``rows`` x ``cols`` (function indices of ``side.arrays``), decided a tile at a time.

    ``before`` and ``reach``: the state to mark changes against, and the pairs
    the edits can have changed (see :mod:`p2pview.kernel.reach`). Tile shape
    and budget default to :data:`TILE_ROWS`, :data:`TILE_COLS` and
    :data:`TILE_BUDGET` (read when the tiles are made). Safe to read from one
    thread at a time.
    """

    def __init__(
        self,
        side: Side,
        rows: Indices,
        cols: Indices,
        *,
        before: Side | None = None,
        reach: EditReach | None = None,
        tile_rows: int | None = None,
        tile_cols: int | None = None,
        budget: int | None = None,
    ) -> None:
        self.side = side
        self.rows = rows
        self.cols = cols
        self.before = before if reach is not None and not reach.nothing else None
        self.reach = reach
        self.tile_rows = max(1, TILE_ROWS if tile_rows is None else tile_rows)
        self.tile_cols = max(1, TILE_COLS if tile_cols is None else tile_cols)
        size = self.tile_rows * self.tile_cols
        self.budget = max(TILE_BUDGET if budget is None else budget, size)
        self._tiles: OrderedDict[tuple[int, int], Tile] = OrderedDict()
        self._cells = 0
        #: Tiles decided so far (for tests and benchmarks).
        self.decided = 0

    @property
    def cells_kept(self) -> int:
        """Cells of the tiles kept now (never more than :attr:`budget`)."""
        return self._cells

    def tile(self, ti: int, tj: int) -> Tile:
        """Tile ``(ti, tj)``: rows ``ti * tile_rows ...``, columns ``tj * tile_cols ...``."""
        key = (ti, tj)
        tile = self._tiles.get(key)
        if tile is not None:
            self._tiles.move_to_end(key)
            return tile
        tile = self._decide(ti, tj)
        self.decided += 1
        self._tiles[key] = tile
        self._cells += tile.cells
        while self._cells > self.budget and len(self._tiles) > 1:
            _, old = self._tiles.popitem(last=False)
            self._cells -= old.cells
        return tile

    def _decide(self, ti: int, tj: int) -> Tile:
        r = self.rows[ti * self.tile_rows : (ti + 1) * self.tile_rows]
        c = self.cols[tj * self.tile_cols : (tj + 1) * self.tile_cols]
        side = self.side
        m = pair_matrix_at(side.state, side.arrays, r, c)
        changed = None
        if self.before is not None and self.reach is not None:
            changed = changed_cells(self.before, side, self.reach, r, c, m.map_code, m.distance)
        return Tile(m.map_code, m.distance, m.assumed, changed)

    def row(self, i: int, first: int, stop: int) -> RowCells:
        """Columns ``first:stop`` of row ``i``."""
        ti, ri = divmod(i, self.tile_rows)
        codes: list[int] = []
        distances: list[int] = []
        assumed: list[bool] = []
        changed: list[bool] = []
        any_changed = False
        col = first
        while col < stop:
            tj, cj = divmod(col, self.tile_cols)
            end = min(stop - col, self.tile_cols - cj) + cj
            tile = self.tile(ti, tj)
            codes += tile.code[ri, cj:end].tolist()
            distances += tile.distance[ri, cj:end].tolist()
            assumed += tile.assumed[ri, cj:end].tolist()
            if tile.changed is None:
                changed += [False] * (end - cj)
            else:
                flags = tile.changed[ri, cj:end].tolist()
                any_changed = any_changed or any(flags)
                changed += flags
            col += end - cj
        return codes, distances, assumed, changed if any_changed else None

    def cell(self, i: int, j: int) -> tuple[int, int, bool, bool]:
        """``(code, distance, assumed, changed)`` of one cell."""
        ti, ri = divmod(i, self.tile_rows)
        tj, cj = divmod(j, self.tile_cols)
        tile = self.tile(ti, tj)
        changed = tile.changed is not None and bool(tile.changed[ri, cj])
        return (
            int(tile.code[ri, cj]),
            int(tile.distance[ri, cj]),
            bool(tile.assumed[ri, cj]),
            changed,
        )


@dataclass(frozen=True)
class CellStats:
    """What the widest cell text needs: the distances' range and the marks that can appear.

    Exact for a whole matrix (:func:`cell_stats`); a bound that no cell
    exceeds from per-function values (:func:`cell_stats_bound`).
    """

    low: int
    high: int
    #: Some cell rests on an assumption (``*``).
    assumed: bool
    #: Some cell is a v4.20-v5.3 int; every cell is.
    int_era: bool
    all_int_era: bool
    #: No cell at all.
    empty: bool = False


def cell_stats(matrix: PairMatrix) -> CellStats:
    """The exact figures of a decided matrix."""
    if matrix.distance.size == 0:
        return CellStats(0, 0, False, False, False, empty=True)
    int_era = matrix.map_code == CODE_INT_ERA
    return CellStats(
        int(matrix.distance.min()),
        int(matrix.distance.max()),
        bool(matrix.assumed.any()),
        bool(int_era.any()),
        bool(int_era.all()),
    )


def cell_stats_bound(side: Side) -> CellStats:
    """Figures no pair of ``side``'s topology exceeds, from per-function values only.

    The distance is at most both chains' lengths (``d[p] + 1 + d[c] + 1``, no
    common device), plus the v5.1-v5.3 AMD penalty; below 0 only in the int
    eras (-1, -2) and for undetermined pairs (-1). A cell can rest on an
    assumption only when some fact the matrix consults is assumed.
    """
    state, arr = side.state, side.arrays
    if len(arr.bdfs) == 0:
        return CellStats(0, 0, False, False, False, empty=True)
    profile = state.target.profile
    facts = state.topology.platform.facts
    tables = _host_tables(state, arr)
    high = 2 * int(arr.depth.max()) + 2
    if profile.int_distance and profile.amd_penalty and bool(tables.amd_root.any()):
        high += AMD_PENALTY
    undetermined = bool(arr.top_unknown.any())
    low = -2 if profile.int_distance else (-1 if undetermined else 0)
    assumed = (
        bool(arr.unknown.any())
        or bool(arr.parent_assumed.any())
        or bool(tables.wl_assumed.any())
        or (profile.cpu_check and facts.cpu.is_assumed)
        or facts.kernel.is_assumed
    )
    int_era = profile.int_distance
    return CellStats(low, high, assumed, int_era, int_era and not undetermined)
