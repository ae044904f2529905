"""The app around the screens: help, footer, palette, reload, theme, NO_COLOR, load errors."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import pytest
from textual.pilot import Pilot
from textual.widgets import Markdown
from tuikit import edit, said, terminal_text

from p2pview.model import BDF
from p2pview.tui.analysis import toggle_acs_bit
from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.screens.help import HelpScreen

Body = Callable[[P2PViewApp, Pilot[None]], Awaitable[None]]


def run(body: Body, source: str = "switch-acs-iommu", size: tuple[int, int] = (120, 40)) -> None:
    async def main() -> None:
        app = make_app(TuiArgs(source))
        app.animation_level = "none"
        async with app.run_test(size=size) as pilot:
            await app.loaded()
            await pilot.pause()
            await body(app, pilot)

    asyncio.run(main())


def test_every_screen_footer_keeps_help_and_quit_at_80x24() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        for key in "12345":
            await pilot.press(key)
            await app.loaded()
            await pilot.pause()
            text = terminal_text(app)
            assert "Help" in text and "Quit" in text, f"screen {key}"

    run(body, size=(80, 24))


def test_help_lists_the_screens_keys_including_those_the_footer_hides() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        await pilot.press("2")
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        text = app.screen.query_one(Markdown).source
        assert "Legend" in text  # `l`: not in the footer
        assert "ctrl+p" in text and "light or dark theme" in text
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, HelpScreen)

    run(body)


def test_the_command_palette_offers_every_screen_and_action() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        titles = [c.title for c in app.get_system_commands(app.screen)]
        for wanted in ("Tree screen (1)", "Matrix screen (2)", "I/O screen (5)", "Reload (r)"):
            assert wanted in titles

    run(body)


def test_d_switches_between_dark_and_light() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        before = app.theme
        await pilot.press("d")
        await pilot.pause()
        assert app.theme != before
        await pilot.press("d")
        await pilot.pause()
        assert app.theme == before

    run(body)


def test_reload_with_edits_warns_first_then_drops_them() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        edit(app, toggle_acs_bit(BDF.parse("0000:19:00.0"), 0x4))
        model = app.whatif
        assert model is not None
        await pilot.press("r")
        await app.loaded()
        await pilot.pause()
        assert app.whatif is model and model.edits  # only a warning
        assert any("drops 1 what-if edit" in line for line in said(app))
        await pilot.press("r")
        await app.loaded()
        await pilot.pause()
        assert app.whatif is not model
        assert app.whatif is not None and not app.whatif.edits

    run(body)


def test_reload_without_edits_reads_the_source_again() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        first = app.whatif
        await pilot.press("r")
        await app.loaded()
        await pilot.pause()
        assert app.whatif is not first and app.whatif is not None

    run(body)


def test_no_color_draws_without_colour(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.no_color
        assert "THRU_HOST_BRIDGE" in terminal_text(app)

    run(body)


def test_a_source_that_cannot_load_says_why_and_the_cli_exits_2(
    tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    bad = tmp_path / "broken.toml"
    bad.write_text("[[device]]\nbdf = 'not a bdf'\n")

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        assert app.whatif is None
        assert app.load_error
        assert "Cannot load" in terminal_text(app)
        for key in "12r":  # screen keys do nothing with nothing loaded
            await pilot.press(key)
            await pilot.pause()
        assert app.whatif is None
        await pilot.press("q")

    run(body, source=str(bad))

    # from the command line, the error comes before any screen: see test_launch.py
