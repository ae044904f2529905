"""Pairs whose verdict the what-if edits changed, the most relevant first.

Relevance: pairs whose provider publishes p2pmem come first, then pairs
between endpoints, then the rest; within each, a changed map type before a
changed distance alone. A function paired with itself comes last; ties go to
the better provider, then to BDF order (provider, then client).
The search looks only at the pairs the edits can reach
(:meth:`~p2pview.tui.verdicts.Comparison.blocks`), a block at a time, and
keeps the best few of each block: memory stays bounded however many changed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from textual.content import Content

from p2pview.kernel import MapType
from p2pview.kernel.matrix import CODE_TO_MAP_TYPE
from p2pview.model import BDF, Topology
from p2pview.tui.analysis import WhatIf
from p2pview.tui.presenters.explain_content import MUTED, Names
from p2pview.tui.presenters.verdict_style import MAP_TYPE_STYLES
from p2pview.tui.verdicts import Comparison

#: Weights of the relevance score.
PROVIDER_WEIGHT = 4
ENDPOINT_WEIGHT = 2
MAP_TYPE_WEIGHT = 3
#: A function with itself (its own ACS counts) comes after every other pair.
SELF_PENALTY = 100

Weights = npt.NDArray[np.int16]


@dataclass(frozen=True)
class CellValue:
    """One cell's verdict: the map type (``None`` in v4.20-v5.3) and the distance."""

    map_type: MapType | None
    distance: int

    def text(self) -> str:
        """``THRU_HOST_BRIDGE 4``, or ``distance -2`` in the int eras."""
        if self.map_type is None:
            return f"distance {self.distance}"
        return f"{self.map_type.value} {self.distance}"

    def style(self) -> str:
        """The theme style of this result."""
        if self.map_type is None:
            return "$text-success" if self.distance >= 0 else "$text-error"
        return MAP_TYPE_STYLES[self.map_type]


@dataclass(frozen=True)
class ChangedPair:
    """A (provider, client) pair and its verdict before and after the edits."""

    provider: BDF
    client: BDF
    old: CellValue
    new: CellValue
    score: int


def relevant_changes(whatif: WhatIf, limit: int = 20) -> tuple[int, list[ChangedPair]]:
    """How many pairs changed against the original, and up to ``limit`` of them, best first."""
    return changes_in(whatif.comparison, whatif.topology, limit)


def _weights(topo: Topology, bdfs: tuple[BDF, ...]) -> tuple[Weights, Weights]:
    """Per function: its weight as a provider, and as a client."""
    endpoint = np.fromiter((not topo[b].is_bridge for b in bdfs), np.bool_, len(bdfs))
    p2pmem = np.fromiter((topo[b].p2pmem is not None for b in bdfs), np.bool_, len(bdfs))
    client = (ENDPOINT_WEIGHT * endpoint).astype(np.int16)
    return client + PROVIDER_WEIGHT * p2pmem.astype(np.int16), client


#: The best score a pair can have, and the best provider weight.
_TOP_SCORE = PROVIDER_WEIGHT + 2 * ENDPOINT_WEIGHT + MAP_TYPE_WEIGHT
_TOP_ROW = PROVIDER_WEIGHT + ENDPOINT_WEIGHT


def changes_in(
    comparison: Comparison,
    topo: Topology,
    limit: int = 20,
    cancelled: Callable[[], bool] | None = None,
) -> tuple[int, list[ChangedPair]]:
    """Changed pairs among all pairs of ``comparison``, and the ``limit`` most relevant.

    Each changed pair gets one integer key that sorts as the relevance does
    (score, then provider weight, then provider and client in BDF order). Per
    block, a histogram of the keys' first part finds the few cells that can
    be among the best, so that a block where every pair changed costs no more
    than a few passes over it.
    """
    after = comparison.after
    n = after.functions
    every = np.arange(n, dtype=np.intp)
    row_weight, col_weight = _weights(topo, after.side.arrays.bdfs)
    total = 0
    kept = np.zeros((7, 0), dtype=np.int64)  # key, provider, client, old/new code and distance
    for block in comparison.blocks(every, every, cancelled):
        changed = block.changed
        count = int(changed.sum())
        total += count
        if limit <= 0 or not count:
            continue
        rows, cols = block.rows, block.cols
        rw = row_weight[rows]
        score = (
            rw[:, None]
            + col_weight[cols][None, :]
            + MAP_TYPE_WEIGHT * (block.before_code != block.after_code)
            - SELF_PENALTY * (rows[:, None] == cols[None, :])
        )
        prefix = (_TOP_SCORE - score) * (_TOP_ROW + 1) + (_TOP_ROW - rw)[:, None]
        # The smallest first part that leaves ``limit`` cells at or below it ...
        levels = np.cumsum(np.bincount(prefix[changed]))
        cut = int(np.searchsorted(levels, min(limit, count)))
        if kept.shape[1] >= limit:  # ... and none that cannot beat the worst kept
            cut = min(cut, int(kept[0].max()) // (n * n))
        ii, jj = np.nonzero(changed & (prefix <= cut))
        if not len(ii):
            continue
        key = prefix[ii, jj].astype(np.int64) * (n * n) + rows[ii] * n + cols[jj]
        found = np.stack(
            [
                key,
                rows[ii],
                cols[jj],
                block.before_code[ii, jj],
                block.before_distance[ii, jj],
                block.after_code[ii, jj],
                block.after_distance[ii, jj],
            ]
        ).astype(np.int64)
        kept = np.concatenate([kept, found], axis=1)
        kept = kept[:, _smallest(kept[0], limit)]
    kept = kept[:, np.argsort(kept[0], kind="stable")]
    bdfs = after.side.arrays.bdfs
    out = []
    for _key, i, j, old_c, old_d, new_c, new_d in kept.T.tolist():
        score = int(row_weight[i] + col_weight[j])
        score += MAP_TYPE_WEIGHT * (old_c != new_c) - SELF_PENALTY * (i == j)
        out.append(
            ChangedPair(
                bdfs[i],
                bdfs[j],
                CellValue(CODE_TO_MAP_TYPE[old_c], old_d),
                CellValue(CODE_TO_MAP_TYPE[new_c], new_d),
                score,
            )
        )
    return total, out


def _smallest(keys: npt.NDArray[np.int64], limit: int) -> npt.NDArray[np.intp]:
    """Positions of the ``limit`` smallest keys (all of them when there are fewer)."""
    if len(keys) <= limit:
        return np.arange(len(keys), dtype=np.intp)
    return np.argpartition(keys, limit - 1)[:limit]


def change_prompt(change: ChangedPair, names: Names) -> Content:
    """``1a:00.0 -> 1b:00.0  THRU_HOST_BRIDGE 4 -> BUS_ADDR 4``."""
    return Content.assemble(
        (names.bdf(change.provider), "bold"),
        (" -> ", MUTED),
        (names.bdf(change.client), "bold"),
        "  ",
        (change.old.text(), change.old.style()),
        (" -> ", MUTED),
        (change.new.text(), change.new.style()),
    )
