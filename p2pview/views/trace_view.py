"""``p2pview trace``: the events as a log and the final scatterlist as a table."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from p2pview.iosim import Trace
from p2pview.iosim.objects import (
    RAM,
    SG_DMA_BUS_ADDRESS,
    SG_END,
    SG_PAGE_LINK_BUS_ADDRESS,
    SgTable,
    syscall_name,
)

LEVEL_STYLE = {"info": "", "warn": "yellow", "error": "bold red"}
#: Rows of the final scatterlist shown in the table (JSON has them all).
MAX_ROWS = 32


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
    if ctx.dma_note:
        text.append(ctx.dma_note + "\n", style="yellow" if "what-if" in ctx.dma_note else "")
    text.append(ctx.limits.summary() + "\n")
    for note in ctx.limits.notes:
        text.append(f"  {note}\n", style="dim")
    return text


def event_log(trace: Trace) -> list[RenderableType]:
    """One block per stage: its title, then each event and the dmesg lines it printed."""
    out: list[RenderableType] = []
    for n, step in enumerate(trace.steps, 1):
        out.append(Text(f"{n:2}. {step.title}", style="bold cyan"))
        for event in step.events:
            line = Text("    ")
            line.append(event.function, style="bold")
            line.append(": ")
            line.append(event.text, style=LEVEL_STYLE.get(event.level, ""))
            if event.confidence != "read":
                line.append(f" [{event.confidence}]", style="magenta")
            out.append(line)
            for dmesg in event.dmesg:
                out.append(Text(f"      dmesg: {dmesg}", style="dim"))
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


def result_text(trace: Trace) -> Text:
    """What the application sees."""
    result = trace.result
    sc = trace.context.scenario
    op = syscall_name(sc.write, len(sc.io_vectors))
    if result.outcome == "ok":
        return Text(f"{op} returns {result.bytes}", style="bold green")
    if result.outcome == "short":
        return Text(f"{op} returns {result.bytes} (short)", style="bold yellow")
    if result.outcome == "hang":
        return Text(
            f"{op} never returns: the request is requeued forever (stage {result.stage})",
            style="bold red",
        )
    if result.outcome == "wrong address":
        return Text(
            f"{op} returns, but the device was given address 0 for part of the data [inferred]",
            style="bold red",
        )
    return Text(f"{op} returns -1, errno {result.errno} (at {result.stage})", style="bold red")


def trace_view(trace: Trace) -> RenderableType:
    """Everything ``p2pview trace`` prints."""
    parts: list[RenderableType] = [header(trace), *event_log(trace), Text("")]
    if trace.final_sgls:
        parts.append(scatterlist_table(trace))
    parts.append(Text("Result: ").append_text(result_text(trace)))
    return Group(*parts)
