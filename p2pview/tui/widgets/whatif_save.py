"""A modal asking where to save the edited topology (a TOML topology file)."""

from __future__ import annotations

from pathlib import Path

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, Static

#: Where the edited topology goes unless the user says otherwise.
DEFAULT_SAVE_PATH = "./p2pview-whatif.toml"


class SaveDialog(ModalScreen[Path | None]):
    """An Input for the path; enter dismisses with it, escape with ``None``."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    SaveDialog {
        align: center middle;
    }
    SaveDialog #save {
        width: 80%;
        max-width: 90;
        height: auto;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    SaveDialog #save-title {
        text-style: bold;
        color: $text-accent;
    }
    SaveDialog #save-hint {
        color: $text-muted;
    }
    """

    def __init__(self, path: str = DEFAULT_SAVE_PATH, edits: int = 0) -> None:
        super().__init__()
        self.path = path
        self.edits = edits

    def compose(self) -> ComposeResult:
        """The title, the path and a hint."""
        plural = "edit" if self.edits == 1 else "edits"
        with Vertical(id="save"):
            yield Static(
                Content(f"Save the edited topology ({self.edits} what-if {plural}) as TOML"),
                id="save-title",
            )
            yield Input(self.path, id="save-path", compact=True)
            yield Static(
                Content(
                    "enter saves, escape cancels. Load it again with: p2pview FILE"
                    " (or p2pview explain FILE ...)"
                ),
                id="save-hint",
            )

    def on_mount(self) -> None:
        """Focus the path."""
        self.query_one("#save-path", Input).focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter: save there."""
        event.stop()
        text = event.value.strip()
        self.dismiss(Path(text).expanduser() if text else None)

    def action_cancel(self) -> None:
        """Close without saving."""
        self.dismiss(None)
