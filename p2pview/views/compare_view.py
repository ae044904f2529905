"""``p2pview compare``: nvidia-smi's labels beside the kernel's verdicts, as Rich tables."""

from __future__ import annotations

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.compare import Agreement, Comparison, PairComparison
from p2pview.session import Session
from p2pview.sources.nvsmi import LegendForm
from p2pview.views.explain import RESULT_STYLE
from p2pview.views.matrix_table import header_text
from p2pview.views.names import bdf_text

STATUS_STYLE = {
    Agreement.AGREE: "bold green",
    Agreement.EXPECTED: "yellow",
    Agreement.UNKNOWN: "magenta",
    Agreement.UNEXPECTED: "bold red",
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
        return Text(str(v.distance), style="bold red" if v.distance < 0 else "bold green")
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
            else Text("-", style="bold red")
        )
        label = topo[d.bdf].label if d.bdf is not None else None
        if label and label != d.label:
            function.append(f" {label}", style="dim")
        values = [m.affinity_of(d.label, c) or "" for c in m.affinity_columns]
        table.add_row(d.label, d.name or "", function, d.method, *values, d.note)
    return table


def pairs_table(session: Session, comparison: Comparison) -> Table:
    """One row per compared pair."""
    topo = session.topology
    table = Table(
        title="Pairs (row device = provider)",
        box=box.SIMPLE_HEAD,
        title_justify="left",
        show_lines=False,
    )
    table.add_column("pair", no_wrap=True)
    table.add_column("functions", no_wrap=True)
    table.add_column("nvidia-smi", no_wrap=True)
    table.add_column("p2pview", no_wrap=True)
    table.add_column("kernel", no_wrap=True)
    table.add_column("status", no_wrap=True)
    table.add_column("why", ratio=1, min_width=30)
    for p in comparison.pairs:
        same = p.derived.matches(p.nvidia_level) if p.nvidia_level is not None else False
        table.add_row(
            f"{p.a}-{p.b}",
            f"{bdf_text(topo, p.bdf_a)} {bdf_text(topo, p.bdf_b)}",
            Text(p.nvidia, style="bold"),
            Text(p.derived_printed, style="" if same else "bold"),
            kernel_cell(p),
            Text(p.status.value, style=STATUS_STYLE[p.status]),
            why(p),
        )
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


def compare_view(session: Session, comparison: Comparison) -> RenderableType:
    """The whole ``p2pview compare`` output."""
    m = comparison.matrix
    head = header_text(session)
    head.append(f"\nnvidia-smi topo -m: {m.path}, {_FORM_TEXT[m.form]}")
    parts: list[RenderableType] = [head, devices_table(session, comparison)]
    if comparison.pairs:
        parts.append(pairs_table(session, comparison))
    parts.append(summary_text(comparison))
    notes = [*comparison.notes, *session.notes]
    if notes:
        text = Text()
        for note in notes:
            text.append(f"note: {note}\n", style="dim")
        parts.append(text)
    return Group(*parts)


def compare_width(comparison: Comparison) -> int:
    """A console width at which the pairs table does not squeeze the ``why`` column."""
    return 150 if comparison.pairs else 100
