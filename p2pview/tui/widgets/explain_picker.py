"""A modal that picks one PCI function: a filter box over a list of every function.

Typing filters by address, IDs, role, label or driver; up/down move in the
list while the filter box keeps focus; enter picks, escape cancels.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option

from p2pview.model import BDF, Topology
from p2pview.tui.presenters.explain_content import MUTED, Names


@dataclass(frozen=True)
class PickerEntry:
    """One function in the picker: its address, the row shown and the text searched."""

    bdf: BDF
    prompt: Content
    haystack: str


def picker_entries(topology: Topology) -> list[PickerEntry]:
    """Every function of ``topology`` as a picker row, in address order."""
    names = Names(topology)
    entries = []
    for dev in topology.devices:
        describe = names.describe(dev.bdf)
        parts: list[str | tuple[str, str]] = [(names.bdf(dev.bdf), "bold"), "  ", describe]
        if dev.p2pmem is not None:
            parts.append(("  p2pmem", "$text-success"))
        if dev.is_bridge:
            parts.append(("  bridge", MUTED))
        haystack = " ".join(
            x for x in (str(dev.bdf), describe, dev.label or "", dev.driver or "") if x
        )
        if dev.p2pmem is not None:
            haystack += " p2pmem provider"
        entries.append(PickerEntry(dev.bdf, Content.assemble(*parts), haystack.lower()))
    return entries


class FunctionPicker(ModalScreen[BDF | None]):
    """Pick a function; dismisses with its address, or ``None`` on escape."""

    BINDINGS = [
        Binding("escape", "cancel", "Cancel"),
        Binding("down", "move(1)", "Down", show=False),
        Binding("up", "move(-1)", "Up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
    ]

    DEFAULT_CSS = """
    FunctionPicker {
        align: center middle;
    }
    FunctionPicker #picker {
        width: 90%;
        max-width: 110;
        height: 90%;
        max-height: 30;
        border: round $accent;
        background: $surface;
        padding: 0 1;
    }
    FunctionPicker #picker-title {
        text-style: bold;
        color: $text-accent;
    }
    FunctionPicker #picker-filter {
        margin: 0 0 1 0;
    }
    FunctionPicker #picker-list {
        height: 1fr;
        text-wrap: nowrap;
        text-overflow: ellipsis;
    }
    """

    def __init__(self, title: str, topology: Topology, current: BDF | None) -> None:
        super().__init__()
        self.title_text = title
        self.entries = picker_entries(topology)
        self.current = current
        self.shown: list[PickerEntry] = []

    def compose(self) -> ComposeResult:
        """A title, the filter box and the list."""
        with Vertical(id="picker"):
            yield Static(Content(self.title_text), id="picker-title")
            yield Input(
                placeholder="filter: address, IDs, role, name, driver, p2pmem",
                id="picker-filter",
                compact=True,
            )
            yield OptionList(id="picker-list", compact=True)

    def on_mount(self) -> None:
        """Show every function, the current one highlighted."""
        self._show("")
        self.query_one("#picker-filter", Input).focus()

    def _show(self, text: str) -> None:
        words = text.lower().split()
        self.shown = [e for e in self.entries if all(w in e.haystack for w in words)]
        options = self.query_one("#picker-list", OptionList)
        options.set_options(Option(e.prompt, id=str(e.bdf)) for e in self.shown)
        if self.shown:
            index = next((i for i, e in enumerate(self.shown) if e.bdf == self.current), 0)
            options.highlighted = index

    def on_input_changed(self, event: Input.Changed) -> None:
        """Filter as the user types."""
        event.stop()
        self._show(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the filter box picks the highlighted function."""
        event.stop()
        options = self.query_one("#picker-list", OptionList)
        if options.highlighted is not None and self.shown:
            self.dismiss(self.shown[options.highlighted].bdf)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        """Enter or a click in the list picks that function."""
        event.stop()
        self.dismiss(self.shown[event.option_index].bdf)

    def action_move(self, step: int) -> None:
        """Move the highlight while the filter box has focus."""
        options = self.query_one("#picker-list", OptionList)
        if step > 0:
            options.action_cursor_down()
        else:
            options.action_cursor_up()

    def action_page(self, step: int) -> None:
        """Move the highlight a page."""
        options = self.query_one("#picker-list", OptionList)
        if step > 0:
            options.action_page_down()  # type: ignore[no-untyped-call]  # Textual leaves it untyped
        else:
            options.action_page_up()  # type: ignore[no-untyped-call]  # Textual leaves it untyped

    def action_cancel(self) -> None:
        """Close without picking."""
        self.dismiss(None)
