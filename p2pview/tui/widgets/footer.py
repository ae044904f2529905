"""The footer: the app's keys first, so that an 80-column terminal still shows them.

Textual's footer lists the focused widget's keys, then the screen's, then the
app's, and cuts what does not fit on the right: at 80 columns ``4 What-if``
and ``5 I/O`` were cut off. This one puts the app's keys (``? Help``, ``q
Quit``, ``1``-``5``) first and the screen's after them; the command-palette
key (still bound to ctrl+p, and named on the help screen) is shown only where
there is room for it.

Textual's footer also rebuilds its keys whenever its screen's bindings may have
changed: on every focus change and on every screen switch, both for the screen
left and the screen shown, although the keys are nearly always the same. A
rebuild mounts a dozen widgets and restyles and lays out the screen again, a
good part of a screen switch. This footer rebuilds only when the keys it shows
changed, and only while its screen is shown (a screen shown again checks), or
for the first time.
"""

from __future__ import annotations

from typing import NamedTuple

from textual.app import ComposeResult
from textual.screen import Screen
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Narrower than this, the footer leaves out the command-palette key.
PALETTE_KEY_WIDTH = 120


class KeyShown(NamedTuple):
    """One key as the footer shows it (what a rebuild would change)."""

    key: str
    display: str
    description: str
    action: str
    enabled: bool
    tooltip: str
    palette: bool = False


class AppFirstFooter(Footer):
    """A compact footer listing the app's keys before the screen's."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        #: The keys shown now (``None``: none yet, the bindings were not ready).
        self.shown: tuple[KeyShown, ...] | None = None
        #: How many times the keys were rebuilt (tests check that a switch rebuilds none).
        self.rebuilds = 0

    def on_resize(self) -> None:
        """Show the palette key only where it fits beside the others."""
        self._recompose_if_changed()

    def bindings_changed(self, screen: Screen[object]) -> None:
        """The screen's bindings may have changed: rebuild only if the keys shown did."""
        self._bindings_ready = True
        if not screen.app.app_focus:
            return
        # a screen built ahead, not shown yet, gets its keys now rather than when shown
        if self.is_attached and screen is self.screen and (screen.is_current or self.shown is None):
            self.call_after_refresh(self._recompose_if_changed)

    def _recompose_if_changed(self) -> None:
        if self._bindings_ready and self.is_attached and self.keys() != self.shown:
            self.call_after_refresh(self.recompose)

    def keys(self) -> tuple[KeyShown, ...]:
        """The keys to show: one per action, the app's first, then the screen's and the widget's."""
        app = self.app
        active = self.screen.active_bindings
        shown = [entry for entry in active.values() if entry.binding.show]
        app_keys = [entry for entry in shown if entry.node is app]
        others = [entry for entry in shown if entry.node is not app]
        seen: set[str] = set()
        keys = []
        for _node, binding, enabled, tooltip in [*app_keys, *others]:
            if binding.action in seen:
                continue
            seen.add(binding.action)
            display = app.get_key_display(binding)
            keys.append(
                KeyShown(
                    binding.key, display, binding.description, binding.action, enabled, tooltip
                )
            )
        palette_fits = app.size.width >= PALETTE_KEY_WIDTH
        if palette_fits and self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            entry = active.get(app.COMMAND_PALETTE_BINDING)
            if entry is not None:
                binding = entry.binding
                keys.append(
                    KeyShown(
                        binding.key,
                        app.get_key_display(binding),
                        binding.description,
                        binding.action,
                        entry.enabled,
                        binding.tooltip or binding.description,
                        palette=True,
                    )
                )
        return tuple(keys)

    def compose(self) -> ComposeResult:
        """One key per action (see :meth:`keys`)."""
        if not self._bindings_ready:
            return
        self.shown = self.keys()
        self.rebuilds += 1
        # Born with the compact class that data_bind would give each key once
        # mounted: adding it then restyled every key, one after the other.
        compact = "-compact" if self.compact else ""
        for key in self.shown:
            if key.palette:
                yield FooterKey(
                    key.key,
                    key.display,
                    key.description,
                    key.action,
                    classes="-command-palette",
                    disabled=not key.enabled,
                    tooltip=key.tooltip,
                )
            else:
                yield FooterKey(
                    key.key,
                    key.display,
                    key.description,
                    key.action,
                    classes=compact,
                    disabled=not key.enabled,
                    tooltip=key.tooltip,
                ).data_bind(compact=Footer.compact)
