"""Messages the app's workers post (workers never touch widgets)."""

from __future__ import annotations

from textual.message import Message

from p2pview.tui.model import TuiStart


class ModelLoaded(Message):
    """The source is loaded and the engine booted."""

    def __init__(self, start: TuiStart) -> None:
        super().__init__()
        self.start = start


class LoadFailed(Message):
    """The source could not be loaded: one line for the user."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text


class LoadProgress(Message):
    """What the loading worker is doing now."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.text = text
