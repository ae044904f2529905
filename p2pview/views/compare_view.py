"""``p2pview compare``: nvidia-smi's labels beside the kernel's verdicts, as Rich tables."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.compare import Agreement, Comparison, PairComparison
from p2pview.kernel import MapType
from p2pview.session import Session
from p2pview.sources.nvsmi import LegendForm
from p2pview.views.explain import RESULT_STYLE
from p2pview.views.names import bdf_text
from p2pview.views.session_header import header_text

STATUS_STYLE = {
    Agreement.AGREE: "status.agree",
    Agreement.EXPECTED: "status.expected",
    Agreement.UNKNOWN: "status.unknown",
    Agreement.UNEXPECTED: "status.unexpected",
}

_FORM_TEXT = {
    LegendForm.OLD: "old legend (SOC)",
    LegendForm.CURRENT: "current legend (SYS/NODE)",
    LegendForm.UNKNOWN: "legend form unknown (no SOC, SYS or NODE)",
}


def why(pair: PairComparison) -> str:
    """The note of the worse check; the kernel's when both agree."""
    if pair.label_agreement.severity > pair.kernel_agreement.severity:
        return pair.label_note
    if (
        pair.label_agreement is pair.kernel_agreement
        and pair.label_agreement is not Agreement.AGREE
    ):
        return f"{pair.label_note}. {pair.kernel_note}"
    return pair.kernel_note


def kernel_cell(pair: PairComparison) -> Text:
    """Map type and distance, coloured as in ``explain``."""
    v = pair.verdict
    if v.map_type is None:
        return Text(
            str(v.distance), style="verdict.unsupported" if v.distance < 0 else "verdict.bus_addr"
        )
    return Text(f"{v.map_type.value} {v.distance}", style=RESULT_STYLE[v.map_type])


def devices_table(session: Session, comparison: Comparison) -> Table:
    """Matrix devices and the functions they were matched to."""
    topo = session.topology
    m = comparison.matrix
    table = Table(title="Devices", box=box.SIMPLE_HEAD, title_justify="left")
    for col in ("matrix", "name", "function", "matched by", *m.affinity_columns, "note"):
        table.add_column(col)
    for d in comparison.devices:
        function = (
            Text(bdf_text(topo, d.bdf), style="bold")
            if d.bdf is not None
            else Text("-", style="verdict.unsupported")
        )
        label = topo[d.bdf].label if d.bdf is not None else None
        if label and label != d.label:
            function.append(f" {label}", style="muted")
        values = [m.affinity_of(d.label, c) or "" for c in m.affinity_columns]
        table.add_row(d.label, d.name or "", function, d.method, *values, d.note)
    return table


def summary_text(comparison: Comparison) -> Text:
    """``36 pairs: 7 agree, 8 expected ...`` and what the statuses mean."""
    counts = comparison.counts()
    text = Text(f"{len(comparison.pairs)} pair(s) compared: ")
    parts = [(a, n) for a, n in counts.items() if n]
    for k, (status, n) in enumerate(parts):
        text.append(f"{n} {status.value}", style=STATUS_STYLE[status])
        if k < len(parts) - 1:
            text.append(", ")
    if not parts:
        text.append("none")
    text.append("\n")
    text.append("agree", style=STATUS_STYLE[Agreement.AGREE])
    text.append(": the PCIe tree gives NVIDIA's label and the kernel treats the path as it says\n")
    text.append("expected", style=STATUS_STYLE[Agreement.EXPECTED])
    text.append(
        ": they differ for a known reason (NVLink, ACS redirect, host bridge not whitelisted)\n"
    )
    text.append("unexpected", style=STATUS_STYLE[Agreement.UNEXPECTED])
    text.append(": another machine or configuration, or a wrong match\n")
    return text


#: The mark after a grid cell for each status (agree has none).
STATUS_MARK = {
    Agreement.AGREE: "",
    Agreement.EXPECTED: "~",
    Agreement.UNKNOWN: "?",
    Agreement.UNEXPECTED: "!",
}
#: Pairs listed one a line for each group below the grid; the rest are counted.
MAX_GROUP_PAIRS = 12


def kernel_code(pair: PairComparison) -> str:
    """The kernel's verdict as the matrix shows it: ``B4``, ``T12``, ``X8`` (or the int)."""
    v = pair.verdict
    if v.undetermined:
        return "?"
    if v.map_type is None:
        return str(v.distance)
    return f"{v.map_type.value[0].replace('N', 'X')}{v.distance}"


def grid_cell(pair: PairComparison) -> Text:
    """``PIX B4``: NVIDIA's label and the kernel's verdict, with the status's mark and colour."""
    text = Text(pair.nvidia, style="bold" if pair.status is Agreement.AGREE else "")
    text.append(" ")
    if pair.verdict.map_type is not None:
        text.append(kernel_code(pair), style=RESULT_STYLE[pair.verdict.map_type])
    else:
        text.append(
            kernel_code(pair), style="verdict.unsupported" if pair.verdict.distance < 0 else ""
        )
    mark = STATUS_MARK[pair.status]
    if mark:
        text.append(mark, style=STATUS_STYLE[pair.status])
    return text


