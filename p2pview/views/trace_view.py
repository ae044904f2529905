"""``p2pview trace``: the events as a log and the final scatterlist as a table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.iosim import DmaChoice, DmaChosenBy, DmaMode, KernelLimits, Trace
from p2pview.iosim.objects import (
    RAM,
    SG_DMA_BUS_ADDRESS,
    SG_END,
    SG_PAGE_LINK_BUS_ADDRESS,
    SgTable,
    syscall_name,
)
from p2pview.model.units import bytes_and_size

LEVEL_STYLE = {"info": "", "warn": "event.warn", "error": "event.error"}
#: Rows of the final scatterlist shown in the table (JSON has them all).
MAX_ROWS = 32


def dma_line(choice: DmaChoice) -> str | None:
    """The simulator's note on how the DMA mode was chosen, and where this face sets it.

    A scenario file sets the mode with ``[dma] mode``; ``--iommu`` asks for
    dma-iommu.
    """
    note = choice.note
    if note is None:
        return None
    if choice.chosen_by is DmaChosenBy.DEFAULT:
        return f"{note} (set [dma] mode, or --iommu)"
    if choice.chosen_by is DmaChosenBy.SCENARIO:
        # The command line has an option for dma-iommu only.
        where = "[dma] mode or --iommu" if choice.mode is DmaMode.IOMMU else "[dma] mode"
        return f"{note} ({where})"
    return note


def header(trace: Trace) -> Text:
    """Scenario, kernel, client and each provider's verdict."""
    ctx = trace.context
    sc = ctx.scenario
    text = Text()
    text.append(sc.name, style="bold")
    if sc.description:
        text.append(f": {sc.description.strip().splitlines()[0]}")
    text.append("\n")
    op = "write" if sc.write else "read"
    text.append(
        f"kernel {ctx.datapath.title}; O_DIRECT {op} of {sc.io_length} bytes; client"
        f" {sc.client} ({ctx.client.driver or 'no driver'}); DMA {sc.dma.value}\n"
    )
    for bdf, prov in ctx.providers.items():
        v = ctx.verdict(bdf)
        kind = v.map_type.value if v.map_type is not None else f"int {v.distance}"
        text.append(
            f"provider {bdf}: {kind}, distance {v.distance}; p2pmem at CPU"
            f" {prov.region_start:#x}, bus offset {prov.bus_offset:#x}"
        )
        text.append("\n")
    if ctx.kernel_note:
        text.append(ctx.kernel_note + "\n", style="event.warn")
    dma = dma_line(ctx.dma)
    if dma:
        text.append(dma + "\n", style="event.warn" if ctx.dma.what_if else "")
    text.append(limits_line(ctx.limits) + "\n")
    # How each value that is not the kernel's default came about, and what was assumed.
    for note in ctx.limits.notes:
        text.append(f"  {note}\n", style="muted")
    return text


def limits_line(limits: KernelLimits) -> str:
    """The limits in one line, as ``grep . /sys/block/nvme0n1/queue/*`` would list them."""
    parts = [
        f"max_hw_sectors_kb {limits.max_hw_sectors_kb}",
        f"max_sectors_kb {limits.max_sectors_kb}",
        f"max_segments {limits.max_segments}",
        f"max_segment_size {limits.max_segment_size}",
        f"virt_boundary_mask {limits.virt_boundary_mask:#x}",
    ]
    if limits.dma_opt_mapping_size is not None:
        parts.append(f"dma_opt_mapping_size {limits.dma_opt_mapping_size}")
    return "queue limits: " + ", ".join(parts)


def event_log(trace: Trace) -> list[RenderableType]:
    """One block per stage: its title, then each event and the dmesg lines it printed."""
    out: list[RenderableType] = []
    for n, step in enumerate(trace.steps, 1):
        out.append(Text(f"{n:2}. {step.title}", style="role"))
        for event in step.events:
            line = Text("    ")
            line.append(event.function, style="bold")
            line.append(": ")
            line.append(event.text, style=LEVEL_STYLE.get(event.level, ""))
            if event.confidence != "read":
                line.append(f" [{event.confidence}]", style="assumed")
            out.append(line)
            for dmesg in event.dmesg:
                out.append(Text(f"      dmesg: {dmesg}", style="muted"))
    return out


def _flags(sg: SgTable, k: int) -> str:
    parts = []
    if int(sg.page_link[k]) & SG_END:
        parts.append("SG_END")
    if int(sg.page_link[k]) & SG_PAGE_LINK_BUS_ADDRESS:
        parts.append("page_link BUS")
    if int(sg.dma_flags[k]) & SG_DMA_BUS_ADDRESS:
        parts.append("SG_DMA_BUS_ADDRESS")
    return " ".join(parts)


