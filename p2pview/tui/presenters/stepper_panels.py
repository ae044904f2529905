"""The stepper's data panels: buffer, bios, scatterlist and DMA, PRP/SGL, TLP path.

Each builder takes the trace, the step shown, what that step changed and the
width available, and returns ``Content`` (never markup). Large traces are cut:
the first requests, bios and entries are shown with a count of the rest, so a
1 GiB I/O costs no more to draw than a 4 KiB one.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np
from textual.content import Content

from p2pview.iosim import Trace
from p2pview.iosim.objects import (
    PAGE_SIZE,
    RAM,
    SG_CHAIN,
    SG_DMA_BUS_ADDRESS,
    SG_DMA_SWIOTLB,
    SG_END,
    SG_PAGE_LINK_BUS_ADDRESS,
    DmaMapping,
    NvmeCommand,
    Region,
    SgTable,
    TlpRoute,
)
from p2pview.iosim.scenario import BufferKind, DmaMode, TargetKind
from p2pview.kernel.verdict import MapType
from p2pview.model import BDF, RootBus, Topology
from p2pview.model.units import size_text
from p2pview.tui.presenters.stepper_changes import StepChanges
from p2pview.tui.presenters.stepper_render import (
    CHANGED,
    ERROR,
    GOOD,
    MUTED,
    TITLE,
    WARN,
    Column,
    Row,
    hx,
    lines,
    memory_of,
    pgmap_glyph,
    providers_by_pgmap,
    table,
)
from p2pview.views.names import role

#: How much of a large trace the panels draw.
MAX_REQUESTS = 4
MAX_ENTRIES = 16
MAX_BIOS = 6
MAX_BVECS = 8
MAX_PRP_ENTRIES = 32
MAX_ROUTES = 3

Node = BDF | RootBus


def _more(count: int, what: str) -> Content:
    return Content.styled(f"  … {count} more {what}", MUTED)


def _dropped_note(dropped: Sequence[str]) -> list[Content]:
    if not dropped:
        return []
    return [Content.styled(f"  (too narrow for: {', '.join(dropped)})", MUTED)]


def _heading(text: str, changed: bool = False) -> Content:
    content = Content.styled(text, TITLE)
    return content.stylize(CHANGED) if changed else content


def _not_yet(out: list[Content], heading: str, explanation: str) -> Content:
    """A panel whose stage has not run yet: its heading and what the stage will do."""
    return lines([*out, _heading(heading), Content.styled("  " + explanation, MUTED)])


# -- the user buffer -----------------------------------------------------------------


def _io_page_ranges(trace: Trace) -> list[tuple[int, int]]:
    """[first, end) buffer page indexes each iovec of the I/O covers."""
    out = []
    for vec in trace.context.scenario.io_vectors:
        first = vec.offset // PAGE_SIZE
        last = (vec.offset + vec.length - 1) // PAGE_SIZE
        out.append((first, last + 1))
    return out


def io_page_to_buffer_page(trace: Trace, io_page: int) -> int | None:
    """The buffer page holding the I/O's ``io_page``-th page (GUP's page index)."""
    for first, end in _io_page_ranges(trace):
        if io_page < end - first:
            return first + io_page
        io_page -= end - first
    return None


def buffer_strip(
    runs: Sequence[tuple[int, int, int]],
    pages: int,
    cells: int,
    highlighted: Sequence[tuple[int, int]] = (),
) -> Content:
    """One line: each cell a page (or a run of pages) in its pgmap's glyph and style.

    ``runs`` are (first page, end page, pgmap); a cell covering pages of two
    pgmaps shows ``▚`` unstyled. Cells over ``highlighted`` ranges are lit.
    """
    parts: list[tuple[str, str]] = []
    for c in range(cells):
        lo = c * pages // cells
        hi = max(lo + 1, (c + 1) * pages // cells)
        found = {pg for start, end, pg in runs if start < hi and end > lo}
        if len(found) == 1:
            glyph, style = pgmap_glyph(found.pop())
        elif found:
            glyph, style = "▚", "bold"
        else:
            glyph, style = " ", ""
        if any(start < hi and end > lo for start, end in highlighted):
            style = f"{style} {CHANGED}".strip()
        parts.append((glyph, style))
    return Content.assemble(*parts)


def _marker_strip(
    ranges: Sequence[tuple[int, int]],
    pages: int,
    cells: int,
    glyph: str,
    style: str,
    error_page: int | None,
) -> Content:
    parts: list[tuple[str, str]] = []
    for c in range(cells):
        lo = c * pages // cells
        hi = max(lo + 1, (c + 1) * pages // cells)
        if error_page is not None and lo <= error_page < hi:
            parts.append(("✗", ERROR))
        elif any(start < hi and end > lo for start, end in ranges):
            parts.append((glyph, style))
        else:
            parts.append((" ", ""))
    return Content.assemble(*parts).rstrip()


def _pgmaps(regions: Sequence[Region]) -> list[int]:
    """The pgmaps of the buffer's mappings, each once, in mapping order (a legend's entries)."""
    return list(dict.fromkeys(region.pgmap for region in regions))


def strip_line(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """One line above the panels: the buffer's pages by pgmap, and what each glyph is."""
    state = trace.steps[index].state
    regions = state.regions
    if not regions:
        return Content.styled("buffer: not mapped", MUTED)
    legend: list[tuple[str, str] | str] = []
    for pgmap in _pgmaps(regions):
        glyph, style = pgmap_glyph(pgmap)
        legend += ["  ", (glyph, style), " ", memory_of(trace, pgmap)]
    legend_content = Content.assemble(*legend)
    runs: list[tuple[int, int, int]] = []
    lit: list[tuple[int, int]] = []
    at = 0
    for region in regions:
        n = len(region.phys)
        runs.append((at, at + n, region.pgmap))
        if region.index in changes.regions:
            lit.append((at, at + n))
        at += n
    label = Content.styled("buffer ", MUTED)
    room = width - label.cell_length - legend_content.cell_length
    cells = max(1, min(at, room))
    return label + buffer_strip(runs, at, cells, lit) + legend_content


