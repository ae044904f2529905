"""Snapshots of the matrix screen (pytest-textual-snapshot; `--snapshot-update` to renew)."""

from __future__ import annotations

from typing import Any, cast

import tuikit
from textual.pilot import Pilot

from p2pview.tui.app import P2PViewApp, TuiArgs, make_app


async def wait(pilot: Pilot[Any]) -> None:
    """Let the load worker finish and the topology screen settle."""
    await pilot.app.loaded()
    await pilot.pause()


def test_matrix_switch_acs_iommu_120x40(snap_compare: Any) -> None:
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(120, 40), press=["2"], run_before=wait)


def test_matrix_switch_acs_iommu_80x24(snap_compare: Any) -> None:
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(80, 24), press=["2"], run_before=wait)


def test_matrix_hgx_8gpu_120x40(snap_compare: Any) -> None:
    app = make_app(TuiArgs("hgx-8gpu"))
    assert snap_compare(app, terminal_size=(120, 40), press=["2"], run_before=wait)


def test_matrix_hgx_8gpu_nvidia_labels_120x40(snap_compare: Any) -> None:
    app = make_app(TuiArgs("hgx-8gpu"))
    keys = ["2", "ctrl+home", "down", "right", "n"]
    assert snap_compare(app, terminal_size=(120, 40), press=keys, run_before=wait)


def test_matrix_changed_marks_80x24(snap_compare: Any) -> None:
    """After a what-if edit (CPU to AMD Zen 3 on 5.17), changed cells carry the mark."""

    async def edit(pilot: Pilot[Any]) -> None:
        await wait(pilot)
        app = cast(P2PViewApp, pilot.app)
        tuikit.edit(app, tuikit.cpu("amd:0x19"))
        await pilot.pause()

    app = make_app(TuiArgs("switch-acs-iommu", kernel="5.17"))
    assert snap_compare(
        app, terminal_size=(80, 24), press=["2", "ctrl+home", "down"], run_before=edit
    )
