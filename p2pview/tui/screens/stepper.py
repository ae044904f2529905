"""The stepper screen (being built)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer, Header, Static

from p2pview.tui.screens.base import ModelScreen


class StepperScreen(ModelScreen):
    """The stepper screen."""

    HELP = "The stepper screen."

    def compose(self) -> ComposeResult:
        """Layout."""
        yield Header()
        yield Static(id="body")
        yield Footer()

    def refresh_model(self) -> None:
        """Redraw."""
        self.query_one("#body", Static).update(f"{self.model.topology.name}: stepper")
