"""The queue limits an I/O ran with, where each comes from, and what a re-run changed.

The values are the simulator's (``p2pview.iosim.limits.kernel_limits()``), shown
as ``/sys/block/nvme*/queue/*`` names them, each beside the source the simulator
gives it (:class:`~p2pview.iosim.limits.LimitSource`: MDTS, the IOMMU's
``dma_opt_mapping_size()``, ``BLK_DEF_MAX_SECTORS_CAP`` of the release, the
kernel's default ...). ``p2pview trace`` prints the same values.

Collapsed, the limits are one line at the top of the Bios, Scatterlist and
PRP/SGL panels (the scatterlist stays in view at 80x24); ``l`` or a click
opens the table. After a re-run of the same I/O (an edit in the form, another
kernel, a what-if edit) the values that changed are lit with what they were.
The widget that shows them is :class:`p2pview.tui.widgets.stepper_limits.LimitsView`.
"""

from __future__ import annotations

import textwrap
from collections.abc import Sequence
from dataclasses import dataclass

from textual.content import Content

from p2pview.iosim import DmaChosenBy, Trace
from p2pview.iosim.limits import UINT_MAX, mdts_sectors
from p2pview.iosim.objects import syscall_name
from p2pview.iosim.scenario import TargetKind
from p2pview.model.units import size_text
from p2pview.tui.presenters.stepper_render import CHANGED, HEAD, MUTED, TITLE, WARN, lines
from p2pview.tui.stepper_state import RunChange

#: The panels that show the limits (the stages the limits decide: split, request, map_sg, nvme).
LIMITS_PANELS = ("bios", "sg", "nvme")


@dataclass(frozen=True)
class LimitRow:
    """One queue limit: its sysfs name, the value as sysfs shows it, where it comes from."""

    name: str
    value: str
    source: str


def limit_rows(trace: Trace) -> list[LimitRow]:
    """Every limit the I/O ran with, in sysfs order, each with the source the simulator gives.

    ``logical_block_size`` only when it is not 512; ``dma_opt_mapping_size``
    only when the DMA mode has one.
    """
    lim = trace.context.limits
    values = {
        "logical_block_size": str(lim.logical_block_size),
        "max_hw_sectors_kb": str(lim.max_hw_sectors_kb),
        "max_sectors_kb": str(lim.max_sectors_kb),
        "max_segments": str(lim.max_segments),
        "max_segment_size": str(lim.max_segment_size),
        "virt_boundary_mask": f"{lim.virt_boundary_mask:#x}",
        "dma_opt_mapping_size": str(lim.dma_opt_mapping_size),
    }
    return [
        LimitRow(source.name, values[source.name], source.why)
        for source in lim.sources
        if source.name != "logical_block_size" or lim.logical_block_size != 512
    ]


def _mdts_size(mdts: int) -> str:
    """What an MDTS allows per command (``nvme_mps_to_sectors()`` saturates at UINT_MAX sectors)."""
    sectors = mdts_sectors(mdts)
    if sectors == UINT_MAX:
        return "beyond what max_hw_sectors holds: no limit"
    return size_text(sectors << 9)


def controller_line(trace: Trace) -> str:
    """The controller's inputs and the DMA mode: ``MDTS 5 · SGLs · sgl_threshold 32768 · ...``."""
    ctx = trace.context
    sc = ctx.scenario
    parts = []
    if sc.target is TargetKind.NVME:
        mdts = sc.nvme.mdts
        parts.append(
            "MDTS not given (taken as 0, no limit)"
            if mdts is None
            else "MDTS 0 (no limit)"
            if mdts == 0
            else f"MDTS {mdts} ({_mdts_size(mdts)})"
        )
        parts.append("SGLs supported" if sc.nvme.sgl else "no SGL support (PRPs only)")
        parts.append(f"sgl_threshold {sc.nvme.sgl_threshold}")
    else:
        parts.append("not an nvme queue")
    for bdf, prov in ctx.providers.items():
        parts.append(f"p2pmem/size of {bdf.short()} {size_text(prov.pool_size)}")
    how = (
        "as the scenario says"
        if ctx.dma.chosen_by is DmaChosenBy.SCENARIO
        else f"the topology's IOMMU: {ctx.dma.iommu.value}"
    )
    parts.append(f"DMA {sc.dma.value} ({how})")
    return " · ".join(parts)


# -- what a re-run changed -------------------------------------------------------------


