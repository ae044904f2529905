"""The caption bar of demo mode: the talk's title, where it is, the step and its caption.

One bar is mounted into every main screen the demo shows; each one watches
the app's ``caption_state`` and redraws from it, so all of them always say the
same thing. Everything is drawn as :class:`~textual.content.Content`, never
parsed as markup: a caption may say ``[8086:09a2]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.content import Content
from textual.widgets import Static


@dataclass(frozen=True)
class CaptionState:
    """What the caption bar says (frozen: the app keeps it in a reactive)."""

    title: str
    #: The topology and kernel shown (the app's sub-title).
    where: str
    number: int
    total: int
    caption: str
    #: Autoplay state: "" without autoplay, else "autoplay 8 s", "paused" or "the end".
    status: str = ""

    @property
    def counter(self) -> str:
        """``3/7`` (the demo's step, not the stepper's stage), after the autoplay state."""
        counter = f"{self.number}/{self.total}"
        return f"{self.status}  {counter}" if self.status else counter


class DemoCaption(Vertical):
    """The caption bar: title and step counter on one line, the caption below."""

    def compose(self) -> ComposeResult:
        """Title and counter, then the caption."""
        with Horizontal(classes="demo-head"):
            yield Static(classes="demo-title")
            yield Static(classes="demo-counter")
        yield Static(classes="demo-text")

    def on_mount(self) -> None:
        """Follow the app's caption state (every bar shows the same one)."""
        self.watch(self.app, "caption_state", self.show, init=True)

    def show(self, state: CaptionState | None) -> None:
        """Draw ``state`` (nothing before the first step is shown)."""
        if state is None:
            return
        title = Content.assemble(
            Content.styled(state.title, "bold $text-accent"),
            Content.styled(f"   {state.where}", "$text-muted") if state.where else "",
        )
        self.query_one(".demo-title", Static).update(title)
        self.query_one(".demo-counter", Static).update(
            Content.styled(state.counter, "bold $text-primary")
        )
        self.query_one(".demo-text", Static).update(Content(state.caption))

    @property
    def plain(self) -> str:
        """The bar's text, line by line: title, counter, caption."""
        parts = [
            str(self.query_one(f".{name}", Static).render())
            for name in ("demo-title", "demo-counter", "demo-text")
        ]
        return "\n".join(parts)
