"""A scrolling grid over the pair matrix's numpy arrays that draws only what is on screen.

The stock DataTable builds a row of renderables per table row and drops its
caches on every cursor move; at 2,000 x 2,000 cells that is far too slow. This
widget uses Textual's line API instead (:class:`~textual.scroll_view.ScrollView`
and :meth:`render_line`, as Textual's checkerboard example and Toolong's log
view do): each screen line reads the few cells that are visible through the
view's index arrays and turns them into segments.

Layout, in cells::

    client →      │  nvme    gpu    ...   <- header: a kind per column
    provider ↓    │ 1a:00.0 1c:00.0 ...   <- header: the client's BDF
    1a:00.0 nvme  │  B0      T4     ...   <- one line per provider
    ^ label column (sticky), then columns of one width each

When the functions are in several PCI domains a third header line above
holds the domain, so that the columns stay 8 cells wide. The header stays on
screen when scrolling down, the label column when scrolling right. Colours
come from component classes (theme variables only).
"""

from __future__ import annotations

from typing import ClassVar

from rich.cells import cell_len, set_cell_size
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.message import Message
from textual.reactive import reactive
from textual.scroll_view import ScrollView
from textual.strip import Strip

from p2pview.kernel.matrix import CODE_INT_ERA
from p2pview.model import BDF
from p2pview.tui.presenters.matrix_data import (
    NV_WIDTH,
    MatrixView,
    NvLabels,
    bdf_namer,
    cell_component,
    kernel_text,
    kind_abbreviation,
)
from p2pview.views.names import short_label

#: Lines of column header above the cells: a kind and the BDF (and the domain, when
#: the functions are in several PCI domains).
HEADER_HEIGHT = 2
#: Widest provider name in the label column (a narrower one on a narrow screen).
NAME_WIDTH_MAX = 24
#: The rule between the label column and the cells.
SEPARATOR = "│"


