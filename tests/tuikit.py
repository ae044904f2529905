"""Helpers the TUI tests share: waiting for the load worker, reading the screen."""

from __future__ import annotations

import io
from typing import Any
from weakref import WeakKeyDictionary

import pytest
from rich.console import Console
from textual.app import App
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Static

from p2pview.kernel import KernelTarget
from p2pview.session import CpuChoice, EngineConfig
from p2pview.tui.analysis import Edit, set_cpu, set_kernel
from p2pview.tui.app import P2PViewApp
from p2pview.tui.model import TuiStart, load_start


async def loaded(app: P2PViewApp, pilot: Pilot[None]) -> None:
    """Wait for the load worker and its message, then for the first screen to settle."""
    await app.loaded()
    await pilot.pause()
    if app.whatif is None:
        raise AssertionError(f"the source did not load: {app.load_error}")


def terminal_text(app: P2PViewApp) -> str:
    """The terminal as plain text (what a user reads).

    Textual has no public call for the screen's text (``export_screenshot``
    gives SVG): this renders the screen's last frame the way it does.
    """
    width, height = app.size
    console = Console(width=width, height=height, file=io.StringIO(), record=True)
    console.print(app.screen._compositor.render_update(full=True))
    return console.export_text(styles=False)


def text_of(app: P2PViewApp, widget_id: str) -> str:
    """The plain text a Static of the current screen shows."""
    content = app.screen.query_one(f"#{widget_id}", Static).content
    assert isinstance(content, Content)
    return content.plain


#: Every notification each app showed, as the user read it.
_SAID: WeakKeyDictionary[App[object], list[str]] = WeakKeyDictionary()


def record_notifications(monkeypatch: pytest.MonkeyPatch) -> None:
    """From now on, keep what every app notifies (read it with :func:`said`).

    Wraps Textual's public ``App.notify``; an autouse fixture of the TUI tests
    calls it, so that a test can read the notifications of the load too.
    """
    notify = App.notify

    def recording(app: App[object], message: str, **kwargs: Any) -> None:
        _SAID.setdefault(app, []).append(str(message))
        notify(app, message, **kwargs)

    monkeypatch.setattr(App, "notify", recording)


def said(app: App[object]) -> list[str]:
    """What ``app`` has notified so far, oldest first."""
    return list(_SAID.get(app, ()))


def start(source: str, **config: str) -> TuiStart:
    """``source`` loaded as the TUI loads it (``config``: ``kernel=``, ``cpu=``, ``iommu=`` ...)."""
    return load_start(source, EngineConfig.parse(**config))


def edit(app: P2PViewApp, change: Edit) -> None:
    """Apply a what-if edit on the UI thread (the what-if screen runs it in a worker)."""
    assert app.whatif is not None
    app.whatif = app.whatif.apply(change)


def undo(app: P2PViewApp) -> None:
    """Take the last what-if edit back."""
    assert app.whatif is not None
    undone = app.whatif.undone()
    assert undone is not None
    app.whatif = undone


def cpu(spec: str) -> Edit:
    """The what-if edit to another CPU (``amd:0x19``)."""
    return set_cpu(CpuChoice.parse(spec))


def kernel(release: str) -> Edit:
    """The what-if edit to another kernel release."""
    return set_kernel(KernelTarget.parse(release))
