"""``?``: the keys and what the current screen shows."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import Markdown

GLOBAL_KEYS = """\
| key | does |
|---|---|
| `1` `2` `3` `4` `5` | the tree, the matrix, the explanation, what-if edits, the I/O stepper |
| `?` | this help |
| `ctrl+p` | the command palette: every action by name |
| `d` | light or dark theme |
| `r` | reload the source (this host's `/sys` when live) |
| `q` | quit |
"""


def _keys_of(screen: Screen[object]) -> str:
    rows = []
    for binding in screen.BINDINGS:
        # Every key, including those the footer leaves out for want of room.
        if isinstance(binding, Binding):
            rows.append(f"| `{binding.key_display or binding.key}` | {binding.description} |")
    if not rows:
        return ""
    return "| key | on this screen |\n|---|---|\n" + "\n".join(rows) + "\n"


class HelpScreen(ModalScreen[None]):
    """A modal with the current screen's help text and keys, and the global keys."""

    BINDINGS = [Binding("escape,question_mark,q", "dismiss", "Close")]

    def __init__(self, under: Screen[object]) -> None:
        super().__init__()
        self.under = under

    def compose(self) -> ComposeResult:
        """The help text."""
        title = type(self.under).__name__.removesuffix("Screen")
        text = (
            f"# {title}\n\n{type(self.under).HELP or ''}\n\n{_keys_of(self.under)}\n{GLOBAL_KEYS}"
        )
        with VerticalScroll(id="help"):
            yield Markdown(text)

    DEFAULT_CSS = """
    HelpScreen {
        align: center middle;
    }
    HelpScreen #help {
        width: 90%;
        max-width: 100;
        height: 90%;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    """