class MatrixGrid(ScrollView, can_focus=True):
    """Providers (rows) x clients (columns): map type, distance and marks per cell.

    Post :class:`CellHighlighted` when the cursor moves and :class:`CellSelected`
    on ``enter`` or a click on the highlighted cell.
    """

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cell", "Explain"),
        Binding("up", "move(0, -1)", "Up", show=False),
        Binding("down", "move(0, 1)", "Down", show=False),
        Binding("left", "move(-1, 0)", "Left", show=False),
        Binding("right", "move(1, 0)", "Right", show=False),
        Binding("pageup", "page(-1)", "Page up", show=False),
        Binding("pagedown", "page(1)", "Page down", show=False),
        Binding("ctrl+pageup", "page_columns(-1)", "Page left", show=False),
        Binding("ctrl+pagedown", "page_columns(1)", "Page right", show=False),
        Binding("home", "first_column", "First column", show=False),
        Binding("end", "last_column", "Last column", show=False),
        Binding("ctrl+home", "first_cell", "Top left", show=False),
        Binding("ctrl+end", "last_cell", "Bottom right", show=False),
    ]

    #: (row, column) of the highlighted cell; kept on a cell of the view by
    #: :meth:`validate_cursor`, drawn and reported by :meth:`watch_cursor`.
    cursor: reactive[tuple[int, int]] = reactive((0, 0), init=False)

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "matrix--corner",
        "matrix--header-kind",
        "matrix--header-bdf",
        "matrix--label",
        "matrix--label-name",
        "matrix--rule",
        "matrix--crosshair",
        "matrix--bus-addr",
        "matrix--thru-host",
        "matrix--not-supported",
        "matrix--int-ok",
        "matrix--int-fail",
        "matrix--undetermined",
        "matrix--changed",
        "matrix--nv",
        "matrix--cursor",
        "matrix--empty",
    }

    DEFAULT_CSS = """
    MatrixGrid {
        height: 1fr;
        background: $surface;
    }
    MatrixGrid > .matrix--corner { color: $text-muted; }
    MatrixGrid > .matrix--header-kind { color: $text-muted; }
    MatrixGrid > .matrix--header-bdf { color: $text; text-style: bold; }
    MatrixGrid > .matrix--label { color: $text; text-style: bold; }
    MatrixGrid > .matrix--label-name { color: $text-muted; }
    MatrixGrid > .matrix--rule { color: $text-muted; }
    MatrixGrid > .matrix--crosshair { background: $accent-muted; color: $text; }
    MatrixGrid > .matrix--bus-addr { color: $text-success; text-style: bold; }
    MatrixGrid > .matrix--thru-host { color: $text-warning; }
    MatrixGrid > .matrix--not-supported { color: $text-error; text-style: bold; }
    MatrixGrid > .matrix--int-ok { color: $text-success; text-style: bold; }
    MatrixGrid > .matrix--int-fail { color: $text-error; text-style: bold; }
    MatrixGrid > .matrix--undetermined { color: $text-accent; }
    MatrixGrid > .matrix--changed { text-style: bold underline; }
    MatrixGrid > .matrix--nv { color: $text-primary; }
    MatrixGrid > .matrix--cursor { text-style: reverse bold; }
    MatrixGrid:blur > .matrix--cursor { text-style: reverse; }
    MatrixGrid > .matrix--empty { color: $text-muted; text-style: italic; }
    """

    class CellHighlighted(Message):
        """The cursor is on another cell (or the view changed under it)."""

        def __init__(self, grid: MatrixGrid, row: int, col: int, provider: BDF, client: BDF):
            super().__init__()
            self.grid = grid
            self.row = row
            self.col = col
            self.provider = provider
            self.client = client

        @property
        def control(self) -> MatrixGrid:
            """The grid."""
            return self.grid

    class CellSelected(CellHighlighted):
        """``enter`` (or a click) on the highlighted cell."""

    def __init__(
        self,
        *,
        name: str | None = None,
        id: str | None = None,
        classes: str | None = None,
    ) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.view: MatrixView | None = None
        self.show_nv = False
        self.nv_labels: NvLabels | None = None
        self.empty_text = "Nothing in view."
        self._row_bdfs: list[str] = []
        self._row_names: list[str] = []
        self._header: list[tuple[str, str, list[str]]] = []
        self._header_height = HEADER_HEIGHT
        self._kernel_width = 2
        self._label_width = 20
        self._cell_width = 8
        self._texts: dict[tuple[int, int, bool, bool], str] = {}
        self._styles: dict[tuple[str, bool], Style] = {}
        self._base_style: Style | None = None

    # -- what is shown -----------------------------------------------------------

    def set_view(self, view: MatrixView, cursor: tuple[BDF, BDF] | None = None) -> None:
        """Show ``view``; the cursor goes to ``cursor`` when it is in view, else stays."""
        old = self.view
        if self.nv_labels is None or self.nv_labels.topology is not view.topology:
            self.nv_labels = NvLabels(view.topology)
        if cursor is None and old is not None and not old.empty:
            cursor = (old.provider(self.cursor_row), old.client(self.cursor_col))
        self.view = view
        topo = view.topology
        providers = [view.provider(i) for i in range(view.n_rows)]
        clients = [view.client(j) for j in range(view.n_cols)]
        name = bdf_namer(topo)
        self._row_bdfs = [name(b) for b in providers]
        self._row_names = [short_label(topo[b]) for b in providers]
        kinds = [kind_abbreviation(topo, b) for b in clients]
        if name is BDF.short or not clients:
            self._header = [
                ("client →", "matrix--header-kind", kinds),
                ("provider ↓", "matrix--header-bdf", [name(b) for b in clients]),
            ]
        else:  # several domains: the domain on a line of its own keeps columns narrow
            self._header = [
                ("domain", "matrix--header-kind", [f"{b.domain:04x}" for b in clients]),
                ("client →", "matrix--header-kind", kinds),
                ("provider ↓", "matrix--header-bdf", [str(b)[5:] for b in clients]),
            ]
        self._header_height = len(self._header)
        self._kernel_width = view.kernel_width
        self._texts.clear()
        row, col = self.cursor
        if cursor is not None:
            found_row, found_col = view.row_of(cursor[0]), view.col_of(cursor[1])
            row = row if found_row is None else found_row
            col = col if found_col is None else found_col
        self._layout()
        # set without its watcher (a new view redraws whole), then said once
        self.set_reactive(MatrixGrid.cursor, self.validate_cursor((row, col)))
        self._cursor_moved()

    def set_nv_labels(self, on: bool) -> None:
        """Show NVIDIA's label (PIX ... SYS) beside the kernel's in every cell."""
        self.show_nv = on
        self._layout()
        self._scroll_to_cursor()
        self.refresh()

    @property
    def cursor_row(self) -> int:
        """The provider row under the cursor."""
        return self.cursor[0]

    @property
    def cursor_col(self) -> int:
        """The client column under the cursor."""
        return self.cursor[1]

    def validate_cursor(self, cursor: tuple[int, int]) -> tuple[int, int]:
        """Keep the cursor on a cell of the view."""
        view = self.view
        if view is None or view.empty:
            return (0, 0)
        row, col = cursor
        return (min(max(row, 0), view.n_rows - 1), min(max(col, 0), view.n_cols - 1))

    def watch_cursor(self, previous: tuple[int, int], _cursor: tuple[int, int]) -> None:
        """Scroll to the new cell, redraw the lines that changed, tell the screen."""
        self._cursor_moved(previous[0])

    @property
    def cursor_pair(self) -> tuple[BDF, BDF] | None:
        """(provider, client) under the cursor."""
        view = self.view
        if view is None or view.empty:
            return None
        return view.provider(self.cursor_row), view.client(self.cursor_col)

    @property
    def cell_width(self) -> int:
        """Cells per column, the gap included."""
        return self._cell_width

    @property
    def label_width(self) -> int:
        """Cells of the sticky label column, the rule included."""
        return self._label_width

    def _layout(self) -> None:
        """Column widths and the virtual size, from the view and the widget's width."""
        view = self.view
        if view is None:
            return
        width = self.size.width or 80
        bdf_width = max((len(t) for t in self._row_bdfs), default=7)
        name_cap = max(8, min(NAME_WIDTH_MAX, width // 6))
        name_width = min(name_cap, max((cell_len(t) for t in self._row_names), default=0))
        self._label_width = max(bdf_width + 1 + name_width, len("provider ↓")) + 2
        content = max(self._kernel_width, max((len(t) for t in self._header[-1][2]), default=0))
        if self.show_nv:
            content = max(content, self._kernel_width + 1 + NV_WIDTH)
        self._cell_width = content + 1
        if view.empty:
            self.virtual_size = Size(width, 1)
            return
        self.virtual_size = Size(
            self._label_width + view.n_cols * self._cell_width, self._header_height + view.n_rows
        )

    def on_resize(self, _event: events.Resize) -> None:
        """The label column narrows on small screens."""
        self._layout()
        self._scroll_to_cursor()

    # -- the cursor ----------------------------------------------------------------

    def _viewport(self) -> tuple[int, int]:
        """Cells of columns and lines of rows that fit beside and below the headers."""
        region = self.scrollable_content_region
        return (
            max(1, region.width - self._label_width),
            max(1, region.height - self._header_height),
        )

    def _scroll_to_cursor(self) -> bool:
        """Scroll so that the cursor's cell is in view; whether it scrolled."""
        view = self.view
        if view is None or view.empty:
            return False
        region = self.scrollable_content_region
        if region.width <= self._label_width or region.height <= self._header_height:
            # Not laid out yet (a view set before the first layout): the viewport would
            # count as one cell and scroll the cursor to the top left corner, hiding the
            # rows and columns before it. on_resize scrolls once the size is known.
            return False
        across, down = self._viewport()
        x, y = self.scroll_offset
        left = self.cursor_col * self._cell_width
        right = left + self._cell_width
        if left < x:
            x = left
        elif right > x + across:
            # Scroll by whole columns, so that the left edge stays on a column.
            x = -(-(right - across) // self._cell_width) * self._cell_width
            x = min(x, left)
        if self.cursor_row < y:
            y = self.cursor_row
        elif self.cursor_row >= y + down:
            y = self.cursor_row - down + 1
        if (x, y) == tuple(self.scroll_offset):
            return False
        self.scroll_to(x, y, animate=False, force=True)
        return True

    def move_cursor(self, row: int, col: int) -> None:
        """Put the cursor on cell ``(row, col)`` (clamped to the view)."""
        if self.view is None or self.view.empty:
            return
        self.cursor = (row, col)

    def _cursor_moved(self, previous_row: int | None = None) -> None:
        """Scroll the cursor into view, redraw, tell the screen.

        With ``previous_row`` only the lines that change are redrawn (the two
        header lines, the old and the new row), unless the grid scrolled.
        """
        view = self.view
        if view is None:
            return
        scrolled = self._scroll_to_cursor()
        if previous_row is None or scrolled:
            self.refresh()
        else:
            top = self.scroll_offset.y
            self.refresh_lines(top, self._header_height)
            self.refresh_line(self._header_height + previous_row)
            self.refresh_line(self._header_height + self.cursor_row)
        if not view.empty:
            self.post_message(
                self.CellHighlighted(
                    self,
                    self.cursor_row,
                    self.cursor_col,
                    view.provider(self.cursor_row),
                    view.client(self.cursor_col),
                )
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Cursor keys and ``enter`` do nothing on an empty view."""
        if action in ("select_cell", "move", "page", "page_columns") and (
            self.view is None or self.view.empty
        ):
            return None
        return True

    def action_move(self, across: int, down: int) -> None:
        """One cell."""
        self.move_cursor(self.cursor_row + down, self.cursor_col + across)

    def action_page(self, pages: int) -> None:
        """A screen of rows."""
        _, down = self._viewport()
        self.move_cursor(self.cursor_row + pages * down, self.cursor_col)
        self._scroll_to_cursor()

    def action_page_columns(self, pages: int) -> None:
        """A screen of columns."""
        across, _ = self._viewport()
        step = max(1, across // self._cell_width)
        self.move_cursor(self.cursor_row, self.cursor_col + pages * step)

    def action_first_column(self) -> None:
        """The row's first cell."""
        self.move_cursor(self.cursor_row, 0)

    def action_last_column(self) -> None:
        """The row's last cell."""
        self.move_cursor(self.cursor_row, 1 << 30)

    def action_first_cell(self) -> None:
        """The top left cell."""
        self.move_cursor(0, 0)

    def action_last_cell(self) -> None:
        """The bottom right cell."""
        self.move_cursor(1 << 30, 1 << 30)

    def action_select_cell(self) -> None:
        """Tell the screen to open the highlighted pair."""
        pair = self.cursor_pair
        if pair is not None:
            self.post_message(self.CellSelected(self, self.cursor_row, self.cursor_col, *pair))

    def cell_at(self, x: int, y: int) -> tuple[int, int] | None:
        """The cell under content offset ``(x, y)``, if any."""
        view = self.view
        if view is None or view.empty or y < self._header_height or x < self._label_width:
            return None
        sx, sy = self.scroll_offset
        row = sy + y - self._header_height
        col = (sx + x - self._label_width) // self._cell_width
        if row >= view.n_rows or col >= view.n_cols:
            return None
        return row, col

    def on_click(self, event: events.Click) -> None:
        """Click a cell to highlight it; click it again (or double-click) to open it."""
        offset = event.get_content_offset(self)
        if offset is None:
            return
        cell = self.cell_at(offset.x, offset.y)
        if cell is None:
            return
        if cell == (self.cursor_row, self.cursor_col) or event.chain > 1:
            self.move_cursor(*cell)
            self.action_select_cell()
        else:
            self.move_cursor(*cell)

    # -- drawing -----------------------------------------------------------------

    def notify_style_update(self) -> None:
        """The theme changed: forget the styles kept for drawing."""
        self._styles.clear()
        self._base_style = None
        super().notify_style_update()

    def _style(self, name: str, partial: bool = False) -> Style:
        """A component's Rich style, kept until the styles change (drawing asks often)."""
        key = (name, partial)
        style = self._styles.get(key)
        if style is None:
            style = self.get_component_rich_style(name, partial=partial)
            self._styles[key] = style
        return style

    @property
    def _base(self) -> Style:
        """The widget's own style (background), kept: ``rich_style`` walks the ancestors."""
        if self._base_style is None:
            self._base_style = self.rich_style
        return self._base_style

    def render_line(self, y: int) -> Strip:
        """One screen line: the header, or a provider's label and visible cells."""
        width = self.scrollable_content_region.width or self.size.width
        base = self._base
        view = self.view
        if view is None or view.empty:
            if y == 0:
                text = set_cell_size(f" {self.empty_text}", width)
                return Strip([Segment(text, self._style("matrix--empty"))], width)
            return Strip.blank(width, base)
        sx, sy = self.scroll_offset
        label_width = min(self._label_width, width)
        across = width - label_width
        if y < self._header_height:
            label = self._corner(y, label_width)
            first, stop, segments = self._header_segments(y, sx, across, view.n_cols)
        else:
            row = sy + y - self._header_height
            if row >= view.n_rows:
                return Strip.blank(width, base)
            label = self._row_label(row, label_width)
            first, stop, segments = self._cell_segments(view, row, sx, across)
        if across <= 0 or first >= stop:
            return label.extend_cell_length(width, base)
        cells = Strip(segments, (stop - first) * self._cell_width)
        offset = sx - first * self._cell_width
        cells = cells.crop(offset, offset + across)
        return Strip.join([label, cells]).extend_cell_length(width, base)

    def _visible_columns(self, sx: int, across: int, n_cols: int) -> tuple[int, int]:
        first = sx // self._cell_width
        stop = min(n_cols, -(-(sx + max(across, 0)) // self._cell_width))
        return first, stop

    def _corner(self, y: int, width: int) -> Strip:
        text = self._header[y][0]
        body = set_cell_size(" " + text, width - 1)
        return Strip(
            [
                Segment(body, self._style("matrix--corner")),
                Segment(SEPARATOR, self._style("matrix--rule")),
            ],
            width,
        )

    def _row_label(self, row: int, width: int) -> Strip:
        bdf = self._row_bdfs[row]
        name = self._row_names[row]
        if row == self.cursor_row:
            text = set_cell_size(f"{bdf} {name}", width - 1)
            crosshair = self._style("matrix--crosshair")
            segments = [Segment(text, crosshair + Style(bold=True))]
        else:
            name_text = set_cell_size(" " + name, max(0, width - 1 - len(bdf)))
            segments = [
                Segment(bdf[: width - 1], self._style("matrix--label")),
                Segment(name_text, self._style("matrix--label-name")),
            ]
        segments.append(Segment(SEPARATOR, self._style("matrix--rule")))
        return Strip(segments, width)

    def _header_segments(
        self, y: int, sx: int, across: int, n_cols: int
    ) -> tuple[int, int, list[Segment]]:
        first, stop = self._visible_columns(sx, across, n_cols)
        _, component, texts = self._header[y]
        normal = self._style(component)
        crosshair = self._style("matrix--crosshair")
        gap = Segment(" ", self._base)
        content = self._cell_width - 1
        segments: list[Segment] = []
        grouped = y == 0 and self._header_height > HEADER_HEIGHT  # the domains
        for col in range(first, stop):
            text = texts[col]
            if grouped and col > first and text == texts[col - 1]:
                text = ""
            text = text[:content].center(content)
            segments.append(gap)
            segments.append(Segment(text, crosshair if col == self.cursor_col else normal))
        return first, stop, segments

    def _cell_segments(
        self, view: MatrixView, row: int, sx: int, across: int
    ) -> tuple[int, int, list[Segment]]:
        first, stop = self._visible_columns(sx, across, view.n_cols)
        if first >= stop:
            return first, stop, []
        codes, distances, assumed, changed = view.row_cells(row, first, stop)
        gap = Segment(" ", self._base)
        kernel = self._kernel_width
        content = self._cell_width - 1
        nv = self.nv_labels if self.show_nv else None
        nv_style = self._style("matrix--nv")
        changed_style = self._style("matrix--changed", partial=True)
        cursor_style = self._style("matrix--cursor", partial=True)
        nv_cursor = nv_style + cursor_style
        provider = view.provider(row) if nv is not None else None
        cursor_col = self.cursor_col if row == self.cursor_row else -1
        segments: list[Segment] = []
        for k in range(stop - first):
            col = first + k
            flag = changed is not None and changed[k]
            key = (codes[k], distances[k], assumed[k], flag)
            text = self._texts.get(key)
            if text is None:
                raw = kernel_text(*key)
                # Ints (v4.20-v5.3) line up on the right, "B4"/"T12" on the letter.
                text = raw.rjust(kernel) if key[0] == CODE_INT_ERA else raw.ljust(kernel)
                self._texts[key] = text
            style = self._style(cell_component(codes[k], distances[k]))
            if flag:
                style += changed_style
            at_cursor = col == cursor_col
            if at_cursor:
                style += cursor_style
            segments.append(gap)
            if nv is None or provider is None:
                segments.append(Segment(text.center(content), style))
                continue
            label = nv.short(provider, view.client(col)).ljust(NV_WIDTH)
            left = (content - kernel - 1 - NV_WIDTH) // 2
            right = content - kernel - 1 - NV_WIDTH - left
            segments.append(Segment(" " * left + text, style))
            segments.append(
                Segment(" " + label + " " * right, nv_cursor if at_cursor else nv_style)
            )
        return first, stop, segments
