"""Snapshots of the topology screen (pytest-textual-snapshot).

Names come from the bundled pci.ids subset, so the frames do not depend on the
host's pci.ids. Create or approve with ``--snapshot-update`` and look at the SVGs
under ``__snapshots__/test_topology_snapshots/``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from p2pview.sources import pciids
from p2pview.tui.app import TuiArgs, make_app
from p2pview.tui.screens.topology import TopologyScreen


@pytest.fixture(autouse=True)
def bundled_names(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(pciids.ENV_VAR, "bundled")
    pciids.clear_cache()
    yield
    pciids.clear_cache()


async def wait(pilot: Pilot[None]) -> None:
    """The model loaded, every row in the tree, the cursor placed."""
    app = pilot.app
    await app.loaded()
    await pilot.pause()
    for _ in range(200):
        screen = app.screen
        if isinstance(screen, TopologyScreen) and screen.ready:
            break
        await pilot.pause(0.01)
    await pilot.pause()


def test_topology_switch_acs_iommu_120x40(snap_compare: Any) -> None:
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait)


def test_topology_switch_acs_iommu_80x24(snap_compare: Any) -> None:
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=wait)


def test_topology_switch_acs_iommu_80x24_details(snap_compare: Any) -> None:
    """The detail pane full size (v) on the downstream port above the provider."""
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(80, 24), press=["up", "v"], run_before=wait)


def test_topology_switch_acs_iommu_peer_120x40(snap_compare: Any) -> None:
    """1b:00.0 made the peer, the cursor back on 1a:00.0: the verdict THRU_HOST_BRIDGE, 4."""
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(
        app, terminal_size=(120, 40), press=["down", "down", "p", "up", "up"], run_before=wait
    )


def test_topology_hgx_8gpu_120x40(snap_compare: Any) -> None:
    app = make_app(TuiArgs("hgx-8gpu"))
    assert snap_compare(app, terminal_size=(120, 40), run_before=wait)


def test_topology_switch_acs_iommu_light_120x40(snap_compare: Any) -> None:
    """The light theme (d): every badge must stay readable."""
    app = make_app(TuiArgs("switch-acs-iommu"))
    assert snap_compare(app, terminal_size=(120, 40), press=["d", "up"], run_before=wait)


def test_topology_plain_lspci_tv_80x24(snap_compare: Any) -> None:
    # lspci -tv without -nn: IDs from names where pci.ids pins them, "IDs unknown" elsewhere
    source = str(Path(__file__).resolve().parents[1] / "data" / "names")
    app = make_app(TuiArgs(f"{source}/k80-3x-supermicro.reconstruction.tv"))

    async def settled(pilot: Pilot[None]) -> None:
        await wait(pilot)
        pilot.app.clear_notifications()  # the ACS note would cover the detail pane
        await pilot.pause()

    assert snap_compare(app, terminal_size=(80, 24), run_before=settled)
