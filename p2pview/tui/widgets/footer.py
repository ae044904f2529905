"""The footer: the app's keys first, so that an 80-column terminal still shows them.

Textual's footer lists the focused widget's keys, then the screen's, then the
app's, and cuts what does not fit on the right: at 80 columns ``4 What-if``
and ``5 I/O`` were cut off. This one puts the app's keys (``? Help``, ``q
Quit``, ``1``-``5``) first and the screen's after them; the command-palette
key (still bound to ctrl+p, and named on the help screen) is shown only where
there is room for it.
"""

from __future__ import annotations

from textual.app import ComposeResult
from textual.widgets import Footer
from textual.widgets._footer import FooterKey

#: Narrower than this, the footer leaves out the command-palette key.
PALETTE_KEY_WIDTH = 120


class AppFirstFooter(Footer):
    """A compact footer listing the app's keys before the screen's."""

    def __init__(self) -> None:
        super().__init__(compact=True)
        self._palette_shown: bool | None = None

    def on_resize(self) -> None:
        """Show the palette key only where it fits beside the others."""
        if self._palette_shown is not None and self._palette_shown != self._palette_fits():
            self.call_after_refresh(self.recompose)

    def _palette_fits(self) -> bool:
        return self.app.size.width >= PALETTE_KEY_WIDTH

    def compose(self) -> ComposeResult:
        """One key per action: the app's first, then the screen's and the focused widget's."""
        if not self._bindings_ready:
            return
        app = self.app
        active = self.screen.active_bindings
        shown = [entry for entry in active.values() if entry.binding.show]
        app_keys = [entry for entry in shown if entry.node is app]
        others = [entry for entry in shown if entry.node is not app]
        seen: set[str] = set()
        for _node, binding, enabled, tooltip in [*app_keys, *others]:
            if binding.action in seen:
                continue
            seen.add(binding.action)
            yield FooterKey(
                binding.key,
                app.get_key_display(binding),
                binding.description,
                binding.action,
                disabled=not enabled,
                tooltip=tooltip,
            ).data_bind(compact=Footer.compact)
        self._palette_shown = self._palette_fits()
        if self._palette_shown and self.show_command_palette and app.ENABLE_COMMAND_PALETTE:
            entry = active.get(app.COMMAND_PALETTE_BINDING)
            if entry is not None:
                yield FooterKey(
                    entry.binding.key,
                    app.get_key_display(entry.binding),
                    entry.binding.description,
                    entry.binding.action,
                    classes="-command-palette",
                    disabled=not entry.enabled,
                    tooltip=entry.binding.tooltip or entry.binding.description,
                )
