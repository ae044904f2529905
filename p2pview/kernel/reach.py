"""Which pairs a what-if edit can change, and their verdicts before and after, a block at a time.

Comparing an edited topology with the original pair by pair would need two
all-pairs matrices (about 10 bytes a cell each: 4 GB apiece at 20,000
functions). Most edits reach few pairs, and the vectorised matrix
(:mod:`p2pview.kernel.matrix`, spec section 3.1) says which: the map type and
the distance of (p, c) depend only on

* per-function values along the two upstream chains: depth, whether the
  function's ACS redirects, whether what is above the chain is unknown, and
  the host bridge; the common upstream device is the deepest function both
  chains hold, so its values are among them;
* the whitelist answers (``host_bridge_whitelist()``, v5.1-v5.3
  ``root_complex_whitelist()``) for the two host bridges;
* the era's rules (an int or a map type, the AMD penalty) and
  ``cpu_supports_p2pdma()``, for every pair.

So an ACS edit on function u can change only pairs with u on a chain (the
kernel counts u only on the path it walks, a subset), and a host bridge's new
IDs only pairs below that host bridge; a new CPU or kernel era can change any.
:func:`edit_reach` finds the functions whose chain or host bridge changed;
:func:`changed_blocks` compares the two states only on pairs with such a
function on one side, in blocks of a bounded number of cells.

"Changed" is the map type or the distance, as the TUI marks it; whether a
verdict rests on an assumption (``*``) is not compared.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from p2pview.kernel.decision import KernelState
from p2pview.kernel.matrix import ChainArrays, _host_tables, pair_matrix_at

Indices = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]

#: Cells compared at once (two states, about 40 bytes a cell while a block is decided).
BLOCK_CELLS = 1 << 20


@dataclass(frozen=True)
class Side:
    """One kernel state and its per-function arrays (built once, used for every block)."""

    state: KernelState
    arrays: ChainArrays


@dataclass(frozen=True)
class EditReach:
    """The pairs whose map type or distance an edit may have changed.

    ``everything``: any pair (the era's rules, the CPU check or the tree
    changed). Otherwise a pair may have changed only when ``touched`` is set
    for its provider or its client (indices as in :class:`ChainArrays`).
    """

    everything: bool
    touched: Bools

    @property
    def nothing(self) -> bool:
        """No pair can have changed."""
        return not self.everything and not bool(self.touched.any())

    @property
    def touched_count(self) -> int:
        """Functions whose pairs may have changed (all of them for ``everything``)."""
        return len(self.touched) if self.everything else int(self.touched.sum())


def no_reach(arrays: ChainArrays) -> EditReach:
    """The reach of no edit at all."""
    return EditReach(False, np.zeros(len(arrays.bdfs), dtype=np.bool_))


def edit_reach(before: Side, after: Side) -> EditReach:
    """The pairs an edit from ``before`` to ``after`` can have changed (see the module notes)."""
    b, a = before.arrays, after.arrays
    n = len(a.bdfs)
    if before.state is after.state:
        return no_reach(a)
    everything = EditReach(True, np.ones(n, dtype=np.bool_))
    if b.bdfs != a.bdfs or not all(
        np.array_equal(x, y)
        for x, y in (
            (b.preorder, a.preorder),
            (b.end, a.end),
            (b.depth, a.depth),
            (b.host_bridge, a.host_bridge),
        )
    ):
        return everything
    bp, ap = before.state.target.profile, after.state.target.profile
    if (bp.int_distance, bp.amd_penalty, before.state.cpu_supports) != (
        ap.int_distance,
        ap.amd_penalty,
        after.state.cpu_supports,
    ):
        return everything
    changed = (b.redirect != a.redirect) | (b.top_unknown != a.top_unknown)
    bt, at = _host_tables(before.state, b), _host_tables(after.state, a)
    bridges = (bt.same_ok != at.same_ok) | (bt.diff_ok != at.diff_ok) | (bt.amd_root != at.amd_root)
    touched = _below(a, np.flatnonzero(changed))
    if bridges.any():
        touched |= bridges[a.host_bridge]
    return EditReach(False, touched)


def _below(arr: ChainArrays, functions: Indices) -> Bools:
    """Functions with one of ``functions`` on their upstream chain (themselves included)."""
    n = len(arr.bdfs)
    # Each subtree is the preorder interval [pos, end): mark the intervals at once.
    edges = np.zeros(n + 1, dtype=np.intp)
    np.add.at(edges, arr.pos[functions], 1)
    np.add.at(edges, arr.end[functions], -1)
    covered: Bools = np.cumsum(edges[:n]) > 0
    return covered[arr.pos]


def rectangles(reach: EditReach, rows: Indices, cols: Indices) -> list[tuple[Indices, Indices]]:
    """Positions in ``rows`` x ``cols`` (function indices) covering every pair ``reach`` allows.

    Touched rows with every column, then the other rows with the touched
    columns; nothing outside them can have changed.
    """
    every_row = np.arange(len(rows), dtype=np.intp)
    every_col = np.arange(len(cols), dtype=np.intp)
    if reach.everything:
        return [(every_row, every_col)]
    if reach.nothing:
        return []
    by_row, by_col = reach.touched[rows], reach.touched[cols]
    out = [(np.flatnonzero(by_row), every_col), (np.flatnonzero(~by_row), np.flatnonzero(by_col))]
    return [(r, c) for r, c in out if len(r) and len(c)]


def blocks(
    rect: tuple[Indices, Indices], block_cells: int = BLOCK_CELLS
) -> Iterator[tuple[Indices, Indices]]:
    """A rectangle cut into blocks of whole rows (of whole columns when one row is too wide)."""
    r, c = rect
    if len(c) > block_cells:
        for i in r.tolist():
            for start in range(0, len(c), block_cells):
                yield np.array([i], dtype=np.intp), c[start : start + block_cells]
        return
    step = max(1, block_cells // max(1, len(c)))
    for start in range(0, len(r), step):
        yield r[start : start + step], c


@dataclass(frozen=True)
class ChangedBlock:
    """Pairs of a block of ``rows`` x ``cols`` (function indices): which changed, and how.

    Rows and columns are in preorder (the order the matrix decides them in),
    not in the order asked for; callers that need an order use the indices.
    """

    rows: Indices
    cols: Indices
    changed: Bools
    before_code: npt.NDArray[np.int8]
    before_distance: npt.NDArray[np.int16]
    after_code: npt.NDArray[np.int8]
    after_distance: npt.NDArray[np.int16]

    @property
    def count(self) -> int:
        """Changed pairs in the block."""
        return int(self.changed.sum())


def changed_blocks(
    before: Side,
    after: Side,
    reach: EditReach,
    rows: Indices,
    cols: Indices,
    *,
    block_cells: int = BLOCK_CELLS,
    cancelled: Callable[[], bool] | None = None,
) -> Iterator[ChangedBlock]:
    """Both states' verdicts on every pair of ``rows`` x ``cols`` that ``reach`` allows.

    ``rows`` and ``cols`` are function indices (:class:`ChainArrays` order, the
    same in both states: an edit changes no function). At most ``block_cells``
    pairs are decided at once; ``cancelled`` is asked between blocks.
    """
    for rect in rectangles(reach, rows, cols):
        for r_pos, c_pos in blocks(rect, block_cells):
            if cancelled is not None and cancelled():
                return
            r, c = rows[r_pos], cols[c_pos]
            # Decide in preorder: the matrix then has nothing to put back in order.
            r = r[np.argsort(after.arrays.pos[r], kind="stable")]
            c = c[np.argsort(after.arrays.pos[c], kind="stable")]
            new = pair_matrix_at(after.state, after.arrays, r, c, kernel_step=False)
            old = pair_matrix_at(before.state, before.arrays, r, c, kernel_step=False)
            changed = (new.map_code != old.map_code) | (new.distance != old.distance)
            yield ChangedBlock(
                r, c, changed, old.map_code, old.distance, new.map_code, new.distance
            )


def changed_cells(
    before: Side,
    after: Side,
    reach: EditReach,
    rows: Indices,
    cols: Indices,
    after_code: npt.NDArray[np.int8],
    after_distance: npt.NDArray[np.int16],
) -> Bools | None:
    """Which cells of an already decided ``rows`` x ``cols`` block changed (``None``: none).

    ``after_code`` and ``after_distance`` are ``after``'s verdicts in that
    order; only the pairs ``reach`` allows are decided again in ``before``.
    """
    out: Bools | None = None
    for r_pos, c_pos in rectangles(reach, rows, cols):
        old = pair_matrix_at(
            before.state, before.arrays, rows[r_pos], cols[c_pos], kernel_step=False
        )
        ix = np.ix_(r_pos, c_pos)
        diff = (after_code[ix] != old.map_code) | (after_distance[ix] != old.distance)
        if diff.any():
            if out is None:
                out = np.zeros(after_code.shape, dtype=np.bool_)
            out[ix] = diff
    return out
