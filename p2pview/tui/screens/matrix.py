"""The matrix screen: map type and distance of every pair in view, one cell each.

Rows are providers (the memory), columns clients (the DMA master), as in
``p2pview matrix``. A filter picks both sides with the CLI's selections
(:mod:`p2pview.model.select`); the view reads the cells on screen from the
analysis's all-pairs matrix (small topologies) or from tiles decided as they come
into view (large ones: memory stays bounded at 20,000 functions and more).
How many pairs in view the what-if edits changed is counted at once when few
pairs can have changed, else in a thread worker ("counting ..." until then).
"""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.content import Content
from textual.message import Message
from textual.widgets import Header, Input, Static
from textual.worker import get_current_worker

from p2pview.model import BDF, Topology
from p2pview.model.select import KIND_TERMS, SelectionError
from p2pview.tui.analysis import WhatIf
from p2pview.tui.presenters.matrix_data import (
    ASSUMED_MARK,
    CHANGED_MARK,
    PRESETS,
    MatrixFilter,
    MatrixView,
    bdf_namer,
    parse_filter,
    resolve_filter,
    verdict_reason,
)
from p2pview.tui.presenters.verdict_style import result_style, result_text
from p2pview.tui.screens.base import ModelScreen
from p2pview.tui.verdicts import QUICK_CELLS, Comparison, Indices
from p2pview.tui.widgets.footer import AppFirstFooter
from p2pview.tui.widgets.matrix_grid import MatrixGrid
from p2pview.views.names import short_label

HELP = f"""\
Every **provider** (row: the memory) x **client** (column: the DMA master) pair
in view, as the kernel's `calc_map_type_and_dist()` decides it.

| cell | means |
|---|---|
| `B4` | BUS_ADDR, distance 4: a common upstream bridge and no ACS redirect |
| `T6` | THRU_HOST_BRIDGE: through the host bridge (whitelisted, or an AMD Zen CPU) |
| `X6` | NOT_SUPPORTED: DMA mapping fails with -EREMOTEIO |
| `4` `-1` `-2` | v4.20-v5.3 return an int: the distance, no common bridge, ACS redirect |
| `{ASSUMED_MARK}` | assumed no ACS redirect on a function whose ACS could not be read |
| `{CHANGED_MARK}` | changed by what-if edits against the topology as loaded |
| `PIX` ... `SYS` | with `n`: NVIDIA's `nvidia-smi topo -m` label (`SYS?`: NODE possible too) |

The lines below the grid tell the highlighted pair's verdict and why;
`enter` (or a second click on the cell) opens its full explanation.

**Moving**: arrows one cell; `pageup` `pagedown` a screen of rows;
`ctrl+pageup` `ctrl+pagedown` a screen of columns; `home` `end` the first and
last column; `ctrl+home` `ctrl+end` the top left and bottom right cell.

**Filters**: `f` cycles Endpoints, P2P devices (storage, GPUs, NICs,
accelerators, p2pmem providers), p2pmem providers x all, Everything. `/` types
one: `SEL` for both sides, or `SEL x SEL` for providers x clients. A `SEL` is a
comma-separated list of kinds ({", ".join(KIND_TERMS)}), BDFs, `vendor:device`
(`10de:*`: any device of a vendor), labels, or `subtree:BDF`; for example
`p2pmem x gpu,nic` or `subtree:0000:17:02.0`.

`l` hides or shows the legend.
"""


#: Lines of the status area (the highlighted pair) at most.
STATUS_MAX_HEIGHT = 5


def full_label(topo: Topology, bdf: BDF) -> str:
    """The function's label whole (the grid cuts it), else what it is."""
    dev = topo[bdf]
    return dev.label or short_label(dev)


class ChangesCounted(Message):
    """How many pairs in view the what-if edits changed, counted off the UI thread."""

    def __init__(self, count: int, generation: int) -> None:
        super().__init__()
        self.count = count
        self.generation = generation


