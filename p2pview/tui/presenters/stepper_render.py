"""The stepper's text: the pipeline, the scenario header, the result, the step's events.

Everything is built as Textual ``Content`` from plain strings, so a device
label or a scenario description is never read as markup. Colours are theme
variables only (they resolve when the widget renders, in light and dark
themes). ``p2pview/views/trace_view.py`` is the CLI's wording; this follows it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content

from p2pview.iosim import STAGE_TITLES, STAGES, DmaChosenBy, DmaMode, Trace
from p2pview.iosim.objects import RAM, Event, Result, syscall_name
from p2pview.model import BDF
from p2pview.model.units import size_text

# -- styles (theme variables only) ---------------------------------------------------

#: Something the current step created or changed.
CHANGED = "bold on $accent-muted"
#: The current stage in the pipeline.
CURRENT = "bold $block-cursor-foreground on $block-cursor-background"
ERROR = "bold $text-error"
WARN = "$text-warning"
GOOD = "bold $text-success"
MUTED = "$text-muted"
DISABLED = "$text-disabled"
TITLE = "bold $text-accent"
HEAD = "bold $text-primary"
#: Tags such as [recalled] or [inferred]: how sure the simulator is.
TAG = "italic $text-secondary"

#: One glyph and style per provider's pgmap (1, 2, ...); RAM is ``RAM_GLYPH``.
PGMAP_GLYPHS = ("█", "▓", "▒", "▚", "▞")
PGMAP_STYLES = (
    "$text-accent",
    "$text-primary",
    "$text-secondary",
    "$text-warning",
    "$text-success",
)
RAM_GLYPH = "░"
RAM_STYLE = "$text-muted"


def pgmap_glyph(pgmap: int) -> tuple[str, str]:
    """The strip glyph and style of a pgmap id (``RAM`` or a provider's)."""
    if pgmap == RAM:
        return RAM_GLYPH, RAM_STYLE
    k = (pgmap - 1) % len(PGMAP_GLYPHS)
    return PGMAP_GLYPHS[k], PGMAP_STYLES[k]


def providers_by_pgmap(trace: Trace) -> dict[int, BDF]:
    """Map each provider's pgmap id to its BDF."""
    return {p.pgmap: bdf for bdf, p in trace.context.providers.items()}


def memory_of(trace: Trace, pgmap: int, short: bool = True) -> str:
    """``RAM`` or the provider owning the pgmap (short BDF by default)."""
    if pgmap == RAM:
        return "RAM"
    bdf = providers_by_pgmap(trace).get(pgmap)
    if bdf is None:
        return "?"
    return bdf.short() if short else str(bdf)


def hx(value: int) -> str:
    """Hexadecimal as the kernel prints addresses."""
    return f"{value:#x}"


# -- a fixed-width table that drops columns to fit -------------------------------------


@dataclass(frozen=True)
class Column:
    """One table column; ``drop`` > 0 columns may be hidden when the table is too wide."""

    title: str
    right: bool = False
    #: Higher goes first when columns must be dropped; 0: never dropped.
    drop: int = 0


#: A cell: plain text, or (text, style).
Cell = str | tuple[str, str]


@dataclass(frozen=True)
class Row:
    """One table row and the style laid over all of it ("" for none)."""

    cells: Sequence[Cell]
    style: str = ""


def _cell(cell: Cell) -> tuple[str, str]:
    return (cell, "") if isinstance(cell, str) else cell


def table(
    columns: Sequence[Column], rows: Sequence[Row], width: int, indent: int = 0
) -> tuple[list[Content], list[str]]:
    """Lines of a table no wider than ``width`` (when dropping columns can do it).

    Returns the lines (the header first) and the titles of the columns dropped.
    """
    texts = [[_cell(c) for c in row.cells] for row in rows]
    widths = [len(c.title) for c in columns]
    for cells in texts:
        for i, (text, _) in enumerate(cells):
            widths[i] = max(widths[i], len(text))
    shown = list(range(len(columns)))

    def total() -> int:
        return indent + sum(widths[i] for i in shown) + 2 * max(0, len(shown) - 1)

    dropped: list[str] = []
    while total() > width:
        candidates = [i for i in shown if columns[i].drop > 0]
        if not candidates:
            break
        victim = max(candidates, key=lambda i: (columns[i].drop, i))
        shown.remove(victim)
        dropped.append(columns[victim].title)

    def line(cells: Sequence[tuple[str, str]], row_style: str) -> Content:
        parts: list[tuple[str, str] | str] = [" " * indent]
        for n, i in enumerate(shown):
            text, style = cells[i]
            padded = text.rjust(widths[i]) if columns[i].right else text.ljust(widths[i])
            if n:
                parts.append("  ")
            parts.append((padded, style))
        content = Content.assemble(*parts).rstrip()
        if row_style:
            content = content.stylize(row_style, indent, len(content))
        return content

    header = line([(c.title, HEAD) for c in columns], "")
    return [header, *(line(cells, row.style) for cells, row in zip(texts, rows, strict=True))], (
        dropped
    )


def lines(parts: Sequence[Content | str]) -> Content:
    """Join lines into one Content (plain strings are not markup)."""
    return Content("\n").join(Content(p) if isinstance(p, str) else p for p in parts)


# -- the pipeline ------------------------------------------------------------------------


def failure_mark(result: Result) -> str:
    """What the pipeline shows beside the stage where the I/O stopped (empty: it did not)."""
    if result.outcome == "error":
        return f"✗ {result.errno or 'error'}"
    if result.outcome == "hang":
        return "✗ requeued forever"
    if result.outcome == "short":
        return "⚠ short count"
    if result.outcome == "wrong address":
        return "✗ address 0"
    return ""


def stage_states(trace: Trace) -> dict[str, str]:
    """Each stage: ``reached``, ``skipped`` (passed over after an error) or ``unreached``."""
    reached = {step.stage for step in trace.steps}
    last = max((STAGES.index(s.stage) for s in trace.steps), default=-1)
    out = {}
    for i, stage in enumerate(STAGES):
        if stage in reached:
            out[stage] = "reached"
        elif i < last:
            out[stage] = "skipped"
        else:
            out[stage] = "unreached"
    return out


def pipeline(trace: Trace, index: int) -> Content:
    """Every stage in order: the current one lit, the failing one marked with its errno."""
    current = trace.steps[index].stage
    current_pos = STAGES.index(current)
    states = stage_states(trace)
    result = trace.result
    failed_at = result.stage if result.outcome != "ok" else None
    parts: list[tuple[str, str] | str] = []
    for i, stage in enumerate(STAGES):
        if i:
            parts.append((" › ", MUTED))  # noqa: RUF001 (a pipeline arrow, on purpose)
        state = states[stage]
        if stage == current:
            style = CURRENT
        elif state == "reached":
            style = "" if i < current_pos else MUTED
        elif state == "skipped":
            style = f"strike {DISABLED}"
        else:
            style = DISABLED
        if stage == failed_at and stage != current:
            style = ERROR
        parts.append((stage, style))
        if stage == failed_at:
            parts.append((" " + failure_mark(result), ERROR))
        elif state == "skipped" and stage != current:
            parts.append((" (skipped)", DISABLED))
    return Content.assemble(*parts)


# -- the scenario header ---------------------------------------------------------------


def scenario_header(trace: Trace, session_kernel: str, iommu_on: bool, origin: str = "") -> Content:
    """Two or three lines: the scenario, the I/O and verdicts, and any caveat."""
    ctx = trace.context
    sc = ctx.scenario
    description = sc.description.strip()
    first = description.splitlines()[0] if description else ""
    top = Content.assemble((sc.name, TITLE), (": " + first) if first else "")
    op = syscall_name(sc.write, len(sc.io_vectors))
    facts: list[tuple[str, str] | str] = [f"{op} of {size_text(sc.io_length)}"]
    for bdf in ctx.providers:
        verdict = ctx.verdict(bdf)
        kind = verdict.map_type.value if verdict.map_type is not None else "int"
        good = verdict.map_type is not None and kind != "NOT_SUPPORTED"
        facts += [" · provider ", (bdf.short(), "bold"), " "]
        facts.append((f"{kind} {verdict.distance}", GOOD if good else ERROR))
    facts += [
        " · client ",
        (sc.client.short(), "bold"),
        f" ({ctx.client.driver or 'no driver'}) · DMA {sc.dma.value} · kernel {ctx.datapath.title}",
    ]
    notes: list[str] = []
    if origin:
        notes.append(origin)
    if ctx.kernel_note:
        notes.append(ctx.kernel_note)
    elif sc.kernel is not None and str(ctx.datapath.title) != session_kernel:
        notes.append(
            f"this I/O runs under kernel {ctx.datapath.title}, verdicts and data path; the"
            f" other screens keep the session's {session_kernel}"
        )
    dma_note = _dma_note(trace, iommu_on)
    if dma_note:
        notes.append(dma_note)
    for prov in ctx.providers.values():
        notes.extend(f"{prov.bdf.short()}: {note}" for note in prov.notes)
    out = [top, Content.assemble(*facts)]
    if notes:
        out.append(Content.styled("note: " + "; ".join(notes), WARN))
    return lines(out)


def _dma_note(trace: Trace, iommu_on: bool) -> str | None:
    """How the DMA mode was chosen, when it is a what-if or an assumption, and where to change it.

    The simulator's note says how; the stepper adds where: the form's DMA
    field for an I/O built in the form, a scenario file's ``[dma] mode``, and
    ``c`` (this I/O's controller and DMA fields) to change it.
    """
    ctx = trace.context
    choice = ctx.dma
    note = choice.note
    if note is None or (choice.chosen_by is DmaChosenBy.TOPOLOGY and not choice.iommu_assumed):
        return None  # the topology's IOMMU decided, as the header's "DMA" says
    if choice.chosen_by is DmaChosenBy.DEFAULT:
        note += " (c, then DMA, chooses one)"
    elif choice.chosen_by is DmaChosenBy.SCENARIO and ctx.scenario.path:
        note += " (the scenario file's [dma] mode; c changes it)"
    elif choice.chosen_by is DmaChosenBy.SCENARIO:
        note += " (the form's DMA field)"
    if choice.mode is DmaMode.IOMMU and not iommu_on:
        note += "; the verdicts keep the ACS as loaded (the what-if screen turns the IOMMU on)"
    return note


# -- the result and the status line ----------------------------------------------------


def result_line(trace: Trace, index: int) -> Content:
    """What the application sees, as far as the current step knows."""
    sc = trace.context.scenario
    op = syscall_name(sc.write, len(sc.io_vectors))
    result = trace.steps[index].state.result
    if result is None:
        return Content.styled(f"{op}() in flight", MUTED)
    if result.outcome == "ok":
        return Content.styled(f"{op} returns {result.bytes}", GOOD)
    if result.outcome == "short":
        return Content.styled(f"{op} returns {result.bytes} (short)", WARN)
    if result.outcome == "hang":
        return Content.styled(
            f"{op} never returns: the request is requeued forever ({result.stage})", ERROR
        )
    if result.outcome == "wrong address":
        return Content.styled(
            f"{op} returns, but the device was given address 0 for part of the data [inferred]",
            ERROR,
        )
    if result.stage == "mmap":
        return Content.styled(f"mmap() fails: errno {result.errno}; no I/O is issued", ERROR)
    return Content.styled(f"{op} returns -1, errno {result.errno} (at {result.stage})", ERROR)


def step_title(trace: Trace, index: int) -> str:
    """``8/12 dma_map: DMA mapping``."""
    step = trace.steps[index]
    return (
        f"{index + 1}/{len(trace.steps)} {step.stage}: {STAGE_TITLES.get(step.stage, step.title)}"
    )


def status_line(trace: Trace, index: int) -> Content:
    """``Step 8/12 · dma_map  ⇒ what the application sees``."""
    step = trace.steps[index]
    return Content.assemble(
        (f"Step {index + 1}/{len(trace.steps)}", "bold"),
        " · ",
        (step.stage, TITLE),
        "  ⇒ ",
        result_line(trace, index),
    )


# -- the step's events -----------------------------------------------------------------


def event_lines(event: Event) -> list[Content]:
    """One event: ``function: text [tag]`` and the dmesg lines it printed."""
    style = {"error": ERROR, "warn": WARN}.get(event.level, "")
    mark = {"error": "✗ ", "warn": "⚠ "}.get(event.level, "• ")
    head = Content.assemble(
        (mark, style or MUTED),
        (event.function, "bold"),
        ": ",
        (event.text, style),
    )
    if event.confidence != "read":
        head = head + Content.styled(f" [{event.confidence}]", TAG)
    out = [head]
    out.extend(Content.styled(f"    dmesg: {line}", f"italic {MUTED}") for line in event.dmesg)
    return out


#: Distinct events shown per step (a 1 GiB I/O maps hundreds of requests, one event each).
MAX_EVENTS = 24


def events_view(trace: Trace, index: int) -> Content:
    """The step's events, each with its kernel function, text, tag and dmesg lines.

    Identical events (one per request of a large I/O) are shown once with a
    count; past :data:`MAX_EVENTS` distinct ones the rest are counted.
    """
    step = trace.steps[index]
    groups: dict[tuple[object, ...], tuple[Event, int]] = {}
    for event in step.events:
        key = (event.function, event.text, event.level, event.confidence, event.dmesg)
        first, count = groups.get(key, (event, 0))
        groups[key] = (first, count + 1)
    out: list[Content] = []
    distinct = list(groups.values())
    for event, count in distinct[:MAX_EVENTS]:
        block = event_lines(event)
        if count > 1:
            block[0] = block[0] + Content.styled(f" (x{count}, one per request)", MUTED)
        out.extend(block)
    if len(distinct) > MAX_EVENTS:
        rest = sum(count for _event, count in distinct[MAX_EVENTS:])
        out.append(Content.styled(f"… {rest} more events", MUTED))
    if not out:
        out.append(Content.styled("(this stage printed nothing)", MUTED))
    return lines(out)