def grid_table(comparison: Comparison) -> Table:
    """The matrix's devices in its own order, each cell NVIDIA's label beside the kernel's verdict.

    A pair is judged once, with the upper triangle's row device as the
    provider; the lower triangle repeats it (the kernel's map type and
    distance are the same either way round). A device no function was found
    for shows NVIDIA's label alone.
    """
    m = comparison.matrix
    by_pair = {frozenset((p.a, p.b)): p for p in comparison.pairs}
    table = Table(box=None, pad_edge=False, header_style="bold", collapse_padding=True)
    table.add_column("", no_wrap=True, style="bold")
    for label in m.labels:
        table.add_column(label, no_wrap=True, justify="left")
    for i, row in enumerate(m.labels):
        cells: list[Text] = []
        for j, col in enumerate(m.labels):
            pair = by_pair.get(frozenset((row, col)))
            if i == j:
                cells.append(Text(" X"))
            elif pair is not None:
                cells.append(grid_cell(pair))
            else:
                cells.append(Text(f"{m.cells[i][j]} -", style="muted"))
        table.add_row(row, *cells)
    return table


def grid_legend() -> Text:
    """What a grid cell says."""
    text = Text("Each cell: nvidia-smi's label, then the kernel's verdict (")
    for k, (code, style, name) in enumerate(
        (
            ("B", RESULT_STYLE[MapType.BUS_ADDR], "BUS_ADDR"),
            ("T", RESULT_STYLE[MapType.THRU_HOST_BRIDGE], "THRU_HOST_BRIDGE"),
            ("X", RESULT_STYLE[MapType.NOT_SUPPORTED], "NOT_SUPPORTED"),
        )
    ):
        if k:
            text.append(", ")
        text.append(code, style=style)
        text.append(f" {name}")
    text.append(" and the distance); then ")
    for k, status in enumerate((Agreement.EXPECTED, Agreement.UNKNOWN, Agreement.UNEXPECTED)):
        if k:
            text.append(", ")
        text.append(STATUS_MARK[status], style=STATUS_STYLE[status])
        text.append(f" {status.value}")
    text.append(" (nothing: they agree); '-': no function was found for the device.")
    return text


def _group_key(p: PairComparison) -> tuple[object, ...]:
    v = p.verdict
    return (p.status.severity, p.nvidia, p.derived_printed, kernel_code(p), v.path.value)


def groups_text(session: Session, comparison: Comparison) -> Text:
    """The pairs that do not simply agree, grouped by what they show, worst first, with why."""
    topo = session.topology
    groups: dict[tuple[object, ...], list[PairComparison]] = {}
    for p in comparison.pairs:
        if p.status is not Agreement.AGREE:
            groups.setdefault(_group_key(p), []).append(p)
    text = Text()
    if not groups:
        return text
    text.append("The pairs that do not simply agree, and why:", style="bold")
    for key in sorted(groups, key=lambda k: (-int(str(k[0])), *map(str, k[1:]))):
        pairs = groups[key]
        first = pairs[0]
        text.append("\n")
        text.append(first.status.value, style=STATUS_STYLE[first.status])
        text.append(
            f"  {len(pairs)} pair(s), nvidia-smi {first.nvidia}, PCIe tree"
            f" {first.derived_printed}, kernel {first.kernel_text}: "
        )
        names = [f"{p.a}-{p.b}" for p in pairs]
        shown = names if len(names) <= MAX_GROUP_PAIRS else names[:MAX_GROUP_PAIRS]
        text.append(", ".join(shown), style="bold")
        if len(names) > len(shown):
            text.append(f" and {len(names) - len(shown)} more")
        pair = f"{bdf_text(topo, first.bdf_a)} -> {bdf_text(topo, first.bdf_b)}"
        lead = f"{first.a}-{first.b} ({pair})" if len(pairs) > 1 else pair
        text.append(f"\n    {lead}: {why(first)}", style="")
    return text


def compare_view(session: Session, comparison: Comparison) -> RenderableType:
    """The whole ``p2pview compare`` output: the summary first, then the grid and the details."""
    m = comparison.matrix
    head = header_text(session)
    head.append(f"\nnvidia-smi topo -m: {m.path}, {_FORM_TEXT[m.form]}")
    parts: list[RenderableType] = [head, Text(""), summary_text(comparison)]
    if comparison.pairs:
        parts += [grid_table(comparison), grid_legend(), Text("")]
        details = groups_text(session, comparison)
        if details:
            parts += [details, Text("")]
    parts.append(devices_table(session, comparison))
    notes = [*comparison.notes, *session.notes]
    if notes:
        text = Text()
        for note in notes:
            text.append(f"note: {note}\n", style="muted")
        parts.append(text)
    parts.append(
        Text(
            "Every pair with both checks and their reasons: --json; one pair in full:"
            " p2pview explain SOURCE PROVIDER CLIENT.",
            style="muted",
        )
    )
    return Group(*parts)


def compare_width(comparison: Comparison) -> int:
    """A console width at which the grid is never squeezed."""
    m = comparison.matrix
    widest = max((len(c) for row in m.cells for c in row), default=4) + 6
    return max(100, 6 + len(m.labels) * (max(widest, *(len(x) for x in m.labels), 8) + 1))