def buffer_panel(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """The user buffer as a strip of pages coloured by pgmap, its mmaps, the pools, GUP."""
    ctx = trace.context
    sc = ctx.scenario
    state = trace.steps[index].state
    stage = trace.steps[index].stage
    out: list[Content] = []
    regions = state.regions
    if not regions:
        out.append(_heading("user buffer: not mapped"))
        for i, seg in enumerate(sc.buffer):
            owner = str(seg.provider) if seg.provider is not None else "anonymous memory"
            text = f"  buffer[{i}]: {seg.kind.value} of {owner}, {size_text(seg.size)}"
            out.append(Content(text))
        if state.result is not None and state.result.stage == "mmap":
            out.append(Content.styled(f"  mmap() failed: {state.result.errno}", ERROR))
    else:
        total_pages = sum(len(r.phys) for r in regions)
        total_bytes = sum(r.size for r in regions)
        out.append(
            _heading(
                f"user buffer: {len(regions)} mmap{'s' if len(regions) != 1 else ''},"
                f" {total_pages} page{'s' if total_pages != 1 else ''}"
                f" ({size_text(total_bytes)}); the I/O {'writes' if sc.write else 'reads'}"
                f" {size_text(sc.io_length)}"
            )
        )
        runs: list[tuple[int, int, int]] = []
        lit: list[tuple[int, int]] = []
        first_page: dict[int, int] = {}
        at = 0
        for region in regions:
            n = len(region.phys)
            first_page[region.index] = at
            runs.append((at, at + n, region.pgmap))
            if region.index in changes.regions:
                lit.append((at, at + n))
            at += n
        cells = max(1, min(total_pages, width - 2))
        out.append(Content(" ") + buffer_strip(runs, total_pages, cells, lit))
        io_ranges = _io_page_ranges(trace)
        error_page = None
        for p in sorted(changes.error_pages):
            error_page = io_page_to_buffer_page(trace, p)
            break
        released = stage in ("completion", "munmap")
        if state.pages is not None or error_page is not None:
            style = MUTED if released else (CHANGED if changes.pages else "$text-accent")
            out.append(
                Content(" ") + _marker_strip(io_ranges, total_pages, cells, "▀", style, error_page)
            )
        # The legend.
        legend: list[tuple[str, str] | str] = [" "]
        for pgmap in _pgmaps(regions):
            glyph, style = pgmap_glyph(pgmap)
            what = "RAM" if pgmap == RAM else f"{memory_of(trace, pgmap)} p2pmem"
            legend += [(glyph, style), f" {what}   "]
        if state.pages is not None:
            legend += [("▀", MUTED if released else "$text-accent")]
            legend.append(" pages of the I/O, " + ("released   " if released else "pinned   "))
        scale = (
            "1 cell = 1 page"
            if cells >= total_pages
            else f"1 cell ≈ {total_pages / cells:.0f} pages"
        )
        legend.append((scale, MUTED))
        out.append(Content.assemble(*legend))
        out.append(Content(""))
        # The mmaps.
        rows = []
        for region in regions:
            n = len(region.phys)
            first, last = int(region.phys[0]) >> 12, int(region.phys[-1]) >> 12
            if region.kind is BufferKind.RAM and n <= 4:
                frames = ", ".join(hx(int(p) >> 12) for p in region.phys)
            elif last - first + 1 == n:
                frames = f"{hx(first)}-{hx(last)}"
            else:
                frames = f"{n} frames, scattered"
            owner = "RAM" if region.provider is None else region.provider.short()
            pool = "" if region.chunk_offset is None else hx(region.chunk_offset)
            rows.append(
                Row(
                    [
                        str(region.index),
                        region.kind.value,
                        owner,
                        hx(region.va),
                        size_text(region.size),
                        frames,
                        pool,
                    ],
                    CHANGED if region.index in changes.regions else "",
                )
            )
        cols: tuple[Column, ...] = (
            Column("buf"),
            Column("kind"),
            Column("memory of"),
            Column("user address", drop=2),
            Column("size", right=True),
            Column("page frames (pfn)"),
            Column("pool offset", drop=1),
        )
        table_lines, _dropped = table(cols, rows, width)
        out += table_lines
    # The pools.
    if ctx.providers:
        out.append(Content(""))
        before = (
            trace.steps[index - 1].state.available
            if index
            else {b: p.available for b, p in ctx.providers.items()}
        )
        for bdf, prov in ctx.providers.items():
            now = state.available.get(bdf, prov.available)
            was = before.get(bdf, now)
            text = f"{bdf.short()} p2pmem/available {now} of {prov.pool_size}"
            if was != now:
                text += f" (was {was})"
            out.append(Content.styled(text, CHANGED if bdf in changes.pools else ""))
    # What GUP made of it.
    if state.pages is not None:
        pgmaps, counts = np.unique(state.pages.pgmap, return_counts=True)
        parts = ", ".join(
            f"{int(c)} of {memory_of(trace, int(pg))}"
            for pg, c in zip(pgmaps.tolist(), counts.tolist(), strict=True)
        )
        verb = "released" if stage in ("completion", "munmap") else "pinned"
        out.append(
            Content.styled(
                f"GUP: {len(state.pages)} page pieces {verb} ({parts})",
                CHANGED if changes.pages else "",
            )
        )
    if changes.error_pages:
        page = min(changes.error_pages)
        result = state.result
        errno = result.errno if result is not None else "error"
        out.append(Content.styled(f"GUP refused page {page} of the I/O: {errno}", ERROR))
    return lines(out)


# -- bios and requests -----------------------------------------------------------------


def bios_panel(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """The bios with their bvecs, then the requests they formed."""
    state = trace.steps[index].state
    out: list[Content] = []
    if not state.bios:
        return _not_yet(
            out,
            "bios: none yet",
            "bio building turns the pinned pages into bvecs (contiguous pages of one pgmap"
            " merge); the bio stage comes after GUP.",
        )
    out.append(_heading(f"bios: {len(state.bios)}"))
    for bio in state.bios[:MAX_BIOS]:
        flags = " ".join(sorted(bio.flags)) or "-"
        head = (
            f"bio {bio.index}  sector {bio.sector}  {size_text(bio.size)}  {len(bio.bvecs)}"
            f" bvec{'s' if len(bio.bvecs) != 1 else ''}  flags {flags}"
        )
        if bio.split_from is not None:
            head += f"  split from bio {bio.split_from}"
        out.append(Content.styled(head, CHANGED if bio.index in changes.bios else "bold"))
        bv = bio.bvecs
        rows = []
        for k in range(min(len(bv), MAX_BVECS)):
            pg = int(bv.pgmap[k])
            glyph, style = pgmap_glyph(pg)
            rows.append(
                Row(
                    [
                        str(k),
                        hx(int(bv.phys[k])),
                        hx(int(bv.offset[k])),
                        hx(int(bv.length[k])),
                        (glyph + " " + memory_of(trace, pg), style),
                    ]
                )
            )
        cols: tuple[Column, ...] = (
            Column("bvec", right=True),
            Column("page phys", right=True),
            Column("offset", right=True, drop=1),
            Column("length", right=True),
            Column("memory of"),
        )
        table_lines, dropped = table(cols, rows, width, indent=2)
        out += table_lines + _dropped_note(dropped)
        if len(bv) > MAX_BVECS:
            out.append(_more(len(bv) - MAX_BVECS, "bvecs"))
    if len(state.bios) > MAX_BIOS:
        out.append(_more(len(state.bios) - MAX_BIOS, "bios"))
    out.append(Content(""))
    if not state.requests:
        return _not_yet(
            out,
            "requests: none yet",
            "blk_mq_submit_bio() forms requests (and back-merges bios) at the request stage.",
        )
    out.append(_heading(f"requests: {len(state.requests)}"))
    rows = []
    for rq in state.requests[:MAX_BIOS]:
        bios = ", ".join(str(b) for b in rq.bios[:6]) + (" …" if len(rq.bios) > 6 else "")
        rows.append(
            Row(
                [
                    str(rq.index),
                    bios,
                    str(rq.sector),
                    size_text(rq.size),
                    str(rq.nr_phys_segments),
                    " ".join(sorted(rq.flags)) or "-",
                ],
                CHANGED if rq.index in changes.requests else "",
            )
        )
    cols = (
        Column("rq", right=True),
        Column("bios"),
        Column("sector", right=True, drop=1),
        Column("size", right=True),
        Column("phys segments", right=True),
        Column("flags", drop=2),
    )
    table_lines, dropped = table(cols, rows, width, indent=2)
    out += table_lines + _dropped_note(dropped)
    if len(state.requests) > MAX_BIOS:
        out.append(_more(len(state.requests) - MAX_BIOS, "requests"))
    return lines(out)


# -- the scatterlist and the DMA mapping --------------------------------------------------


def _is_bus(sg: SgTable, k: int, mapping: DmaMapping | None) -> bool:
    if int(sg.dma_flags[k]) & SG_DMA_BUS_ADDRESS or int(sg.page_link[k]) & SG_PAGE_LINK_BUS_ADDRESS:
        return True
    # The v6.17+ iterator: the first segment's P2P state decides for the request.
    return bool(
        sg.iterator
        and mapping is not None
        and mapping.ok
        and mapping.map_types
        and mapping.map_types[0] is MapType.BUS_ADDR
    )


#: Flag names in narrow tables (a legend line says what they stand for).
SHORT_FLAGS = {
    "SG_CHAIN": "CHAIN",
    "SG_END": "END",
    "page_link BUS": "BUS(link)",
    "SG_DMA_BUS_ADDRESS": "BUS",
    "SG_DMA_SWIOTLB": "SWIOTLB",
    "SPANS 2 pgmaps": "SPANS",
    "dma_address 0!": "ADDR0!",
    "skipped (bus)": "skipped",
    "IOD_DATA_P2P": "P2P(iod)",
}


def _flags(sg: SgTable, k: int, mapping: DmaMapping | None, released: str) -> tuple[list[str], str]:
    """The entry's flag names (kernel spelling) and the style the cell takes."""
    parts = []
    link = int(sg.page_link[k])
    dma = int(sg.dma_flags[k])
    if link & SG_CHAIN:
        parts.append("SG_CHAIN")
    if link & SG_END:
        parts.append("SG_END")
    if link & SG_PAGE_LINK_BUS_ADDRESS:
        parts.append("page_link BUS")
    if dma & SG_DMA_BUS_ADDRESS:
        parts.append("SG_DMA_BUS_ADDRESS")
    if dma & SG_DMA_SWIOTLB:
        parts.append("SG_DMA_SWIOTLB")
    if sg.iterator and _is_bus(sg, k, mapping):
        parts.append("IOD_DATA_P2P")  # v6.17+: the mark is on the request, not the segment
    style = ""
    if k in sg.spans:
        parts.append("SPANS 2 pgmaps")
        style = WARN
    if mapping is not None and k in mapping.stale:
        parts.append("dma_address 0!")
        style = ERROR
    if released:
        parts.append(released)
    return parts, style


def _flag_legend(names: set[str]) -> str:
    return ", ".join(f"{short} = {long}" for long, short in SHORT_FLAGS.items() if long in names)


def _ranges(pairs: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """Merge (address, length) pairs that touch."""
    out: list[tuple[int, int]] = []
    for addr, length in pairs:
        if out and out[-1][0] + out[-1][1] == addr:
            out[-1] = (out[-1][0], out[-1][1] + length)
        else:
            out.append((addr, length))
    return out


def _range_text(ranges: Sequence[tuple[int, int]], limit: int = 4) -> str:
    text = ", ".join(f"{hx(a)}-{hx(a + n - 1)} ({size_text(n)})" for a, n in ranges[:limit])
    if len(ranges) > limit:
        text += f", … {len(ranges) - limit} more"
    return text


def _mapping_lines(trace: Trace, sg: SgTable, mapping: DmaMapping) -> list[Content]:
    mode = trace.context.scenario.dma
    out: list[Content] = []
    if not mapping.ok:
        errno = mapping.errno or "-EIO, requeued"
        out.append(
            Content.styled(
                f"  dma_map failed: {errno} ({mapping.status}); nothing is mapped", ERROR
            )
        )
        return out
    n = sg.nents if sg.nents is not None else len(sg)
    bus: list[tuple[int, int]] = []
    other: list[tuple[int, int]] = []
    for k in range(n):
        addr, length = int(sg.dma_address[k]), int(sg.dma_length[k] or sg.length[k])
        if addr < 0:
            continue
        (bus if _is_bus(sg, k, mapping) else other).append((addr, length))
    if bus:
        out.append(
            Content.assemble(
                ("  bus addresses ", GOOD),
                _range_text(_ranges(bus)),
                (" (phys + bus offset; no IOMMU, no IOVA)", MUTED),
            )
        )
    if mapping.iova_ranges:
        out.append(
            Content.assemble(
                ("  IOVA ", "bold $text-primary"),
                _range_text(mapping.iova_ranges),
                (" (one allocation; the simulator's values)", MUTED),
            )
        )
    elif other:
        what = {
            DmaMode.SWIOTLB: "swiotlb bounce slots ",
            DmaMode.DIRECT: "CPU physical (dma-direct 1:1) ",
            DmaMode.IOMMU: "IOVA ",
        }[mode]
        out.append(Content.assemble(("  " + what, "bold"), _range_text(_ranges(other))))
    if mapping.stale:
        out.append(
            Content.styled(
                f"  entries {list(mapping.stale)} keep dma_address 0 (the v6.16 dma-direct THRU"
                " bug) [inferred]",
                ERROR,
            )
        )
    if mode is DmaMode.IOMMU and sg.nents is not None and sg.nents < len(sg) and not sg.iterator:
        out.append(
            Content.styled(
                f"  __finalise_sg(): {len(sg)} entries, {sg.nents} DMA segments (dma_address"
                " and dma_length are the output entries)",
                MUTED,
            )
        )
    return out


def sg_panel(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """Each request's scatterlist (or DMA segments), then what the DMA mapping made of it."""
    state = trace.steps[index].state
    stage = trace.steps[index].stage
    out: list[Content] = []
    if not state.sgls:
        return _not_yet(
            out,
            "scatterlist: none yet",
            "blk_rq_map_sg() fills one scatterlist per request at the map_sg stage"
            " (v6.17+: the DMA iterator's segments).",
        )
    mappings = {m.request: m for m in state.mappings}
    unmapped = (
        {pair for pair in state.unmapped if pair[0] < MAX_REQUESTS} if state.unmapped else set()
    )
    total_entries = sum(len(s) for s in state.sgls)
    short = width < 110
    used_flags: set[str] = set()
    if len(state.sgls) > 1:
        out.append(
            Content.styled(f"{len(state.sgls)} requests, {total_entries} entries in all", MUTED)
        )
    for sg in state.sgls[:MAX_REQUESTS]:
        mapping = mappings.get(sg.request)
        n = len(sg)
        if sg.iterator:
            head = (
                f"request {sg.request}: DMA segments (blk_rq_dma_map_iter), {n}"
                f" segment{'' if n == 1 else 's'}"
            )
        else:
            head = f"request {sg.request}: scatterlist, {n} entr{'y' if n == 1 else 'ies'}"
        if sg.nents is not None and not sg.iterator:
            head += f", nents {sg.nents} after dma_map"
        mapped_now = sg.request in changes.mappings
        out.append(_heading(head, mapped_now))
        rows = []
        for k in range(min(n, MAX_ENTRIES)):
            in_dma = sg.nents is None or k < sg.nents or sg.iterator
            addr = int(sg.dma_address[k])
            pg = int(sg.pgmap[k])
            glyph, pg_style = pgmap_glyph(pg)
            released = ""
            if (sg.request, k) in unmapped:
                released = "skipped (bus)" if _is_bus(sg, k, mapping) else "unmapped"
            flag_names, flag_style = _flags(sg, k, mapping, released)
            used_flags.update(flag_names)
            if short:
                flag_names = [SHORT_FLAGS.get(name, name) for name in flag_names]
            flags = " ".join(flag_names) or "-"
            map_type = ""
            if mapping is not None and k < len(mapping.map_types):
                t = mapping.map_types[k]
                map_type = "memory" if t is None else t.value
            map_style = ERROR if map_type == "NOT_SUPPORTED" else ""
            rows.append(
                Row(
                    [
                        str(k),
                        hx(int(sg.phys[k]) >> 12),
                        hx(int(sg.offset[k])),
                        hx(int(sg.length[k])),
                        (hx(addr), "bold") if addr >= 0 and in_dma else ("-", MUTED),
                        hx(int(sg.dma_length[k])) if in_dma and addr >= 0 else ("-", MUTED),
                        (flags, flag_style),
                        (f"{glyph} {memory_of(trace, pg)}", pg_style),
                        (map_type, map_style),
                    ],
                    CHANGED if (sg.request, k) in changes.sg else "",
                )
            )
        cols: tuple[Column, ...] = (
            Column("#", right=True),
            Column("page pfn", right=True),
            Column("offset", right=True, drop=5),
            Column("length", right=True),
            Column("dma_address", right=True),
            Column("dma_length", right=True, drop=4),
            Column("flags"),
            Column("memory of", drop=2),
            Column("map type", drop=3),
        )
        table_lines, dropped = table(cols, rows, width, indent=2)
        out += table_lines
        if n > MAX_ENTRIES:
            out.append(_more(n - MAX_ENTRIES, "entries"))
        notes = []
        if dropped:
            notes.append(f"narrow: no {', '.join(dropped)}")
        if short and used_flags & set(SHORT_FLAGS):
            notes.append(_flag_legend(used_flags))
            used_flags = set()
        if notes:
            out.append(Content.styled("  (" + "; ".join(notes) + ")", MUTED))
        if mapping is not None:
            out += _mapping_lines(trace, sg, mapping)
        elif stage in ("dma_map", "nvme", "device_dma", "completion", "munmap"):
            out.append(Content.styled("  not mapped: an earlier request's mapping failed", MUTED))
        out.append(Content(""))
    if len(state.sgls) > MAX_REQUESTS:
        rest = state.sgls[MAX_REQUESTS:]
        out.append(
            _more(
                len(rest),
                f"requests ({sum(len(s) for s in rest)} entries) mapped the same way",
            )
        )
    return lines(out)


# -- the nvme command ------------------------------------------------------------------


def _command_lines(cmd: NvmeCommand, changed: bool, width: int) -> list[Content]:
    out: list[Content] = []
    if cmd.use_sgl:
        where = "in the command" if cmd.sgl_in_command else "in a descriptor list"
        out.append(
            _heading(
                f"request {cmd.request}: SGL, {len(cmd.sgl)} data block descriptor"
                f"{'s' if len(cmd.sgl) != 1 else ''} {where}",
                changed,
            )
        )
        rows = [
            Row([str(k), hx(addr), hx(length), kind])
            for k, (addr, length, kind) in enumerate(cmd.sgl[:MAX_ENTRIES])
        ]
        cols: tuple[Column, ...] = (
            Column("#", right=True),
            Column("address", right=True),
            Column("length", right=True),
            Column("type"),
        )
        table_lines, dropped = table(cols, rows, width, indent=2)
        out += table_lines + _dropped_note(dropped)
        if len(cmd.sgl) > MAX_ENTRIES:
            out.append(_more(len(cmd.sgl) - MAX_ENTRIES, "descriptors"))
    else:
        out.append(_heading(f"request {cmd.request}: PRPs", changed))
        prp1 = "-" if cmd.prp1 is None else hx(cmd.prp1)
        out.append(Content.assemble("  PRP1 ", (prp1, "bold"), ("  the first page", MUTED)))
        if cmd.prp2 is None:
            out.append(Content.styled("  PRP2 unused: the data fits in one page", MUTED))
        elif not len(cmd.prp_list):
            out.append(
                Content.assemble("  PRP2 ", (hx(cmd.prp2), "bold"), ("  the second page", MUTED))
            )
        else:
            out.append(
                Content.assemble(
                    "  PRP2 ",
                    (hx(cmd.prp2), "bold"),
                    (f"  -> a PRP list of {len(cmd.prp_list)} entries from ", MUTED),
                    (cmd.prp_pool or "?", MUTED),
                )
            )
            entries = [int(e) for e in cmd.prp_list[:MAX_PRP_ENTRIES]]
            cell = max(len(f"{k:>3} {hx(e)}") for k, e in enumerate(entries)) + 2
            per_line = max(1, (width - 4) // cell)
            for start in range(0, len(entries), per_line):
                chunk = entries[start : start + per_line]
                text = "".join(f"{start + i:>3} {hx(e)}".ljust(cell) for i, e in enumerate(chunk))
                out.append(Content("    " + text.rstrip()))
            if len(cmd.prp_list) > MAX_PRP_ENTRIES:
                out.append(_more(len(cmd.prp_list) - MAX_PRP_ENTRIES, "list entries"))
    if cmd.status != "BLK_STS_OK":
        out.append(Content.styled(f"  {cmd.status}: the request fails", ERROR))
    return out


def nvme_panel(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """The data pointer of each nvme command: PRP1/PRP2 and the PRP list, or SGL descriptors."""
    ctx = trace.context
    state = trace.steps[index].state
    out: list[Content] = []
    if ctx.scenario.target is not TargetKind.NVME:
        out.append(_heading("no nvme command"))
        out.append(
            Content.styled(
                f"  {ctx.scenario.client} is not an nvme queue (target kind"
                f" {ctx.scenario.target.value}): its driver builds its own descriptors.",
                MUTED,
            )
        )
        return lines(out)
    if not state.commands:
        reached = {s.stage for s in trace.steps[: index + 1]}
        out.append(_heading("nvme command: not built"))
        if "dma_map" in reached and any(not m.ok for m in state.mappings):
            text = "  nvme_map_data() failed at the DMA mapping: no PRPs or SGL were built."
        else:
            text = (
                "  nvme_map_data() builds PRPs (or an SGL when the controller supports them and"
                " the average segment is large) at the nvme stage."
            )
        out.append(Content.styled(text, MUTED))
        return lines(out)
    setup = ctx.scenario.nvme
    out.append(
        Content.styled(
            f"controller SGL support: {'yes' if setup.sgl else 'no'}; sgl_threshold"
            f" {setup.sgl_threshold}",
            MUTED,
        )
    )
    for cmd in state.commands[:MAX_REQUESTS]:
        out += _command_lines(cmd, cmd.request in changes.commands, width)
        out.append(Content(""))
    if len(state.commands) > MAX_REQUESTS:
        out.append(_more(len(state.commands) - MAX_REQUESTS, "commands built the same way"))
    return lines(out)


# -- the TLP path ----------------------------------------------------------------------


def node_role(topo: Topology, node: Node) -> str:
    """``root port``, ``switch upstream port``, ``nvme``, ``host bridge`` ..."""
    if isinstance(node, RootBus):
        return "host bridge (root complex)"
    return role(topo[node])


def _tree_edges(
    topo: Topology, ends: Sequence[BDF]
) -> tuple[list[RootBus], dict[Node, list[Node]]]:
    roots: list[RootBus] = []
    children: dict[Node, list[Node]] = {}
    for end in ends:
        chain = topo.upstream_chain(end)
        root = topo.root_bus_of(end)
        if root not in roots:
            roots.append(root)
        path: list[Node] = [root, *reversed(chain)]
        for parent, child in itertools.pairwise(path):
            kids = children.setdefault(parent, [])
            if child not in kids:
                kids.append(child)
    for kids in children.values():
        kids.sort(key=str)
    return roots, children


def path_tree(
    trace: Trace,
    ends: Sequence[BDF],
    route: TlpRoute | None,
    provider: BDF | None,
) -> list[Content]:
    """The client's and provider's chains as a tree, the hops lit and the turn marked."""
    ctx = trace.context
    topo = ctx.topology
    client = ctx.client.bdf
    roots, children = _tree_edges(topo, ends)
    hops: list[Node] = list(route.hops) if route is not None else []
    turn_at = hops.index(route.turn) if route is not None and route.turn in hops else None
    out: list[Content] = []

    def label(node: Node) -> Content:
        name = str(node) if isinstance(node, RootBus) else node.short()
        lit = node in hops
        parts: list[tuple[str, str] | str] = [(name, "bold $text-accent" if lit else MUTED)]
        parts.append((" " + node_role(topo, node), "" if lit else MUTED))
        if isinstance(node, BDF) and topo[node].label:
            parts.append((f" ({topo[node].label})", MUTED))
        if node == client:
            parts.append((" client", "bold"))
        previewed = route is None and isinstance(node, BDF) and node in ctx.providers
        if node == provider or previewed:
            parts.append((" provider", "bold"))
        if route is not None and node in hops:
            pos = hops.index(node)
            if turn_at is not None and pos == turn_at:
                if route.through_root_complex:
                    turn = "  ◆ through the root complex"
                    if route.translated:
                        turn += ": the IOMMU translates"
                    if provider is None:
                        turn = "  ◆ host memory, through the root complex"
                    style = "bold $text-warning"
                else:
                    turn = (
                        "  ◆ the TLPs turn here"
                        if node != client
                        else "  ◆ its own BAR: the TLPs never leave the device"
                    )
                    style = GOOD
                parts.append((turn, style))
            elif turn_at is not None and pos < turn_at:
                parts.append(("  ▲", "bold $text-accent"))
            else:
                parts.append(("  ▼", "bold $text-accent"))
        return Content.assemble(*parts)

    def walk(node: Node, prefix: str, last: bool, top: bool) -> None:
        connector = "" if top else ("└─ " if last else "├─ ")
        out.append(Content.styled(prefix + connector, MUTED) + label(node))
        kids = children.get(node, [])
        below = prefix + ("" if top else ("   " if last else "│  "))
        for i, kid in enumerate(kids):
            walk(kid, below, i == len(kids) - 1, False)

    for root in roots:
        walk(root, "  ", True, True)
    return out


def tlp_panel(trace: Trace, index: int, changes: StepChanges, width: int) -> Content:
    """Where the device's memory requests travel, drawn on the client's and provider's chains."""
    ctx = trace.context
    state = trace.steps[index].state
    client = ctx.client.bdf
    out: list[Content] = []
    by_pgmap = providers_by_pgmap(trace)
    if not state.tlps:
        reached = {s.stage for s in trace.steps}
        if "device_dma" in reached:
            note = "the device moves the data at the device_dma stage; the chains it will use:"
        elif trace.result.outcome != "ok":
            note = (
                f"no TLPs: the I/O stopped at {trace.result.stage} before the device was"
                " given any address; the chains it would have used:"
            )
        else:
            note = "the chains of the client and the providers:"
        out.append(_heading("TLP path: not yet"))
        out.append(Content.styled("  " + note, MUTED))
        out += path_tree(trace, [client, *ctx.providers], None, None)
        return lines(out)
    seen: set[tuple[object, ...]] = set()
    shown = 0
    for route in state.tlps:
        key = (route.hops, route.turn, route.target)
        if key in seen:
            continue
        seen.add(key)
        if shown >= MAX_ROUTES:
            shown += 1
            continue
        shown += 1
        provider = next(
            (b for b in by_pgmap.values() if route.target.startswith(str(b))),
            None,
        )
        verb = "reads from" if ctx.scenario.write else "writes to"
        head = f"request {route.request}: the controller {verb} {route.target}"
        if route.translated:
            head += f", addressed by IOVA {hx(route.address)}"
        elif provider is not None and not route.through_root_complex:
            head += f" at bus address {hx(route.address)}"
        elif route.address >= 0:
            head += f" at {hx(route.address)}"
        out.append(_heading(head, route.request in changes.tlps))
        if provider is not None:
            verdict = ctx.verdict(provider)
            kind = verdict.map_type.value if verdict.map_type is not None else "int"
            where = (
                "through the root complex"
                if route.through_root_complex
                else f"the TLPs turn at {route.turn} and never reach the root complex"
            )
            out.append(
                Content.styled(
                    f"  {kind}, distance {verdict.distance}: {where}"
                    + (", IOVA translated by the IOMMU" if route.translated else ""),
                    MUTED,
                )
            )
        ends = [client] + ([provider] if provider is not None and provider != client else [])
        out += path_tree(trace, ends, route, provider)
        out.append(Content(""))
    if shown > MAX_ROUTES:
        out.append(_more(shown - MAX_ROUTES, "routes"))
    requests = len({r.request for r in state.tlps})
    if requests > 1:
        out.append(
            Content.styled(f"{requests} requests; each pgmap's entries travel the same way", MUTED)
        )
    return lines(out)


#: (panel id, tab title, builder) in tab order (the ids are
#: :data:`~p2pview.tui.stepper_state.PANEL_IDS`; the panel of each stage is there too).
PANELS = (
    ("buffer", "Buffer", buffer_panel),
    ("bios", "Bios", bios_panel),
    ("sg", "Scatterlist", sg_panel),
    ("nvme", "PRP/SGL", nvme_panel),
    ("tlp", "TLP path", tlp_panel),
)
