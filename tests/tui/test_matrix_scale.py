"""Large topologies: the matrix and what-if screens in memory bounded independently of n².

Above :data:`~p2pview.tui.verdicts.WHOLE_CELLS` pairs the screens read tiles
and count changes a block at a time. Here the thresholds are lowered so that
small topologies take that road too, with tiny tiles (many of them, most
dropped again): what a user reads must be what the whole matrix shows. Then
``generated:20000`` runs in a child whose address space is capped at 1 GiB
(all pairs would need about 4 GB).
"""

from __future__ import annotations

import asyncio
import resource
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from textual.pilot import Pilot
from textual.widgets import OptionList
from tuikit import cpu, edit, kernel, loaded, start, terminal_text, text_of, undo

import p2pview.kernel.tiles as tiles_module
import p2pview.tui.screens.matrix as matrix_screen_module
import p2pview.tui.screens.whatif as whatif_screen_module
import p2pview.tui.verdicts as verdicts_module
from p2pview.kernel import pair_matrix
from p2pview.kernel.tiles import PairTiles, cell_stats
from p2pview.model import AcsPresence
from p2pview.tui.analysis import WhatIf, set_iommu, toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.matrix_data import PRESETS
from p2pview.tui.presenters.whatif_changes import relevant_changes
from p2pview.tui.screens.matrix import MatrixScreen
from p2pview.tui.screens.whatif import WhatIfScreen
from p2pview.tui.verdicts import Verdicts
from p2pview.tui.widgets.matrix_grid import MatrixGrid

TILE = (5, 7)
BUDGET = 5 * 7 * 6


def force_tiles(monkeypatch: pytest.MonkeyPatch, exact_widths: bool = False) -> None:
    """Every topology takes the large road: tiles of 5 x 7, six kept, counts in workers.

    ``exact_widths``: column widths from all pairs, as the whole matrix has them,
    so that the screen can be compared character for character.
    """
    monkeypatch.setattr(verdicts_module, "WHOLE_CELLS", 0)
    monkeypatch.setattr(matrix_screen_module, "QUICK_CELLS", 0)
    monkeypatch.setattr(whatif_screen_module, "QUICK_CELLS", 0)
    monkeypatch.setattr(tiles_module, "TILE_ROWS", TILE[0])
    monkeypatch.setattr(tiles_module, "TILE_COLS", TILE[1])
    monkeypatch.setattr(tiles_module, "TILE_BUDGET", BUDGET)
    if exact_widths:
        monkeypatch.setattr(
            verdicts_module, "cell_stats_bound", lambda side: cell_stats(pair_matrix(side.state))
        )


async def settle(app: P2PViewApp, pilot: Pilot[None]) -> None:
    """Until edits and counting workers are done and their results shown."""
    for _ in range(200):
        await app.workers.wait_for_complete()
        await pilot.pause()
        screen = app.screen
        if isinstance(screen, WhatIfScreen) and screen.busy:
            continue
        if not any(w.is_running for w in app.workers):
            return
    raise AssertionError("workers did not finish")


async def walk(app: P2PViewApp, pilot: Pilot[None]) -> list[str]:
    """What the user reads on the matrix and what-if screens along keys and edits."""
    seen: list[str] = []
    whatif = app.whatif
    assert whatif is not None

    async def look(*keys: str) -> None:
        for key in keys:
            await pilot.press(key)
        await settle(app, pilot)
        seen.append(terminal_text(app))

    await pilot.press("2")
    await look()
    for _ in range(len(PRESETS) - 1):  # every preset, Everything last
        await look("f")
    await look("pagedown", "pagedown", "ctrl+pagedown", "down", "right")
    await look("ctrl+end", "n")
    await look("ctrl+home", "n", "end", "up")
    # An ACS edit (reaches a subtree), then a CPU edit (reaches every pair).
    dev = next(d for d in whatif.topology.devices if d.acs.presence is AcsPresence.PRESENT)
    edit(app, toggle_acs_bit(dev.bdf, 0x4))
    await look("ctrl+home", "pagedown")
    await look("4")
    edit(app, cpu("amd:0x19"))
    await look("2", "ctrl+home", "down", "down")
    await look("4")
    undo(app)
    undo(app)
    await look("2")
    return seen


