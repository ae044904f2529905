"""A session's verdicts as the screens read them, and the edited ones against the original.

Plain Python and numpy (no Textual). Up to :data:`WHOLE_CELLS` pairs (2,048
functions) every pair is decided at once and kept, as before; above that
nothing of the size of all pairs is ever allocated: the matrix screen decides
the tiles it shows (:class:`~p2pview.kernel.tiles.PairTiles`) and changes are
looked for only among the pairs an edit can reach, a block at a time
(:mod:`p2pview.kernel.reach`). A :class:`Comparison` is immutable, so a
thread worker can count with it while the user edits on.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from p2pview.kernel import PairMatrix, chain_arrays, pair_matrix
from p2pview.kernel.matrix import pair_matrix_at
from p2pview.kernel.reach import (
    ChangedBlock,
    EditReach,
    Side,
    blocks,
    changed_blocks,
    edit_reach,
    no_reach,
    rectangles,
)
from p2pview.kernel.tiles import CellStats, PairTiles, cell_stats, cell_stats_bound
from p2pview.model import BDF
from p2pview.session import Session

#: All pairs of a topology are decided at once (and kept, as loaded and as edited) up to
#: this many (2,048 functions); above it the screens decide what they show.
WHOLE_CELLS = 1 << 22
#: Pairs compared on the UI thread at most; more are counted in a thread worker.
QUICK_CELLS = 1 << 19

Indices = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class Verdicts:
    """One session's verdicts.

    ``whole``: every pair, when there are at most :data:`WHOLE_CELLS`;
    ``stats``: what column widths need (exact with ``whole``, else a bound).
    """

    side: Side
    whole: PairMatrix | None
    stats: CellStats

    @classmethod
    def of(cls, session: Session) -> Verdicts:
        """Build the per-function arrays, and decide every pair when they are few."""
        state = session.state
        side = Side(state, chain_arrays(state))
        n = len(side.arrays.bdfs)
        if n * n <= WHOLE_CELLS:
            whole = pair_matrix(state, arrays=side.arrays)
            return cls(side, whole, cell_stats(whole))
        # Deciding one pair builds what every tile needs once per state (the alternative
        # kernel states when the release is assumed): here, in the load or edit worker,
        # rather than on the UI thread when the first tile is drawn.
        first = np.zeros(1, dtype=np.intp)
        pair_matrix_at(state, side.arrays, first, first)
        return cls(side, None, cell_stats_bound(side))

    @property
    def functions(self) -> int:
        """Functions in the topology."""
        return len(self.side.arrays.bdfs)

    @property
    def pairs(self) -> int:
        """Pairs in the topology (every function with every function)."""
        return self.functions * self.functions

    def indices(self, bdfs: tuple[BDF, ...]) -> Indices:
        """Function indices (:class:`~p2pview.kernel.matrix.ChainArrays` order) of ``bdfs``."""
        index = self.side.arrays.index
        return np.fromiter((index[b] for b in bdfs), np.intp, len(bdfs))


@dataclass(frozen=True)
class WholeCells:
    """Cells of a whole matrix through index arrays (no copy): ``matrix[rows[i], cols[j]]``."""

    matrix: PairMatrix
    rows: Indices
    cols: Indices
    changed: Bools | None

    def row(
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

    def cell(self, row: int, col: int) -> tuple[int, int, bool, bool]:
        """``(map code, distance, assumed, changed)`` of one cell."""
        i, j = int(self.rows[row]), int(self.cols[col])
        m = self.matrix
        changed = self.changed is not None and bool(self.changed[i, j])
        return int(m.map_code[i, j]), int(m.distance[i, j]), bool(m.assumed[i, j]), changed


def _take(a: np.ndarray, rows: Indices, cols: Indices) -> np.ndarray:
    """``a[rows][:, cols]``, without copying a side taken whole and in order."""
    if len(rows) != a.shape[0] or not bool((rows == np.arange(len(rows))).all()):
        a = a.take(rows, axis=0)
    if len(cols) != a.shape[1] or not bool((cols == np.arange(len(cols))).all()):
        a = a.take(cols, axis=1)
    return a


@dataclass(frozen=True)
class Comparison:
    """The verdicts as edited (``after``) against the original (``before``).

    ``reach``: the pairs the edits can have changed; ``changed``: with whole
    matrices, the cells that did (``None``: none did, or no whole matrices).
    """

    before: Verdicts
    after: Verdicts
    reach: EditReach
    changed: Bools | None

    @classmethod
    def same(cls, verdicts: Verdicts) -> Comparison:
        """No edit."""
        return cls(verdicts, verdicts, no_reach(verdicts.side.arrays), None)

    @classmethod
    def between(cls, before: Verdicts, after: Verdicts) -> Comparison:
        """``after`` against ``before``: the pairs an edit can reach, the changed cells if whole."""
        if after is before:
            return cls.same(before)
        reach = edit_reach(before.side, after.side)
        changed: Bools | None = None
        a, b = after.whole, before.whole
        if a is not None and b is not None and not reach.nothing:
            diff: Bools = (a.map_code != b.map_code) | (a.distance != b.distance)
            changed = diff if bool(diff.any()) else None
        return cls(before, after, reach, changed)

    @property
    def whole(self) -> bool:
        """Both sides are decided whole: the changed cells are known."""
        return self.before.whole is not None and self.after.whole is not None

    @property
    def marked(self) -> bool:
        """Some cell may carry the changed mark (the mark then takes a cell in every column)."""
        return self.changed is not None if self.whole else not self.reach.nothing

    def cost(self, rows: Indices, cols: Indices) -> int:
        """Pairs of ``rows`` x ``cols`` that must be decided to find the changed ones."""
        if self.whole or self.reach.nothing:
            return 0
        return sum(len(r) * len(c) for r, c in rectangles(self.reach, rows, cols))

    def blocks(
        self, rows: Indices, cols: Indices, cancelled: Callable[[], bool] | None = None
    ) -> Iterator[ChangedBlock]:
        """Every pair of ``rows`` x ``cols`` (function indices) the edits can have changed.

        Sliced from the whole matrices when they are kept, else decided a block
        at a time; ``cancelled`` is asked between blocks.
        """
        before, after = self.before, self.after
        if before.whole is None or after.whole is None:
            yield from changed_blocks(
                before.side, after.side, self.reach, rows, cols, cancelled=cancelled
            )
            return
        changed, old, new = self.changed, before.whole, after.whole
        if changed is None:
            return
        for rect in rectangles(self.reach, rows, cols):
            for r_pos, c_pos in blocks(rect):
                r, c = rows[r_pos], cols[c_pos]
                yield ChangedBlock(
                    r,
                    c,
                    _take(changed, r, c),
                    _take(old.map_code, r, c),
                    _take(old.distance, r, c),
                    _take(new.map_code, r, c),
                    _take(new.distance, r, c),
                )

    def count(
        self, rows: Indices, cols: Indices, cancelled: Callable[[], bool] | None = None
    ) -> int:
        """Pairs of ``rows`` x ``cols`` whose map type or distance the edits changed."""
        if self.whole:
            return 0 if self.changed is None else int(_take(self.changed, rows, cols).sum())
        return sum(b.count for b in self.blocks(rows, cols, cancelled))

    def cells(self, rows: Indices, cols: Indices) -> WholeCells | PairTiles:
        """What the matrix screen reads for ``rows`` x ``cols``: whole slices, or tiles."""
        after = self.after
        if after.whole is not None:
            return WholeCells(after.whole, rows, cols, self.changed)
        return PairTiles(after.side, rows, cols, before=self.before.side, reach=self.reach)