def scatterlist_table(trace: Trace) -> Table:
    """The final entries: page, offset, length, DMA address and length, flags, provider."""
    ctx = trace.context
    by_pgmap = {p.pgmap: b for b, p in ctx.providers.items()}
    iterator = any(sg.iterator for sg in trace.final_sgls)
    title = "DMA segments (blk_rq_dma_map_iter)" if iterator else "final scatterlist"
    table = Table(title=title, title_justify="left")
    for col in (
        "rq",
        "#",
        "page pfn",
        "offset",
        "length",
        "dma_address",
        "dma_length",
        "flags",
        "memory of",
    ):
        table.add_column(col, justify="right" if col not in ("flags", "memory of") else "left")
    shown = 0
    total = sum(len(sg) for sg in trace.final_sgls)
    for sg in trace.final_sgls:
        for k in range(len(sg)):
            if shown >= MAX_ROWS:
                break
            pg = int(sg.pgmap[k])
            addr = int(sg.dma_address[k])
            mapped = sg.nents is None or k < sg.nents or sg.iterator
            table.add_row(
                str(sg.request),
                str(k),
                f"{int(sg.phys[k]) >> 12:#x}",
                f"{int(sg.offset[k]):#x}",
                f"{int(sg.length[k]):#x}",
                f"{addr:#x}" if addr >= 0 and mapped else "-",
                f"{int(sg.dma_length[k]):#x}" if mapped else "-",
                _flags(sg, k),
                "RAM" if pg == RAM else str(by_pgmap.get(pg, "?")),
            )
            shown += 1
    if total > shown:
        table.caption = f"{total - shown} more entries: --json has them all"
    return table


def never_ran_text(trace: Trace) -> Text | None:
    """Why the I/O was never issued, when opening or mmap'ing its buffer failed; else ``None``.

    The simulator stops at the ``mmap`` stage then: no ``pread``/``pwrite`` ran,
    so none returned -1; the application saw ``open()`` or ``mmap()`` fail.
    """
    result = trace.result
    if result.stage != "mmap" or result.errno is None:
        return None
    ctx = trace.context
    sc = ctx.scenario
    op = syscall_name(sc.write, len(sc.io_vectors))
    error = next((e for e in reversed(trace.events) if e.level == "error"), None)
    pools = [t.removeprefix("pool:") for t in (error.touched if error else ()) if "pool:" in t]
    prov = next((p for b, p in ctx.providers.items() if pools and str(b) == pools[0]), None)
    if result.errno == "ENOMEM" and prov is not None:
        asked = sum(seg.size for seg in sc.buffer if seg.provider == prov.bdf)
        why = (
            f"mmap of {prov.bdf}'s p2pmem/allocate fails with ENOMEM: the pool is"
            f" {bytes_and_size(prov.pool_size)}, {bytes_and_size(prov.available)} of it"
            " available, and the"
            f" buffer needs {bytes_and_size(asked)}"
        )
    else:
        call = "open()" if error is not None and error.function == "open()" else "mmap()"
        detail = f" ({error.function}: {error.text})" if error is not None else ""
        why = f"the buffer's {call} fails with {result.errno}{detail}"
    return Text(f"{why}; {op} is never called", style="io.failed")


def result_text(trace: Trace) -> Text:
    """What the application sees."""
    result = trace.result
    sc = trace.context.scenario
    op = syscall_name(sc.write, len(sc.io_vectors))
    never = never_ran_text(trace)
    if never is not None:
        return never
    if result.outcome == "ok":
        return Text(f"{op} returns {result.bytes}", style="io.ok")
    if result.outcome == "short":
        return Text(f"{op} returns {result.bytes} (short)", style="io.short")
    if result.outcome == "hang":
        return Text(
            f"{op} never returns: the request is requeued forever (stage {result.stage})",
            style="io.failed",
        )
    if result.outcome == "wrong address":
        return Text(
            f"{op} returns, but the device was given address 0 for part of the data [inferred]",
            style="io.failed",
        )
    return Text(f"{op} returns -1, errno {result.errno} (at {result.stage})", style="io.failed")


def trace_view(trace: Trace) -> RenderableType:
    """Everything ``p2pview trace`` prints."""
    parts: list[RenderableType] = [header(trace), *event_log(trace), Text("")]
    if trace.final_sgls:
        parts.append(scatterlist_table(trace))
    parts.append(Text("Result: ").append_text(result_text(trace)))
    return Group(*parts)
