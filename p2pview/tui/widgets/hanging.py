"""Text whose wrapped lines keep their indent (the explain screen's steps and messages).

Textual wraps a long line back to the first column, so a numbered step's
second line reads like a new paragraph and an indented sub-line like a step.
:func:`hang` wraps one line itself: lines after the first start under the
text after the line's number (``5a. ``), two cells further in than an
indented line's own indent, and two cells in for a line with neither (a
kernel message).
"""

from __future__ import annotations

import re
from typing import cast

from textual.content import Content
from textual.css.styles import RulesMap
from textual.geometry import Size
from textual.widgets import Static

#: Leading spaces, then an optional step number ("3.", "5a.") and its spaces.
_LEAD = re.compile(r"^( *)(\d+[a-z]?\. +)?")
#: The indent of a continuation when the line has no indent of its own.
CONTINUATION = 2
#: Narrower than this, a hanging indent costs more than it helps.
MIN_TEXT = 20


def indent_of(plain: str) -> int:
    """Cells a continuation of ``plain`` starts at."""
    match = _LEAD.match(plain)
    if match is None or not match.end():
        return CONTINUATION
    if match.group(2):
        return match.end()  # under the step's text
    return match.end() + CONTINUATION  # an indented sub-line: further in than its siblings


def hang(line: Content, width: int) -> list[Content]:
    """Wrap ``line`` at ``width`` cells; continuations are indented (see the module notes)."""
    plain = line.plain
    if len(plain) <= width:
        return [line]
    indent = indent_of(plain)
    if width - indent < MIN_TEXT:
        return line.wrap(width)
    cuts: list[int] = []
    start, room = 0, width
    while len(plain) - start > room:
        end = plain.rfind(" ", start + 1, start + room + 1)
        if end <= start:
            end = start + room  # one word longer than the line: break it
        nxt = end
        while nxt < len(plain) and plain[nxt] == " ":
            nxt += 1
        cuts += [end, nxt]
        start, room = nxt, width - indent
    pieces = line.divide(cuts)
    pad = Content(" " * indent)
    return [pieces[0], *(pad + piece for piece in pieces[2::2])]


def hang_all(content: Content, width: int) -> Content:
    """Every line of ``content`` wrapped with :func:`hang`."""
    lines: list[Content] = []
    for line in content.split("\n", allow_blank=True):
        lines.extend(hang(line, width))
    return Content("\n").join(lines)


class HangingStatic(Static):
    """A ``Static`` of ``Content`` whose wrapped lines keep their indent.

    ``content`` stays the text as given (tests and copies read it unwrapped);
    only what is drawn is wrapped, once per width.
    """

    def __init__(self, *, id: str | None = None, classes: str | None = None) -> None:
        super().__init__(id=id, classes=classes)
        self._hung: tuple[object, int, Content] | None = None

    def hung(self, width: int) -> Content:
        """The content wrapped at ``width`` cells."""
        content = self.content
        if not isinstance(content, Content):
            content = Content(str(content))
        cached = self._hung
        if cached is not None and cached[0] is self.content and cached[1] == width:
            return cached[2]
        result = hang_all(content, max(width, 1))
        self._hung = (self.content, width, result)
        return result

    def render(self) -> Content:
        """The content wrapped at the current width."""
        return self.hung(self.content_size.width or self.size.width or 80)

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        """Lines the wrapped content takes."""
        return self.hung(width).get_height(cast("RulesMap", self.styles), width)