def run_facts(trace: Trace) -> dict[str, str]:
    """What a user compares between two runs of one I/O: inputs, limits, what came of them."""
    ctx = trace.context
    sc = ctx.scenario
    facts = {"kernel": ctx.datapath.title, "DMA": sc.dma.value}
    if sc.target is TargetKind.NVME:
        facts["MDTS"] = "not given" if sc.nvme.mdts is None else str(sc.nvme.mdts)
        facts["SGL"] = "supported" if sc.nvme.sgl else "not supported"
        facts["sgl_threshold"] = str(sc.nvme.sgl_threshold)
    for bdf, prov in ctx.providers.items():
        facts[f"p2pmem/size of {bdf.short()}"] = size_text(prov.pool_size)
    requests = max((len(step.state.requests) for step in trace.steps), default=0)
    facts["requests"] = str(requests)
    commands = next((s.state.commands for s in reversed(trace.steps) if s.state.commands), ())
    if commands:
        sgl = sum(1 for c in commands if c.use_sgl)
        facts["nvme commands"] = (
            f"{len(commands) - sgl} PRP, {sgl} SGL" if 0 < sgl < len(commands) else
            f"{len(commands)} {'SGL' if sgl else 'PRP'}"
        )  # fmt: skip
    result = trace.result
    op = syscall_name(sc.write, len(sc.io_vectors))
    facts["result"] = (
        f"{op} returns {result.bytes}"
        if result.outcome in ("ok", "short")
        else f"errno {result.errno} at {result.stage}"
        if result.errno
        else f"{result.outcome} at {result.stage}"
    )
    # The limits last: the panels light them where they are shown.
    for row in limit_rows(trace):
        facts[row.name] = row.value
    return facts


def run_changes(before: Trace | None, after: Trace) -> tuple[RunChange, ...]:
    """What differs between two runs of the same I/O (nothing when ``before`` is another I/O)."""
    if before is None or before.context.scenario.name != after.context.scenario.name:
        return ()
    old, new = run_facts(before), run_facts(after)
    keys = list(new) + [k for k in old if k not in new]
    return tuple(
        RunChange(k, old.get(k, "-"), new.get(k, "-")) for k in keys if old.get(k) != new.get(k)
    )


# -- drawing ---------------------------------------------------------------------------


def _changes_text(changes: Sequence[RunChange]) -> str:
    return "since the last run: " + " · ".join(f"{c.what} {c.before} → {c.after}" for c in changes)


def _collapsed(rows: Sequence[LimitRow], changed: set[str], width: int) -> Content:
    """``▸ name value · name value · … [l]`` cut to ``width``, changed values lit.

    The values come first (a kernel developer knows the sysfs names); the key
    that opens the table follows when there is room for it.
    """
    parts: list[tuple[str, str] | str] = [("▸ ", MUTED)]
    used = 2
    for n, row in enumerate(rows):
        text = f"{row.name} {row.value}"
        sep = " · " if n else ""
        more = 0 if n == len(rows) - 1 else len(" · …")
        if used + len(sep) + len(text) + more > width:
            parts.append(" · …" if n else "…")
            used += 4
            break
        parts += [sep, (text, CHANGED if row.name in changed else "")]
        used += len(sep) + len(text)
    if used + len("  [l]") <= width:
        parts.append(("  [l]", MUTED))
    return Content.assemble(*parts)


def limits_view(trace: Trace, opened: bool, changes: Sequence[RunChange], width: int) -> Content:
    """One line (and one for a re-run's changes) collapsed; the table with sources opened."""
    rows = limit_rows(trace)
    changed = {c.what: c for c in changes}
    if not opened:
        out = [_collapsed(rows, set(changed), width)]
        if changes:
            text = _changes_text(changes)
            if len(text) + 2 > width:
                text = text[: max(0, width - 3)] + "…"
            out.append(Content.assemble("  ", (text, CHANGED)))
        return lines(out)
    disk = "nvme*" if trace.context.scenario.target is TargetKind.NVME else "<disk>"
    title = Content.assemble(
        ("▾ ", MUTED),
        ("queue limits", TITLE),
        (f" (/sys/block/{disk}/queue/) and where each comes from", MUTED),
    )
    if len(title) + len("  [l] folds") <= width:
        title += Content.styled("  [l] folds", MUTED)
    out = [title]
    name_w = max(len(r.name) for r in rows)
    value_w = max(len(r.value) for r in rows)
    was = {r.name: f"(was {changed[r.name].before})" for r in rows if r.name in changed}
    was_w = max((len(w) + 1 for w in was.values()), default=0)
    left = 2 + name_w + 2 + value_w + was_w + 2
    # Sources beside the values when every one fits, else each under its value.
    beside = all(left + len(r.source) <= width for r in rows)
    for row in rows:
        value = Content.assemble(
            "  ", (row.name.ljust(name_w), HEAD), "  ", (row.value.rjust(value_w), "bold")
        )
        if row.name in was:
            value = value.stylize(CHANGED, 2, len(value)) + Content.styled(
                " " + was[row.name], CHANGED
            )
        if beside:
            value = value.pad_right(left - len(value))
            out.append(value + Content.styled(row.source, MUTED))
        else:
            out.append(value)
            out += _wrapped(row.source, width, 6, MUTED)
    for note in trace.context.limits.other_notes:
        out += _wrapped(note, width, 2, WARN if "assumed" in note else MUTED)
    out += _wrapped("controller: " + controller_line(trace), width, 2, "")
    if changes:
        out += _wrapped(_changes_text(changes), width, 2, CHANGED)
    return lines(out)


def _wrapped(text: str, width: int, indent: int, style: str) -> list[Content]:
    """``text`` wrapped at ``width``, every line indented (a source under its value)."""
    pad = " " * indent
    return [
        Content.styled(line, style)
        for line in textwrap.wrap(
            text, max(20, width), initial_indent=pad, subsequent_indent=pad + "  "
        )
    ]