def run(source: str, body: object, size: tuple[int, int] = (120, 40), **args: str) -> object:
    async def main() -> object:
        app = make_app(TuiArgs(source, **args))
        app.animation_level = "none"
        async with app.run_test(size=size) as pilot:
            await loaded(app, pilot)
            return await body(app, pilot)  # type: ignore[operator]

    return asyncio.run(main())


@pytest.mark.parametrize(
    ("source", "kernel"),
    [("switch-acs-iommu", "5.17"), ("hgx-8gpu", "6.12"), ("generated:120", "")],
)
def test_tiles_show_what_the_whole_matrix_shows(
    monkeypatch: pytest.MonkeyPatch, source: str, kernel: str
) -> None:
    args = {"kernel": kernel} if kernel else {}
    whole = run(source, walk, **args)
    force_tiles(monkeypatch, exact_widths=True)
    tiled = run(source, walk, **args)
    assert isinstance(whole, list) and isinstance(tiled, list)
    assert len(whole) == len(tiled)
    for step, (a, b) in enumerate(zip(whole, tiled, strict=True)):
        assert a == b, f"step {step}"
    assert any("changed Δ" in text for text in tiled)
    assert any("pairs changed against the original" in text for text in tiled)


def test_tiles_equal_the_matrix_within_their_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    force_tiles(monkeypatch)

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, MatrixScreen)
        grid = screen.query_one(MatrixGrid)
        model = app.whatif
        assert model is not None and model.verdicts.whole is None
        state = model.session.state
        while screen.filter.title != "Everything":
            await pilot.press("f")
            await settle(app, pilot)
        view = grid.view
        assert view is not None and isinstance(view.cells, PairTiles)
        tiles = view.cells
        full = pair_matrix(state, view.providers, view.clients)
        for keys in (("pagedown",) * 3, ("ctrl+pagedown",) * 4, ("ctrl+end",), ("ctrl+home",)):
            await pilot.press(*keys)
            await settle(app, pilot)
            assert tiles.cells_kept <= BUDGET
            row = grid.cursor_row
            codes, dists, assumed, changed = view.row_cells(row, 0, view.n_cols)
            assert codes == full.map_code[row].tolist()
            assert dists == full.distance[row].tolist()
            assert assumed == full.assumed[row].tolist()
            assert changed is None
        assert tiles.decided > len(tiles._tiles)  # tiles were dropped and decided again
        # After an edit: changed marks where the verdicts differ, and only there.
        before = pair_matrix(state, view.providers, view.clients)
        for dev in model.topology.devices:  # the first ACS edit that changes a verdict
            if dev.acs.presence is not AcsPresence.PRESENT:
                continue
            edited = model.apply(toggle_acs_bit(dev.bdf, 0x4 | 0x8))
            after = pair_matrix(edited.session.state, view.providers, view.clients)
            want = (after.map_code != before.map_code) | (after.distance != before.distance)
            if want.any():
                app.whatif = edited
                break
        assert want.any()
        await settle(app, pilot)
        view = grid.view
        assert view is not None and view.marked
        for row in range(view.n_rows):
            flags = view.row_cells(row, 0, view.n_cols)[3]
            assert (flags or [False] * view.n_cols) == want[row].tolist()
        assert f"{int(want.sum()):,} changed Δ" in text_of(app, "matrix-title")

    run("generated:150", body)


