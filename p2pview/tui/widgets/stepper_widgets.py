"""A widget whose content is built for the width it is given (the stepper's panels).

The stepper's tables drop columns to fit and its page strip has one cell per
column, so what they show depends on the width. ``WidthView`` calls a builder
with the content width when Textual measures or renders it, and caches the
result per width; ``show()`` swaps the builder and redraws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from textual.content import Content
from textual.css.styles import RulesMap
from textual.geometry import Size
from textual.widget import Widget

Builder = Callable[[int], Content]


class WidthView(Widget):
    """Content from a builder called with the available width."""

    DEFAULT_CSS = """
    WidthView {
        height: auto;
        width: 1fr;
    }
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._build: Builder = lambda _width: Content("")
        self._cache: dict[int, Content] = {}

    def show(self, build: Builder) -> None:
        """Draw what ``build(width)`` returns from now on."""
        self._build = build
        self._cache.clear()
        self.clear_cached_dimensions()
        self.refresh(layout=True)

    def content_for(self, width: int) -> Content:
        """The content at ``width`` cells (built once per width)."""
        width = max(width, 20)
        content = self._cache.get(width)
        if content is None:
            if len(self._cache) > 8:
                self._cache.clear()
            content = self._cache[width] = self._build(width)
        return content

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Lines the content takes at ``width``."""
        # Textual's own widgets pass their styles where Content expects a RulesMap.
        return self.content_for(width).get_height(cast("RulesMap", self.styles), width)

    def render(self) -> Content:
        """The content at the current width."""
        return self.content_for(self.content_size.width or self.size.width)

    @property
    def plain(self) -> str:
        """The text shown at the current width, without styles (for tests)."""
        return self.content_for(self.content_size.width or self.size.width or 80).plain