class MatrixScreen(ModelScreen):
    """Providers x clients: map type, distance, marks; a filter; the explanation on enter."""

    HELP = HELP
    AUTO_FOCUS = "#matrix-grid"

    BINDINGS = [
        Binding("f", "next_filter", "Filter"),
        Binding("slash", "type_filter", "Select", key_display="/"),
        Binding("n", "toggle_nv", "NVIDIA"),
        Binding("l", "toggle_legend", "Legend", show=False),
        Binding("escape", "close_filter", "Close the filter"),
    ]

    def __init__(self) -> None:
        super().__init__()
        self.filter: MatrixFilter = PRESETS[0]
        self._preset = 0
        self._built_for: WhatIf | None = None
        self._pair_seen: tuple[BDF, BDF] | None = None
        self._generation = 0
        #: Changed pairs in view; ``None`` while a worker counts them.
        self._changed_count: int | None = 0
        #: What the counting worker counts (kept until it is done), and the generation it
        #: was started for.
        self._count_args: tuple[Comparison, Indices, Indices, int] | None = None
        self._counting = -1
        self._status_height = 0
        self._namer: tuple[Topology, Callable[[BDF], str]] | None = None

    def compose(self) -> ComposeResult:
        """Title line, the grid, the highlighted pair, the legend, the filter prompt."""
        yield Header()
        yield Static(id="matrix-title")
        yield MatrixGrid(id="matrix-grid")
        yield Static(id="matrix-status")
        yield Static(id="matrix-legend")
        with Vertical(id="matrix-filter-bar"):
            yield Static(
                Content.assemble(
                    ("Filter ", "bold $text-accent"),
                    "providers x clients, or one selection for both",
                    ("  (enter applies, esc cancels)", "$foreground-muted"),
                ),
                id="matrix-filter-hint",
            )
            yield Input(placeholder="e.g. p2pmem x gpu,nic", id="matrix-filter", compact=True)
        yield AppFirstFooter()

    @property
    def grid(self) -> MatrixGrid:
        """The matrix widget."""
        return self.query_one("#matrix-grid", MatrixGrid)

    @property
    def _filter_bar(self) -> Vertical:
        return self.query_one("#matrix-filter-bar", Vertical)

    # -- state changes -------------------------------------------------------------

    def refresh_model(self) -> None:
        """Rebuild the view when the verdicts changed, else follow the selected pair."""
        whatif = self.whatif
        built = self._built_for
        if built is whatif:
            self.refresh_selection()
            return
        self._built_for = whatif
        pair = self.selection.pair
        self._pair_seen = pair
        cursor = pair if built is None else None
        wanted = self.filter
        if self._apply(wanted, cursor=cursor, quiet=True):
            return
        # The default filter can name nothing (a dump of bridges only), a reload can
        # empty a typed one: fall back to the first preset that shows something, and say so.
        for index, preset in enumerate(PRESETS):
            if preset != wanted and self._apply(preset, cursor=cursor, quiet=True):
                self._preset = index
                self.notify(
                    f"'{wanted.spec}' names no function in this source: showing"
                    f" {preset.title} ({preset.spec})",
                    title="Filter",
                    timeout=8,
                )
                break

    def refresh_selection(self) -> None:
        """Another screen picked a pair: put the cursor on it."""
        pair = self.selection.pair
        if pair != self._pair_seen:
            self._pair_seen = pair
            self._follow_pair(pair)
        self._show_status()

    def _follow_pair(self, pair: tuple[BDF, BDF] | None) -> None:
        """Put the cursor on ``pair`` when it is in view."""
        grid = self.grid
        view = grid.view
        if pair is None or view is None or grid.cursor_pair == pair:
            return
        row, col = view.row_of(pair[0]), view.col_of(pair[1])
        if row is not None and col is not None:
            grid.move_cursor(row, col)

    def _apply(
        self, wanted: MatrixFilter, cursor: tuple[BDF, BDF] | None = None, quiet: bool = False
    ) -> bool:
        """Show ``wanted``; False (and a notice) when a term names nothing."""
        whatif = self.whatif
        try:
            providers, clients = resolve_filter(whatif.topology, wanted)
        except SelectionError as exc:
            if not quiet:
                self.notify(str(exc), title="Filter", severity="warning")
            return False
        self.filter = wanted
        self._generation += 1
        view = MatrixView.of(whatif, providers, clients, wanted)
        self._start_count(view)
        self._show(view, cursor)
        return True

    def _start_count(self, view: MatrixView) -> None:
        """Count the changed pairs in view: at once when few can have changed, else in a worker."""
        comparison = self.whatif.comparison
        self._count_args = None
        self.workers.cancel_group(self, "matrix-count")  # a count for another view
        if view.empty or not view.marked:
            self._changed_count = 0
        elif comparison.cost(view.rows, view.cols) <= QUICK_CELLS:
            self._changed_count = comparison.count(view.rows, view.cols)
        else:
            self._changed_count = None
            self._count_args = (comparison, view.rows, view.cols, self._generation)
            if self.is_current:
                self._counting = self._generation
                self._count_changes(*self._count_args)

    def on_screen_resume(self) -> None:
        """Count what a background edit changed, now that the matrix is shown."""
        args = self._count_args
        if self._changed_count is None and args is not None and args[3] != self._counting:
            self._counting = args[3]
            self._count_changes(*args)

    @work(thread=True, exclusive=True, exit_on_error=False, group="matrix-count")
    def _count_changes(
        self, comparison: Comparison, rows: Indices, cols: Indices, generation: int
    ) -> None:
        """Count the changed pairs of a large view a block at a time (stops when cancelled)."""
        worker = get_current_worker()
        count = comparison.count(rows, cols, cancelled=lambda: worker.is_cancelled)
        if not worker.is_cancelled:
            self.post_message(ChangesCounted(count, generation))

    def on_changes_counted(self, message: ChangesCounted) -> None:
        """Show the count unless another view came since."""
        if message.generation == self._generation:
            self._changed_count = message.count
            self._count_args = None
            self._show_title()

    def _show(self, view: MatrixView, cursor: tuple[BDF, BDF] | None) -> None:
        grid = self.grid
        grid.empty_text = f"No pair in view: the filter '{view.filter.spec}' leaves one side empty."
        grid.set_view(view, cursor)
        self._show_title()
        self._show_legend()
        self._show_status()

    # -- text around the grid -----------------------------------------------------------

    def _show_title(self) -> None:
        view = self.grid.view
        wanted = self.filter
        parts: list[str | tuple[str, str]] = [(wanted.title, "bold $text-accent")]
        if view is None:
            parts.append(("  computing ...", "$foreground-muted"))
        else:
            parts += [
                ("  providers ", "$foreground-muted"),
                f"{wanted.providers} ({view.n_rows:,})",
                (" x clients ", "$foreground-muted"),
                f"{wanted.clients} ({view.n_cols:,})",
            ]
            changed = self._changed_count
            if changed is None:
                parts.append((f"  counting changed {CHANGED_MARK} ...", "$foreground-muted"))
            elif changed:
                parts.append((f"  {changed:,} changed {CHANGED_MARK}", "$text-warning"))
        self.query_one("#matrix-title", Static).update(Content.assemble(*parts))

    def _show_status(self) -> None:
        pair = self.grid.cursor_pair
        if pair is None:
            self._set_status(Content.assemble(("f: next filter, /: type one", "$foreground-muted")))
            return
        whatif = self.whatif
        topo = whatif.topology
        if self._namer is None or self._namer[0] is not topo:
            self._namer = (topo, bdf_namer(topo))
        name = self._namer[1]
        provider, client = pair
        verdict = whatif.verdict(provider, client)
        parts: list[str | tuple[str, str]] = [
            ("provider ", "$foreground-muted"),
            (name(provider), "bold"),
            " ",
            (full_label(topo, provider), "$foreground-muted"),
            ("  client ", "$foreground-muted"),
            (name(client), "bold"),
            " ",
            (full_label(topo, client), "$foreground-muted"),
            "\n",
            (result_text(verdict), result_style(verdict)),
            ": ",
            verdict_reason(name, verdict, topo),
        ]
        if self.grid.show_nv and self.grid.nv_labels is not None:
            parts += ["\nNVIDIA: ", (self.grid.nv_labels.short(provider, client), "bold")]
        view = self.grid.view
        if view is not None and view.marked:
            before = whatif.original_verdict(provider, client)
            if before is None:
                parts += ["\n", (f"{CHANGED_MARK} new pair (not in the original)", "$text-warning")]
            elif (before.map_type, before.distance) != (verdict.map_type, verdict.distance):
                parts += [
                    "\n",
                    (f"{CHANGED_MARK} was ", "$text-warning"),
                    (result_text(before), result_style(before)),
                    (" before the what-if edits", "$text-warning"),
                ]
        self._set_status(Content.assemble(*parts))

    def _set_status(self, content: Content) -> None:
        """Update the status lines; a layout pass only when their height changes."""
        status = self.query_one("#matrix-status", Static)
        width = status.content_region.width or max(1, self.size.width - 2)
        height = max(1, min(STATUS_MAX_HEIGHT, len(content.wrap(width))))
        if height != self._status_height:
            self._status_height = height
            status.styles.height = height
        status.update(content, layout=False)

    def _show_legend(self) -> None:
        view = self.grid.view
        int_era = view is not None and view.int_era
        parts: list[str | tuple[str, str]]
        if int_era:
            parts = [
                ("n", "$text-success bold"),
                " distance  ",
                ("-1", "$text-error bold"),
                " no common bridge  ",
                ("-2", "$text-error bold"),
                " ACS redirect  ",
            ]
        else:
            parts = [
                ("B", "$text-success bold"),
                " BUS_ADDR  ",
                ("T", "$text-warning"),
                " THRU_HOST_BRIDGE  ",
                ("X", "$text-error bold"),
                " NOT_SUPPORTED  ",
            ]
        parts += [(ASSUMED_MARK, "bold"), " ACS assumed  ", (CHANGED_MARK, "bold"), " changed"]
        if self.grid.show_nv:
            parts += [
                "\nNVIDIA: ",
                ("PIX", "$text-primary"),
                " one switch  ",
                ("PXB", "$text-primary"),
                " bridges  ",
                ("PHB", "$text-primary"),
                " host bridge  ",
                ("NODE", "$text-primary"),
                " host bridges  ",
                ("SYS", "$text-primary"),
                " NUMA nodes",
            ]
        self.query_one("#matrix-legend", Static).update(Content.assemble(*parts))

    def on_matrix_grid_cell_highlighted(self, _message: MatrixGrid.CellHighlighted) -> None:
        """The status line follows the cursor."""
        self._show_status()

    def on_matrix_grid_cell_selected(self, message: MatrixGrid.CellSelected) -> None:
        """Open the explanation of the pair."""
        self._pair_seen = (message.provider, message.client)
        self.p2p_app.select(pair=self._pair_seen)
        self.p2p_app.show("explain")

    # -- actions -------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """``escape`` only while the filter prompt is open (hidden otherwise); ``n`` on cells."""
        if action == "close_filter":
            return self._filter_bar.display
        if action == "toggle_nv" and self.grid.cursor_pair is None:
            return None
        return True

    def action_next_filter(self) -> None:
        """The next preset that names something here."""
        for step in range(1, len(PRESETS) + 1):
            index = (self._preset + step) % len(PRESETS)
            if self._apply(PRESETS[index], quiet=True):
                self._preset = index
                return
            self.notify(f"{PRESETS[index].title}: none here, skipped", timeout=3)

    def action_type_filter(self) -> None:
        """Open the filter prompt."""
        prompt = self.query_one("#matrix-filter", Input)
        prompt.value = self.filter.spec
        self._filter_bar.display = True
        prompt.focus()
        self.refresh_bindings()

    def action_close_filter(self) -> None:
        """Close the filter prompt without applying it."""
        self._filter_bar.display = False
        self.grid.focus()
        self.refresh_bindings()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply the typed filter; a bad one keeps the prompt open."""
        if event.input.id != "matrix-filter":
            return
        event.stop()
        try:
            wanted = parse_filter(event.value)
        except ValueError as exc:
            self.notify(str(exc), title="Filter", severity="warning")
            return
        if self._apply(wanted):
            self.action_close_filter()

    def action_toggle_nv(self) -> None:
        """NVIDIA labels beside the kernel's, or not."""
        grid = self.grid
        grid.set_nv_labels(not grid.show_nv)
        self._show_legend()
        self._show_status()

    def action_toggle_legend(self) -> None:
        """Hide or show the legend."""
        legend = self.query_one("#matrix-legend", Static)
        legend.display = not legend.display