def test_what_if_counts_a_block_at_a_time_as_the_whole_matrix_does(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def changes(whatif: WhatIf) -> list[tuple[int, list[object]]]:
        out = []
        dev = next(d for d in whatif.topology.devices if d.acs.presence is AcsPresence.PRESENT)
        for change in (
            toggle_acs_bit(dev.bdf, 0x4),
            cpu("amd:0x19"),
            set_iommu(False),
            kernel("5.4"),
        ):
            whatif = whatif.apply(change)
            total, found = relevant_changes(whatif, 30)
            out.append((total, list(found)))
        return out

    seen = []

    for source in ("switch-acs-iommu", "hgx-8gpu", "generated:200"):
        whole = changes(start(source, kernel="5.17").whatif)
        with monkeypatch.context() as patch:
            patch.setattr(verdicts_module, "WHOLE_CELLS", 0)
            whatif = start(source, kernel="5.17").whatif
            assert whatif.verdicts.whole is None
            streamed = changes(whatif)
        assert streamed == whole
        seen += [total for total, _ in whole]
    assert len([t for t in seen if t]) >= 6, seen


def test_what_if_screen_says_it_is_counting_then_shows_the_count(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an int, no map type: every pair changes
    expected = start("generated:200").whatif.apply(kernel("4.20"))
    total, _found = relevant_changes(expected, 30)
    assert total == 40_000
    force_tiles(monkeypatch)

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("4")
        await settle(app, pilot)
        screen = app.screen
        assert isinstance(screen, WhatIfScreen)
        edit(app, kernel("4.20"))
        counting = text_of(app, "changes-count")
        assert "Counting and listing the pairs the edits changed among 40,000" in counting
        # never a count over an empty list: the count and the pairs come together
        changes_list = screen.query_one("#changes-list", OptionList)
        assert not changes_list.display
        await settle(app, pilot)
        assert f"{total:,} of 40,000 pairs changed" in text_of(app, "changes-count")
        assert changes_list.display and changes_list.option_count == 30

    run("generated:200", body)


CHILD = textwrap.dedent(
    """
    import asyncio, resource, sys, time
    sys.path.insert(0, {tests!r})
    from tuikit import loaded, text_of
    from p2pview.model import AcsPresence
    from p2pview.tui.analysis import toggle_acs_bit
    from p2pview.tui.app import TuiArgs, make_app

    async def main():
        app = make_app(TuiArgs("generated:20000"))
        app.animation_level = "none"
        async with app.run_test(size=(120, 40)) as pilot:
            await loaded(app, pilot)
            model = app.whatif
            assert model.verdicts.whole is None
            for key in "2345":
                await pilot.press(key)
                await app.workers.wait_for_complete()
                await pilot.pause()
            await pilot.press("2")
            await pilot.pause()
            for _ in range(3):
                await pilot.press("f")
                await pilot.pause()
            assert app.screen.filter.title == "Everything"
            view = app.screen.grid.view
            assert (view.n_rows, view.n_cols) == (20000, 20000)
            await pilot.press("pagedown", "ctrl+pagedown", "ctrl+end", "n", "up", "enter")
            await pilot.pause()
            assert app.current_mode == "explain"
            await pilot.press("4")
            await pilot.pause()
            dev = next(d for d in model.topology.devices
                       if d.acs.presence is AcsPresence.PRESENT and d.parent is not None)
            app.whatif = model.apply(toggle_acs_bit(dev.bdf, 0x4 | 0x8))
            await app.workers.wait_for_complete()
            await pilot.pause()
            print(text_of(app, "changes-count"))
            await pilot.press("2", "ctrl+home")
            await app.workers.wait_for_complete()
            await pilot.pause()
            print(text_of(app, "matrix-title"))
            print("kept", view.cells.cells_kept, app.screen.grid.view.cells.cells_kept)

    asyncio.run(main())
    """
)


def test_generated_20000_in_one_gib_of_address_space() -> None:
    """Every screen, the Everything filter, an edit: all within 1 GiB (all pairs need 4 GB)."""
    limit = 1 << 30

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))

    tests = str(Path(__file__).parent.parent)
    result = subprocess.run(
        [sys.executable, "-c", CHILD.format(tests=tests)],
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=cap,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    lines = result.stdout.splitlines()
    assert lines[0].endswith("of 400,000,000 pairs changed against the original:"), lines
    assert "providers all (20,000) x clients all (20,000)" in lines[1]
    assert "changed Δ" in lines[1]
    kept = [int(x) for x in lines[2].split()[1:]]
    assert all(0 < k <= tiles_module.TILE_BUDGET for k in kept)


def test_verdicts_of_a_small_topology_are_whole_and_of_a_large_one_are_not(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = start("switch-acs-iommu").whatif
    assert model.verdicts.whole is not None
    monkeypatch.setattr(verdicts_module, "WHOLE_CELLS", 10)
    big = Verdicts.of(model.session)
    assert big.whole is None and big.pairs == len(model.topology.bdfs) ** 2
    assert np.array_equal(big.indices(model.topology.bdfs[:3]), np.arange(3))
