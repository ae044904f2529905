"""The queue limits at the top of the Bios, Scatterlist and PRP/SGL panels, and its click.

What it shows is built by :func:`p2pview.tui.presenters.stepper_limits.limits_view`
for the panel's width; a click asks the screen to open or fold every copy.
"""

from __future__ import annotations

from textual import events
from textual.message import Message

from p2pview.tui.widgets.stepper_widgets import WidthView


class LimitsToggled(Message):
    """The user clicked the limits line (the screen opens or folds every copy of it)."""


class LimitsView(WidthView):
    """The queue limits at the top of a panel: a line that opens into a table on a click."""

    def on_click(self, event: events.Click) -> None:
        """Open or fold the limits."""
        event.stop()
        self.post_message(LimitsToggled())
