"""A screen switch does only what the new screen needs: no widgets rebuilt or mounted.

How long a switch takes is measured in ``benchmarks/bench_tui.py``; these tests
hold the behaviour that makes it fast, which a timing on a shared machine cannot.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from rich.console import Console
from textual.app import App
from textual.dom import DOMNode
from textual.pilot import Pilot
from textual.screen import Screen
from textual.widget import Widget

from p2pview.tui.app import P2PViewApp, TuiArgs, make_app
from p2pview.tui.widgets.footer import AppFirstFooter

Body = Callable[[P2PViewApp, Pilot[None]], Awaitable[None]]
MODES = ("topology", "matrix", "explain", "whatif", "stepper")


def stacks_of(app: P2PViewApp) -> dict[str, list[Screen[Any]]]:
    """The screen stack of each main screen's mode built so far."""
    stacks = {}
    for mode in MODES:
        with contextlib.suppress(KeyError):  # KeyError: the mode has no stack yet
            stacks[mode] = app.get_screen_stack(mode)
    return stacks


def widgets_of(app: P2PViewApp) -> set[Widget]:
    """Every widget of every main screen built so far."""
    found: set[Widget] = set()
    for stack in stacks_of(app).values():
        for screen in stack:
            found.update(screen.walk_children(with_self=True))
    return found


def footers_of(app: P2PViewApp) -> dict[str, AppFirstFooter]:
    """Each main screen's footer, by mode."""
    return {mode: stack[0].query_one(AppFirstFooter) for mode, stack in stacks_of(app).items()}


async def settle(app: P2PViewApp, pilot: Pilot[None]) -> None:
    await app.loaded()
    await pilot.pause()
    await pilot.pause(0.1)  # after the switch's deferred repaint and call_after_refresh
    await pilot.pause()


def run(body: Body, size: tuple[int, int] = (100, 30), source: str = "switch-acs-iommu") -> None:
    async def main() -> None:
        app = make_app(TuiArgs(source))
        app.animation_level = "none"
        async with app.run_test(size=size) as pilot:
            await settle(app, pilot)
            await body(app, pilot)

    asyncio.run(main())


def test_a_revisit_mounts_no_widget_and_rebuilds_no_footer() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        for key in "23451":
            await pilot.press(key)
            await settle(app, pilot)
        before = widgets_of(app)
        rebuilds = {mode: getattr(f, "rebuilds", None) for mode, f in footers_of(app).items()}
        assert set(rebuilds) == set(MODES)
        for key in "2345123451":
            await pilot.press(key)
            await settle(app, pilot)
        assert widgets_of(app) == before  # the footers' keys among them
        assert {mode: f.rebuilds for mode, f in footers_of(app).items()} == rebuilds

    run(body)


def test_the_footer_rebuilds_when_its_keys_change() -> None:
    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        footer = app.screen.query_one(AppFirstFooter)
        assert footer.shown is not None
        assert not any(key.palette for key in footer.shown)
        rebuilds = footer.rebuilds
        await pilot.resize_terminal(130, 30)  # room for the palette key now
        await settle(app, pilot)
        assert footer.rebuilds == rebuilds + 1
        assert footer.shown is not None and footer.shown[-1].palette
        assert [key.action for key in footer.shown][:2] == ["help", "quit"]

    run(body)


def styled_text(app: P2PViewApp) -> str:
    """The terminal as text with its colours and styles (ANSI), as painted from the screen."""
    width, height = app.size
    console = Console(
        width=width, height=height, file=io.StringIO(), record=True, color_system="truecolor"
    )
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=True)


async def visit(app: P2PViewApp, pilot: Pilot[None], keys: str) -> list[str]:
    """Press each key, let the switch settle, and read the screen."""
    shown = []
    for key in keys:
        await pilot.press(key)
        await settle(app, pilot)
        shown.append(styled_text(app))
    return shown


def screens(keys: str, build_ahead: bool, first: str = "") -> tuple[list[str], bool]:
    """What each of ``keys`` shows, after ``first``; and whether the visits mounted no widget."""

    async def main() -> tuple[list[str], bool]:
        app = make_app(TuiArgs("switch-acs-iommu"), build_ahead=build_ahead)
        app.animation_level = "none"
        async with app.run_test(size=(100, 30)) as pilot:
            await settle(app, pilot)
            if build_ahead:
                await asyncio.wait_for(app.screens_built.wait(), 30)
                await settle(app, pilot)
            await visit(app, pilot, first)
            before = widgets_of(app)
            shown = await visit(app, pilot, keys)
            return shown, widgets_of(app) == before

    return asyncio.run(main())


def test_screens_built_ahead_show_what_screens_built_on_a_visit_show() -> None:
    ahead, none_mounted = screens("23451", build_ahead=True)
    assert none_mounted  # every screen was built before its first visit
    visited, _ = screens("23451", build_ahead=False)
    assert ahead == visited


def test_a_screen_left_before_the_theme_changed_shows_the_new_theme() -> None:
    # the matrix is styled dark, left, the theme changes: shown again, it is
    # restyled (a switch skips restyling only when nothing of the app changed)
    again, _ = screens("2", build_ahead=False, first="21d")
    fresh, _ = screens("2", build_ahead=False, first="d")
    assert again == fresh
    dark, _ = screens("2", build_ahead=False)
    assert again != dark


def test_a_revisit_restyles_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    restyled: list[str] = []
    update_styles = App.update_styles

    def record(app: App[object], node: DOMNode, animate: bool = True) -> None:
        restyled.append(type(node).__name__)
        update_styles(app, node, animate)

    monkeypatch.setattr(App, "update_styles", record)

    async def body(app: P2PViewApp, pilot: Pilot[None]) -> None:
        for key in "23451":
            await pilot.press(key)
            await settle(app, pilot)
        restyled.clear()
        for key in "23451":
            await pilot.press(key)
            await settle(app, pilot)
        # Textual restyled each screen shown (and so redrew all of it): nothing changed here
        assert restyled == []

    run(body)
