"""Snapshots of the explain and what-if screens (pytest-textual-snapshot).

Update with ``pytest tests/tui/test_explain_whatif_snapshots.py --snapshot-update``
and look at the SVGs before trusting them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, cast

from textual.pilot import Pilot

from p2pview.model import BDF
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.screens.whatif import WhatIfScreen

SnapCompare = Callable[..., bool]
PAIR = (BDF.parse("0000:1a:00.0"), BDF.parse("0000:1b:00.0"))


def explain_pair(
    pair: tuple[BDF, BDF], keys: tuple[str, ...] = ()
) -> Callable[[Pilot[Any]], Awaitable[None]]:
    """A ``run_before``: wait for the load, choose ``pair``, press ``keys`` and let edits finish.

    The keys are pressed here rather than through ``press=`` because what-if
    edits run in a thread worker, which ``pilot.pause()`` does not wait for.
    """

    async def run_before(pilot: Pilot[Any]) -> None:
        app = cast(P2PViewApp, pilot.app)
        for _ in range(200):  # the loading worker may not have started yet
            await app.loaded()
            await pilot.pause()
            if app.whatif is not None:
                break
        assert app.whatif is not None
        app.select(pair=pair)
        await pilot.pause()
        for key in keys:
            await pilot.press(key)
            for _ in range(200):  # until the edit's worker ran and its result was adopted
                await app.loaded()
                await pilot.pause()
                screen = app.screen
                if not (isinstance(screen, WhatIfScreen) and screen.busy):
                    break

    return run_before


def test_explain_switch_acs_iommu_120x40(snap_compare: SnapCompare) -> None:
    assert snap_compare(
        make_app(TuiArgs("switch-acs-iommu")),
        terminal_size=(120, 40),
        press=["3"],
        run_before=explain_pair(PAIR),
    )


def test_explain_switch_acs_iommu_80x24(snap_compare: SnapCompare) -> None:
    assert snap_compare(
        make_app(TuiArgs("switch-acs-iommu")),
        terminal_size=(80, 24),
        press=["3"],
        run_before=explain_pair(PAIR),
    )


def test_whatif_after_one_acs_toggle_120x40(snap_compare: SnapCompare) -> None:
    # RR of the provider's downstream port 19:00.0: CR still redirects.
    assert snap_compare(
        make_app(TuiArgs("switch-acs-iommu")),
        terminal_size=(120, 40),
        run_before=explain_pair(PAIR, ("4", "down", "space")),
    )


def test_whatif_changed_pairs_80x24(snap_compare: SnapCompare) -> None:
    # RR and CR off on both downstream ports: the NVMe pairs become BUS_ADDR.
    keys = ("4", "down", "space", "right", "space", "down", "space", "left", "space")
    assert snap_compare(
        make_app(TuiArgs("switch-acs-iommu")),
        terminal_size=(80, 24),
        run_before=explain_pair(PAIR, keys),
    )


def test_explain_after_what_if_edits_120x40(snap_compare: SnapCompare) -> None:
    keys = ("4", "down", "space", "right", "space", "down", "space", "left", "space", "3")
    assert snap_compare(
        make_app(TuiArgs("switch-acs-iommu")),
        terminal_size=(120, 40),
        run_before=explain_pair(PAIR, keys),
    )
