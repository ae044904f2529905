"""Helpers the TUI tests share: waiting for the load worker, reading the screen."""

from __future__ import annotations

import io

from rich.console import Console
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Static

from p2pview.tui.app import P2PViewApp


async def loaded(app: P2PViewApp, pilot: Pilot[None]) -> None:
    """Wait for the load worker and its message, then for the first screen to settle."""
    await app.loaded()
    await pilot.pause()
    if app.model is None:
        raise AssertionError(f"the source did not load: {app.load_error}")


def terminal_text(app: P2PViewApp) -> str:
    """The terminal as plain text (what a user reads)."""
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


def text_of(app: P2PViewApp, widget_id: str) -> str:
    """The plain text a Static of the current screen shows."""
    content = app.screen.query_one(f"#{widget_id}", Static).content
    assert isinstance(content, Content)
    return content.plain
