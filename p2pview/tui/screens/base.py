"""What every main screen shares: the model, and a redraw when it changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, cast

from textual import events, on
from textual.screen import Screen
from textual.widgets import OptionList, Tree

from p2pview.tui.model import TuiModel

if TYPE_CHECKING:
    from p2pview.tui.app import P2PViewApp


class ModelScreen(Screen[None]):
    """A main screen (one per mode). Subclasses implement :meth:`refresh_model`."""

    @property
    def p2p_app(self) -> P2PViewApp:
        """The app, typed."""
        return cast("P2PViewApp", self.app)

    @property
    def model(self) -> TuiModel:
        """The loaded model (screens exist only once it is loaded)."""
        model = self.p2p_app.model
        assert model is not None
        return model

    def on_mount(self) -> None:
        """Redraw whenever the model changes (what-if edits, reload, selections)."""
        self.watch(self.app, "model_version", self._model_changed, init=False)
        self.refresh_model()

    @on(events.Resize)
    def _keep_cursors_in_view(self) -> None:
        """A smaller terminal must not leave the selection off screen until the next key."""
        self.call_after_refresh(keep_cursors_in_view, self)

    def _model_changed(self, _version: int) -> None:
        self.refresh_model()

    def refresh_model(self) -> None:
        """Redraw from :attr:`model`."""


def keep_cursors_in_view(screen: Screen[None]) -> None:
    """Scroll each tree's and list's cursor back into view (after a resize)."""
    for tree in screen.query(Tree):
        if tree.cursor_line >= 0:
            tree.scroll_to_line(tree.cursor_line, animate=False)
    for options in screen.query(OptionList):
        if options.highlighted is not None:
            options.scroll_to_highlight()
