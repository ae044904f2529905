"""The matrix screen, driven with Textual's Pilot; and the plain parts behind it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from textual.pilot import Pilot
from textual.widgets import Static
from tuikit import cpu, edit, undo

from p2pview.kernel.matrix import CODE_BUS_ADDR, CODE_INT_ERA, CODE_NOT_SUPPORTED
from p2pview.model import BDF
from p2pview.model.select import select
from p2pview.sources import load_source
from p2pview.sources.bundled import bundled_path
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.presenters.matrix_data import (
    CHANGED_MARK,
    PRESETS,
    MatrixFilter,
    NvLabels,
    kernel_text,
    parse_filter,
)
from p2pview.tui.screens.matrix import MatrixScreen
from p2pview.tui.widgets.matrix_grid import MatrixGrid

Scenario = Callable[[P2PViewApp, Pilot[None], MatrixScreen], Awaitable[None]]


def drive(source: str, scenario: Scenario, size: tuple[int, int] = (120, 40), **args: str) -> None:
    """Load ``source``, open the matrix screen and run ``scenario`` on it."""

    async def main() -> None:
        app = make_app(TuiArgs(source, **args))
        async with app.run_test(size=size) as pilot:
            await app.loaded()
            await pilot.pause()
            await pilot.press("2")
            await pilot.pause()
            screen = app.screen
            assert isinstance(screen, MatrixScreen)
            await scenario(app, pilot, screen)

    asyncio.run(main())


def grid_of(screen: MatrixScreen) -> MatrixGrid:
    return screen.query_one(MatrixGrid)


def grid_text(grid: MatrixGrid) -> str:
    """What the grid shows, as plain text."""
    return "\n".join(grid.render_line(y).text for y in range(grid.size.height))


def static_text(screen: MatrixScreen, selector: str) -> str:
    content = screen.query_one(selector, Static).visual
    return getattr(content, "plain", str(content))


def B(text: str) -> BDF:
    return BDF.parse(text)


# -- the screen -------------------------------------------------------------------------


def test_shows_every_endpoint_pair_with_the_kernels_cells() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        view = grid.view
        assert view is not None and app.whatif is not None
        endpoints = select(app.whatif.topology, "endpoint")
        assert tuple(view.provider(i) for i in range(view.n_rows)) == endpoints
        assert tuple(view.client(j) for j in range(view.n_cols)) == endpoints
        text = grid_text(grid)
        assert "provider ↓" in text and "client →" in text
        assert "1a:00.0 nvme" in text  # a row label: BDF and short name
        assert "T4" in text and "B0" in text and "T6" in text
        assert "Endpoints" in static_text(screen, "#matrix-title")
        assert "BUS_ADDR" in static_text(screen, "#matrix-legend")

    drive("switch-acs-iommu", scenario)


def test_cursor_moves_with_arrows_pages_home_and_end() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        view = grid.view
        assert view is not None
        await pilot.press("ctrl+home")
        assert (grid.cursor_row, grid.cursor_col) == (0, 0)
        await pilot.press("right", "right", "down")
        assert (grid.cursor_row, grid.cursor_col) == (1, 2)
        await pilot.press("left", "up", "up")  # up at the top stays
        assert (grid.cursor_row, grid.cursor_col) == (0, 1)
        await pilot.press("end")
        assert grid.cursor_col == view.n_cols - 1
        await pilot.press("home")
        assert grid.cursor_col == 0
        await pilot.press("pagedown")
        assert grid.cursor_row > 5
        await pilot.press("ctrl+end")
        assert (grid.cursor_row, grid.cursor_col) == (view.n_rows - 1, view.n_cols - 1)
        await pilot.press("pageup", "pageup", "pageup")
        assert grid.cursor_row == 0
        # The cursor's cell stays on screen: the grid scrolled back to the top.
        assert grid.scroll_offset.y == 0
        await pilot.pause()
        provider, client = view.provider(0), view.client(view.n_cols - 1)
        status = static_text(screen, "#matrix-status")
        assert f"provider {provider.short()}" in status
        assert f"client {client.short()}" in status
        assert app.whatif is not None
        verdict = app.whatif.verdict(provider, client)
        assert verdict.map_type is not None and verdict.map_type.value in status

    drive("hgx-8gpu", scenario, size=(80, 24))


def test_cursor_scrolls_into_view_and_header_stays() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        await pilot.press("ctrl+end")
        await pilot.pause()
        assert grid.scroll_offset.y > 0 and grid.scroll_offset.x > 0
        lines = grid_text(grid).splitlines()
        assert lines[0].startswith(" client →") and lines[1].startswith(" provider ↓")
        view = grid.view
        assert view is not None
        last = view.client(view.n_cols - 1).short()
        assert last in lines[1]  # the last column's header is on screen
        assert view.provider(view.n_rows - 1).short() in "\n".join(lines[2:])

    drive("hgx-8gpu", scenario, size=(80, 24))


@pytest.mark.parametrize("size", [(120, 40), (160, 20), (80, 24)])
def test_the_first_rows_and_columns_stay_in_view_when_the_cursor_fits(size) -> None:
    # The view arrived before the grid's first layout, and the cursor's cell was scrolled
    # to the top left corner: hgx-8gpu opened without its first column (and, 20 lines
    # high, its first five rows) although the cursor's cell fitted beside them.
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        view = grid.view
        assert view is not None and grid.cursor == (5, 1)
        assert tuple(grid.scroll_offset) == (0, 0)
        lines = grid_text(grid).splitlines()
        assert view.client(0).short() in lines[1]
        assert lines[2].startswith(view.provider(0).short())

    drive("hgx-8gpu", scenario, size=size)


def test_enter_opens_the_explanation_of_the_highlighted_pair() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        await pilot.press("ctrl+home", "down", "down", "right", "right", "right")
        expected = grid.cursor_pair
        assert expected is not None and expected[0] != expected[1]
        await pilot.press("enter")
        await pilot.pause()
        assert app.current_mode == "explain"
        assert app.whatif is not None and app.selection.pair == expected
        await pilot.press("2")
        await pilot.pause()
        assert app.screen is screen and grid.cursor_pair == expected  # the cursor stayed

    drive("switch-acs-iommu", scenario)


def test_cursor_follows_a_pair_picked_on_another_screen_and_survives_reload() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        model = app.whatif
        assert model is not None
        pair = (B("9c:00.0"), B("a4:00.0"))
        app.select(pair=pair)
        await pilot.pause()
        assert grid.cursor_pair == pair
        assert "provider 9c:00.0" in static_text(screen, "#matrix-status")
        await pilot.press("r")  # reload: a new analysis, the view is rebuilt on it
        await app.loaded()
        await pilot.pause()
        assert app.whatif is not model
        view = grid.view
        assert view is not None and view.topology is app.whatif.topology
        assert grid.cursor_pair == pair  # kept by BDF

    drive("hgx-8gpu", scenario)


def test_escape_only_applies_while_the_prompt_is_open() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        assert not screen.check_action("close_filter", ())
        await pilot.press("slash")
        await pilot.pause()
        assert screen.check_action("close_filter", ())
        assert grid_of(screen).check_action("select_cell", ())

    drive("switch-nvme", scenario)


def test_clicking_a_cell_highlights_it_and_a_second_click_opens_it() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        await pilot.press("ctrl+home")
        x = grid.label_width + 2 * grid.cell_width + 2
        await pilot.click(MatrixGrid, offset=(x, 3))
        await pilot.pause()
        assert (grid.cursor_row, grid.cursor_col) == (1, 2)
        expected = grid.cursor_pair
        await pilot.click(MatrixGrid, offset=(x, 3))
        await pilot.pause()
        assert app.current_mode == "explain"
        assert app.whatif is not None and app.selection.pair == expected

    drive("switch-acs-iommu", scenario)


def test_f_cycles_the_presets_and_skips_one_that_names_nothing() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        assert app.whatif is not None
        topo = app.whatif.topology
        seen = [screen.filter.title]
        for _ in range(len(PRESETS)):
            await pilot.press("f")
            await pilot.pause()
            seen.append(screen.filter.title)
            view = grid.view
            assert view is not None
            rows = tuple(view.provider(i) for i in range(view.n_rows))
            cols = tuple(view.client(j) for j in range(view.n_cols))
            assert rows == select(topo, screen.filter.providers)
            assert cols == select(topo, screen.filter.clients)
            assert screen.filter.title in static_text(screen, "#matrix-title")
        # hgx-8gpu has p2pmem providers: every preset comes round, then the first again.
        assert seen == [p.title for p in PRESETS] + [PRESETS[0].title]

    drive("hgx-8gpu", scenario)


def test_f_skips_the_p2pmem_preset_without_providers() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        assert app.whatif is not None
        assert select(app.whatif.topology, "endpoint") != ()
        titles = []
        for _ in range(3):
            await pilot.press("f")
            await pilot.pause()
            titles.append(screen.filter.title)
        assert titles == ["P2P devices", "Everything", "Endpoints"]

    drive("desktop-intel", scenario)  # no p2pmem provider


def test_typed_filter_picks_providers_and_clients() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        assert app.whatif is not None
        topo = app.whatif.topology
        await pilot.press("slash")
        await pilot.pause()
        bar = screen.query_one("#matrix-filter-bar")
        assert bar.display
        await pilot.press("ctrl+u", *"gpu x nic,nvme", "enter")
        await pilot.pause()
        assert not bar.display and grid.has_focus
        view = grid.view
        assert view is not None
        assert tuple(view.provider(i) for i in range(view.n_rows)) == select(topo, "gpu")
        assert tuple(view.client(j) for j in range(view.n_cols)) == select(topo, "nic,nvme")
        clients = len(select(topo, "nic,nvme"))
        title = static_text(screen, "#matrix-title")
        assert f"providers gpu (8) x clients nic,nvme ({clients})" in title
        # A subtree: one switch's functions on both sides.
        await pilot.press("slash", "ctrl+u", *"subtree:0000:18:00.0", "enter")
        await pilot.pause()
        view = grid.view
        assert view is not None
        assert view.n_rows == len(topo.subtree(B("0000:18:00.0")))
        # A term that names nothing: the prompt stays open, the view stays.
        await pilot.press("slash", "ctrl+u", *"bogus", "enter")
        await pilot.pause()
        assert bar.display and grid.view is view
        await pilot.press("escape")
        await pilot.pause()
        assert not bar.display and grid.has_focus

    drive("hgx-8gpu", scenario)


def test_changed_cells_are_marked_after_a_what_if_edit() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        assert app.whatif is not None
        assert CHANGED_MARK not in grid_text(grid)
        before = grid.view
        assert before is not None and not before.marked
        assert before.cell(before.row_of(B("1a:00.0")) or 0, 0)[0] == CODE_NOT_SUPPORTED
        edit(app, cpu("amd:0x19"))  # cpu_supports_p2pdma(): NOT_SUPPORTED becomes THRU
        await pilot.pause()
        view = grid.view
        assert view is not None and view.marked
        assert CHANGED_MARK in grid_text(grid)
        assert "changed Δ" in static_text(screen, "#matrix-title")
        await pilot.press("ctrl+home", "down")  # 1a:00.0 -> 17:00.0: was NOT_SUPPORTED
        await pilot.pause()
        status = static_text(screen, "#matrix-status")
        assert "THRU_HOST_BRIDGE" in status and "was NOT_SUPPORTED" in status
        undo(app)
        await pilot.pause()
        assert CHANGED_MARK not in grid_text(grid)

    drive("switch-acs-iommu", scenario, kernel="5.17")


def test_nvidia_labels_toggle() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        assert "PIX" not in grid_text(grid)
        width = grid.cell_width
        await pilot.press("n")
        await pilot.pause()
        assert grid.show_nv and grid.cell_width > width
        text = grid_text(grid)
        assert "PIX" in text and "PXB" in text
        assert "NVIDIA" in static_text(screen, "#matrix-legend")
        # GPU0 and NIC0 sit below one switch: PIX, shown in the status line too.
        view = grid.view
        assert view is not None
        row, col = view.row_of(B("1a:00.0")), view.col_of(B("1b:00.0"))
        assert row is not None and col is not None
        grid.move_cursor(row, col)
        await pilot.pause()
        assert "NVIDIA: PIX" in static_text(screen, "#matrix-status")
        await pilot.press("n")
        await pilot.pause()
        assert not grid.show_nv and "PIX" not in grid_text(grid)

    drive("hgx-8gpu", scenario)


def test_generated_2000_functions_every_key_without_exception() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        for _ in range(3):
            await pilot.press("f")
            await app.loaded()
            await pilot.pause()
        assert screen.filter.title == "Everything"
        view = grid.view
        assert view is not None and (view.n_rows, view.n_cols) == (2000, 2000)
        await pilot.press("pagedown", "pagedown", "ctrl+pagedown", "n", "down", "right")
        await pilot.press("ctrl+end", "l", "pageup", "ctrl+pageup", "n", "enter")
        await pilot.pause()
        assert app.current_mode == "explain"
        await pilot.press("2")
        await pilot.pause()
        lines = grid_text(grid).splitlines()
        assert lines[0].startswith(" domain")  # several PCI domains: a header line for them
        assert app.return_code is None

    drive("generated:2000", scenario)


def test_theme_toggle_restyles_the_cells() -> None:
    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        dark = grid.render_line(3)
        await pilot.press("d")
        await pilot.pause()
        light = grid.render_line(3)
        assert dark.text == light.text
        assert [s.style for s in dark] != [s.style for s in light]

    drive("switch-acs-iommu", scenario)


MARKUP_LABELS = {
    "0000:1a:00.0": "Intel Corporation [8086:1234]",
    "0000:1b:00.0": "[bold red]boom[/]",
}


def test_device_labels_render_literally(tmp_path: Path) -> None:
    source = bundled_path("switch-nvme")
    assert source is not None
    text = source.read_text(encoding="utf-8")
    for bdf, label in MARKUP_LABELS.items():
        text = text.replace(f'bdf = "{bdf}"\n', f'bdf = "{bdf}"\nlabel = "{label}"\n', 1)
    path = tmp_path / "markup.toml"
    path.write_text(text, encoding="utf-8")
    assert load_source(str(path)).topology[B("1b:00.0")].label == "[bold red]boom[/]"

    async def scenario(app: P2PViewApp, pilot: Pilot[None], screen: MatrixScreen) -> None:
        grid = grid_of(screen)
        view = grid.view
        assert view is not None
        grid.move_cursor(view.row_of(B("1a:00.0")) or 0, view.col_of(B("1b:00.0")) or 0)
        await pilot.pause()
        assert "Intel Corporation [8086…" in grid_text(grid)  # cut to the label width
        assert "[bold red]boom[/]" in grid_text(grid)
        status = static_text(screen, "#matrix-status")
        assert "Intel Corporation [8086:1234]" in status
        assert "[bold red]boom[/]" in status

    drive(str(path), scenario, size=(160, 40))


# -- the plain parts -------------------------------------------------------------------


def test_parse_filter_forms() -> None:
    assert parse_filter("nvme,gpu") == MatrixFilter("Selection", "nvme,gpu", "nvme,gpu")
    assert parse_filter("p2pmem x gpu,nic") == MatrixFilter("Selection", "p2pmem", "gpu,nic")
    assert parse_filter("p2pmem ; all") == MatrixFilter("Selection", "p2pmem", "all")
    assert parse_filter(" x nic") == MatrixFilter("Selection", "all", "nic")
    assert parse_filter("p2pmem x gpu").spec == "p2pmem x gpu"
    with pytest.raises(ValueError):
        parse_filter("  ")


def test_cell_texts_follow_the_cli() -> None:
    assert kernel_text(CODE_BUS_ADDR, 4, False, False) == "B4"
    assert kernel_text(CODE_NOT_SUPPORTED, 6, True, False) == "X6*"
    assert kernel_text(CODE_INT_ERA, -2, False, True) == f"-2{CHANGED_MARK}"


def test_nv_labels_are_cached_and_x_for_self() -> None:
    topo = load_source("hgx-8gpu").topology
    labels = NvLabels(topo)
    assert labels.short(B("1a:00.0"), B("1a:00.0")) == "-"
    assert labels.short(B("1a:00.0"), B("1b:00.0")) == "PIX"
    assert len(labels) == 2
    labels.short(B("1a:00.0"), B("1b:00.0"))
    assert len(labels) == 2


def test_nv_labels_kept_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scrolling a large matrix with labels on keeps a bounded number of them."""
    import p2pview.tui.presenters.matrix_data as matrix_data

    monkeypatch.setattr(matrix_data, "NV_KEPT", 3)
    topo = load_source("hgx-8gpu").topology
    labels = NvLabels(topo)
    bdfs = topo.bdfs[:6]
    for a in bdfs:
        for b in bdfs:
            assert labels.short(a, b) == NvLabels(topo).short(a, b)
            assert len(labels) <= 3
