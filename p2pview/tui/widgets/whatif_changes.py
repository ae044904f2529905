"""Pairs whose verdict the what-if edits changed, the most relevant first.

Relevance: pairs whose provider publishes p2pmem come first, then pairs
between endpoints, then the rest; within each, a changed map type before a
changed distance alone. A function paired with itself comes last.
The search stays cheap on thousands of functions: it looks at a bounded
number of rows, best rows first, instead of sorting every changed cell.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from textual.content import Content

from p2pview.kernel import MapType, PairMatrix
from p2pview.model import BDF
from p2pview.tui.model import TuiModel
from p2pview.tui.widgets.explain_content import MUTED, Names
from p2pview.tui.widgets.verdict_style import MAP_TYPE_STYLES

#: Weights of the relevance score.
PROVIDER_WEIGHT = 4
ENDPOINT_WEIGHT = 2
MAP_TYPE_WEIGHT = 3
#: A function with itself (its own ACS counts) comes after every other pair.
SELF_PENALTY = 100


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


def _cell(matrix: PairMatrix, i: int, j: int) -> CellValue:
    return CellValue(matrix.map_type(i, j), int(matrix.distance[i, j]))


def relevant_changes(model: TuiModel, limit: int = 20) -> tuple[int, list[ChangedPair]]:
    """How many cells changed against the original, and up to ``limit`` of them, best first."""
    new, old = model.matrix, model.original_matrix
    if new.providers != old.providers or new.clients != old.clients:
        return int(np.prod(new.map_code.shape)), []
    changed = model.changed_cells()
    total = int(changed.sum())
    if total == 0 or limit <= 0:
        return total, []
    topo = model.topology
    row_weight = np.fromiter(
        (
            (PROVIDER_WEIGHT if topo[b].p2pmem is not None else 0)
            + (ENDPOINT_WEIGHT if not topo[b].is_bridge else 0)
            for b in new.providers
        ),
        np.int16,
        len(new.providers),
    )
    col_weight = np.fromiter(
        (ENDPOINT_WEIGHT if not topo[b].is_bridge else 0 for b in new.clients),
        np.int16,
        len(new.clients),
    )
    type_changed = new.map_code != old.map_code
    client_column = {bdf: j for j, bdf in enumerate(new.clients)}
    best_bonus = ENDPOINT_WEIGHT + MAP_TYPE_WEIGHT
    rows_with_changes = np.flatnonzero(changed.any(axis=1))
    # Best rows first; stop when no later row can beat the limit-th best score found.
    order = rows_with_changes[np.argsort(-row_weight[rows_with_changes], kind="stable")]
    found: list[ChangedPair] = []
    for i in order.tolist():
        weight = int(row_weight[i])
        if len(found) >= limit and weight + best_bonus <= found[limit - 1].score:
            break
        cols = np.flatnonzero(changed[i])
        scores = (col_weight[cols] + MAP_TYPE_WEIGHT * type_changed[i, cols]).astype(np.int32)
        self_column = client_column.get(new.providers[i])
        if self_column is not None:
            scores[cols == self_column] -= SELF_PENALTY
        best = cols[np.argsort(-scores, kind="stable")[:limit]]
        for j in best.tolist():
            score = weight + int(col_weight[j]) + MAP_TYPE_WEIGHT * int(type_changed[i, j])
            if j == self_column:
                score -= SELF_PENALTY
            found.append(
                ChangedPair(
                    new.providers[i], new.clients[j], _cell(old, i, j), _cell(new, i, j), score
                )
            )
        found.sort(key=lambda c: -c.score)
        del found[limit:]
    return total, found


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
