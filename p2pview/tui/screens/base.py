"""What every main screen shares: the app's state, and a redraw when what it shows changes."""

from __future__ import annotations

from typing import TYPE_CHECKING, ClassVar, cast

from textual import events, on
from textual.screen import Screen
from textual.widgets import OptionList

from p2pview.tui.analysis import Selection, WhatIf

if TYPE_CHECKING:
    from p2pview.tui.app import P2PViewApp


class ModelScreen(Screen[None]):
    """A main screen (one per mode). Subclasses implement :meth:`refresh_model`.

    A screen redraws when an app attribute it names in :attr:`WATCHES` changes,
    and only while it is shown: a hidden screen notes what is stale and redraws
    it when it is shown again. A what-if edit thus redraws one screen, not five.
    A new selection calls :meth:`refresh_selection` (by default a whole
    redraw), anything else :meth:`refresh_model`.
    """

    #: The app's reactive attributes this screen draws from.
    WATCHES: ClassVar[tuple[str, ...]] = ("whatif", "selection")

    _stale_model = False
    _stale_selection = False

    @property
    def p2p_app(self) -> P2PViewApp:
        """The app, typed."""
        return cast("P2PViewApp", self.app)

    @property
    def whatif(self) -> WhatIf:
        """The analysis as loaded and as edited (screens exist only once it is loaded)."""
        whatif = self.p2p_app.whatif
        assert whatif is not None
        return whatif

    @property
    def selection(self) -> Selection:
        """The function selected, its peer and the pair explained."""
        return self.p2p_app.selection

    def on_mount(self) -> None:
        """Redraw whenever what this screen shows changes (see :attr:`WATCHES`)."""
        for name in self.WATCHES:
            changed = self._selection_changed if name == "selection" else self._model_changed
            self.watch(self.app, name, changed, init=False)
        self.refresh_model()

    def _model_changed(self, _value: object) -> None:
        if self.app.screen is self:
            self.refresh_model()
        else:
            self._stale_model = True

    def _selection_changed(self, _value: object) -> None:
        if self.app.screen is self:
            self.refresh_selection()
        else:
            self._stale_selection = True

    def on_screen_resume(self) -> None:
        """Shown again: redraw what changed meanwhile."""
        model, selection = self._stale_model, self._stale_selection
        self._stale_model = self._stale_selection = False
        if model:
            self.refresh_model()
        if selection:
            self.refresh_selection()

    @on(events.Resize)
    def _keep_cursors_in_view(self) -> None:
        """A smaller terminal must not leave the selection off screen until the next key."""
        self.call_after_refresh(keep_cursors_in_view, self)

    def refresh_model(self) -> None:
        """Redraw from the app's state."""

    def refresh_selection(self) -> None:
        """Follow a new selection (by default: redraw everything)."""
        self.refresh_model()


def keep_cursors_in_view(screen: Screen[None]) -> None:
    """Scroll each list's highlight back into view (after a resize).

    The topology tree keeps its own cursor in view (``PciTree.on_resize``):
    its height also changes when the layout inside the screen does.
    """
    for options in screen.query(OptionList):
        if options.highlighted is not None:
            options.scroll_to_highlight()
