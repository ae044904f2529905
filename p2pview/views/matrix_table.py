"""The ``p2pview matrix`` table, in the style of ``nvidia-smi topo -m``."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.kernel import PairMatrix
from p2pview.kernel.matrix import (
    CODE_BUS_ADDR,
    CODE_INT_ERA,
    CODE_NOT_SUPPORTED,
    CODE_THRU_HOST_BRIDGE,
    CODE_UNDETERMINED,
)
from p2pview.model import BDF
from p2pview.session import Session
from p2pview.views.names import bdf_text, short_label
from p2pview.views.session_header import header_text

CELL_LETTER = {
    CODE_BUS_ADDR: "B",
    CODE_THRU_HOST_BRIDGE: "T",
    CODE_NOT_SUPPORTED: "X",
    CODE_UNDETERMINED: "?",
}
CELL_STYLE = {
    CODE_BUS_ADDR: "verdict.bus_addr",
    CODE_THRU_HOST_BRIDGE: "verdict.thru",
    CODE_NOT_SUPPORTED: "verdict.unsupported",
    CODE_UNDETERMINED: "assumed",
}
#: What the ``*`` mark means, wherever a matrix is drawn.
ASSUMED_LEGEND = (
    "rests on an assumed fact the source lacks (the CPU, the kernel release, a host"
    " bridge's function, ACS, a parent link); 'p2pview explain' names it and gives the"
    " verdict otherwise"
)
UNDETERMINED_LEGEND = (
    "undetermined: the source does not show what is above a chain, so no verdict can be formed"
)


def cell_text(code: int, distance: int, assumed: bool) -> Text:
    """One cell: ``B4``, ``T6``, ``X4`` (or the int of v4.20-v5.3), ``*`` when assumed, ``?``."""
    mark = "*" if assumed else ""
    if code == CODE_UNDETERMINED:
        return Text("?", style=CELL_STYLE[code])
    if code == CODE_INT_ERA:
        style = "verdict.unsupported" if distance < 0 else "verdict.bus_addr"
        return Text(f"{distance}{mark}", style=style)
    return Text(f"{CELL_LETTER[code]}{distance}{mark}", style=CELL_STYLE[code])


def legend(session: Session, matrix: PairMatrix | None = None) -> Text:
    """What the cell codes mean (``?`` only when ``matrix`` has undetermined cells)."""
    text = Text()
    if session.target.profile.int_distance:
        text.append("n", style="verdict.bus_addr")
        text.append(
            "   distance from upstream_bridge_distance(): a common upstream bridge, no ACS\n"
        )
        text.append("-1", style="verdict.unsupported")
        text.append("  no common upstream bridge    ")
        text.append("-2", style="verdict.unsupported")
        text.append("  ACS redirect on the path\n")
        if session.target.profile.amd_penalty:
            text.append("    4096+n: both root complexes are AMD 1022:1450 (v5.1-v5.3 penalty)\n")
    else:
        text.append("B", style="verdict.bus_addr")
        text.append("  BUS_ADDR: common upstream bridge, no ACS redirect; PCI bus addresses\n")
        text.append("T", style="verdict.thru")
        text.append("  THRU_HOST_BRIDGE: through the host bridge (AMD Zen CPU or whitelisted)\n")
        text.append("X", style="verdict.unsupported")
        text.append("  NOT_SUPPORTED: dma map fails with -EREMOTEIO\n")
        text.append("n  the kernel's distance (calc_map_type_and_dist() dist)\n")
    if matrix is not None and bool((matrix.map_code == CODE_UNDETERMINED).any()):
        text.append("?", style="assumed")
        text.append(f"  {UNDETERMINED_LEGEND}\n")
    text.append(f"*  {ASSUMED_LEGEND}\n")
    text.append("Rows: providers (the memory); columns: clients (the DMA master).")
    return text


def _row_label(session: Session, bdf: BDF) -> Text:
    label = Text(f"{bdf_text(session.topology, bdf)} ")
    label.append(short_label(session.topology[bdf]), style="muted")
    return label


def matrix_table(session: Session, matrix: PairMatrix) -> Table:
    """The grid of cells with labelled rows and BDF columns."""
    topo = session.topology
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False, collapse_padding=True)
    labels = [_row_label(session, b) for b in matrix.providers]
    table.add_column(
        "provider \\ client",
        no_wrap=True,
        style="bold",
        min_width=max((len(x) for x in labels), default=10),
    )
    for client in matrix.clients:
        head = bdf_text(topo, client)
        table.add_column(Text(head), justify="center", no_wrap=True, min_width=len(head))
    for i, label in enumerate(labels):
        cells = [
            cell_text(
                int(matrix.map_code[i, j]), int(matrix.distance[i, j]), bool(matrix.assumed[i, j])
            )
            for j in range(len(matrix.clients))
        ]
        table.add_row(label, *cells)
    return table


def matrix_width(session: Session, matrix: PairMatrix) -> int:
    """Columns the table needs, so that it is never squeezed."""
    label = max((len(_row_label(session, b)) for b in matrix.providers), default=18)
    cols = sum(max(len(bdf_text(session.topology, b)), 6) + 2 for b in matrix.clients)
    return max(label, 18) + 2 + cols


def matrix_view(session: Session, matrix: PairMatrix) -> RenderableType:
    """Header, table, legend and notes."""
    parts: list[RenderableType] = [
        header_text(session),
        Text(""),
        matrix_table(session, matrix),
        legend(session, matrix),
    ]
    for note in session.notes:
        parts.append(Text(f"note: {note}", style="italic"))
    return Group(*parts)
