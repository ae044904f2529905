"""blk_rq_map_sg() and the DMA mapping (spec sections 7.6-7.10, data-path notes items 1, 5-6).

``__blk_bios_map_sg()`` (v6.1-v6.3 copy, the same from v5.1 to v6.13): a bvec
is merged into the previous entry only across a bio boundary
(``__blk_segment_map_sg_merge()``: the entry's length plus the whole bvec within
``max_segment_size``, and ``biovec_phys_mergeable()``); a single-page bvec is one
entry; a multi-page one is cut with ``get_max_segment_size()``. nvme-pci uses
one flat array, so no SG_CHAIN entry ever appears.

dma-direct (v6.0-v6.15, f02ad36d): BUS_ADDR entries get ``phys + bus_offset``
and the bus-address mark; THRU entries are mapped as memory, never bounced
(-EIO under swiotlb); other map types give -EREMOTEIO. dma-iommu (v6.0,
30280eee): bus-address entries take no IOVA and keep their own output entry;
the rest share one IOVA allocation and are concatenated by ``__finalise_sg()``.
From v6.14 ``__blk_rq_map_sg()`` walks ``blk_map_iter_next()``, which merges
adjacent bvecs within a bio too (:func:`iter_segments`). v6.17+ maps through
``blk_rq_dma_map_iter_start()``: the first segment's P2P state decides for the
whole request, and through the IOMMU the request becomes one IOVA range, one
segment (``blk_rq_dma_map_iova()``, block/blk-mq-dma.c, read in 7.2.13).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

import numpy as np

from p2pview.iosim.block import phys_mergeable, segment_ends
from p2pview.iosim.context import SimContext
from p2pview.iosim.datapath import Mapping
from p2pview.iosim.objects import (
    I64,
    PAGE_SIZE,
    RAM,
    SG_DMA_BUS_ADDRESS,
    SG_END,
    SG_PAGE_LINK_BUS_ADDRESS,
    Bvecs,
    DmaMapping,
    Event,
    Result,
    SgTable,
)
from p2pview.iosim.scenario import DmaMode
from p2pview.iosim.state import SimState
from p2pview.kernel.verdict import MapType
from p2pview.model import BDF

#: Where the simulated IOVA allocator starts (just below 4 GiB: dma-iommu tries
#: 32-bit IOVAs first for PCI devices) [recalled]; the values are illustrative.
IOVA_TOP = 0x1_0000_0000
#: Where simulated swiotlb bounce slots live (illustrative).
SWIOTLB_BASE = 0x7C00_0000


def _sg_from_entries(
    request: int, phys: Any, off: Any, length: Any, pgmap: Any, iterator: bool
) -> SgTable:
    n = len(phys)
    page_link = np.zeros(n, dtype=np.int64)
    if n and not iterator:
        page_link[-1] = SG_END
    return SgTable(
        request,
        np.asarray(phys, dtype=np.int64),
        np.asarray(off, dtype=np.int64),
        np.asarray(length, dtype=np.int64),
        np.asarray(pgmap, dtype=np.int32),
        page_link,
        np.full(n, -1, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        iterator=iterator,
    )


def _pieces(bv: Bvecs, k: int, ctx: SimContext) -> list[tuple[int, int, int]]:
    """``blk_bvec_map_sg()``: (page address, offset < PAGE_SIZE, length) per entry."""
    off, ln = int(bv.offset[k]), int(bv.length[k])
    base = int(bv.phys[k])
    if off + ln <= PAGE_SIZE:
        return [(base, off, ln)]
    out = []
    prev = 0
    for end in segment_ends(base + off, ln, ctx.limits).tolist():
        at = off + prev
        out.append((base + (at // PAGE_SIZE) * PAGE_SIZE, at % PAGE_SIZE, end - prev))
        prev = end
    return out


def map_sg(ctx: SimContext, state: SimState, request_index: int) -> SgTable:
    """``__blk_rq_map_sg()`` for one request."""
    rq = state.requests[request_index]
    phys: list[np.ndarray] = []
    off: list[np.ndarray] = []
    length: list[np.ndarray] = []
    pgmap: list[np.ndarray] = []
    prev: tuple[int, int, int] | None = None  # last bvec of the previous bio: addr, len, pgmap
    max_seg = ctx.limits.max_segment_size
    spans: list[int] = []
    for bio_index in rq.bios:
        bv = state.bios[bio_index].bvecs
        start = 0
        if prev is not None and phys:
            addr, ln, pg = int(bv.addr[0]), int(bv.length[0]), int(bv.pgmap[0])
            if int(length[-1][-1]) + ln <= max_seg and phys_mergeable(ctx, *prev, addr, ln, pg):
                length[-1] = length[-1].copy()
                length[-1][-1] += ln  # the whole bvec joins the entry, not re-cut
                start = 1
                if int(pgmap[-1][-1]) != pg:
                    spans.append(sum(len(p) for p in phys) - 1)
        single = (bv.offset + bv.length) <= PAGE_SIZE
        if start >= len(bv):
            pass  # the bio's only vector joined the entry before it
        elif single[start:].all():
            phys.append(bv.phys[start:])
            off.append(bv.offset[start:])
            length.append(bv.length[start:])
            pgmap.append(bv.pgmap[start:])
        else:
            for k in range(start, len(bv)):
                pieces = _pieces(bv, k, ctx)
                phys.append(np.array([p[0] for p in pieces], dtype=np.int64))
                off.append(np.array([p[1] for p in pieces], dtype=np.int64))
                length.append(np.array([p[2] for p in pieces], dtype=np.int64))
                pgmap.append(np.full(len(pieces), int(bv.pgmap[k]), dtype=np.int32))
        last = len(bv) - 1
        prev = (int(bv.addr[last]), int(bv.length[last]), int(bv.pgmap[last]))
    sg = _sg_from_arrays(rq.index, phys, off, length, pgmap, iterator=False)
    return replace(sg, spans=tuple(spans)) if spans else sg


def _sg_from_arrays(
    request: int,
    phys: list[np.ndarray],
    off: list[np.ndarray],
    length: list[np.ndarray],
    pgmap: list[np.ndarray],
    iterator: bool,
) -> SgTable:
    def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
        return np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)

    return _sg_from_entries(
        request,
        cat(phys, np.int64),
        cat(off, np.int64),
        cat(length, np.int64),
        cat(pgmap, np.int32),
        iterator,
    )


def iter_segments(
    ctx: SimContext, state: SimState, request_index: int, iterator: bool = True
) -> SgTable:
    """``blk_map_iter_next()``: bvecs merged within and across bios while they fit.

    block/blk-mq-dma.c (read in 7.2.13): each step takes one bvec, capped at
    ``get_max_segment_size(limits, paddr, UINT_MAX)``; once that bvec is used up
    it absorbs the following whole bvecs (of this bio or the next) while the
    sum stays within that size and ``biovec_phys_mergeable()`` holds. A bvec
    cut at the cap is not merged with what follows. ``__blk_rq_map_sg()`` uses
    it from v6.14 (``iterator`` False: a scatterlist with SG_END), the DMA
    iterator from v6.17.
    """
    rq = state.requests[request_index]
    parts = [state.bios[i].bvecs for i in rq.bios]
    addr = np.concatenate([b.addr for b in parts]).astype(np.int64)
    length = np.concatenate([b.length for b in parts]).astype(np.int64)
    pgmap = np.concatenate([b.pgmap for b in parts]).astype(np.int32)
    lim = ctx.limits
    mask = lim.seg_boundary_mask
    max_seg = lim.max_segment_size
    # Cut the bvecs that cross a segment boundary or exceed max_segment_size.
    end = addr + length - 1
    cut = ((addr | mask) != (end | mask)) | (length > max_seg)
    last_piece = np.ones(len(addr), dtype=np.bool_)
    first_piece = np.ones(len(addr), dtype=np.bool_)
    if cut.any():
        p_addr: list[int] = []
        p_len: list[int] = []
        p_pg: list[int] = []
        p_first: list[bool] = []
        p_last: list[bool] = []
        for k in range(len(addr)):
            pieces = (
                _cut(int(addr[k]), int(length[k]), ctx)
                if cut[k]
                else [(int(addr[k]), int(length[k]))]
            )
            for n, (a, ln) in enumerate(pieces):
                p_addr.append(a)
                p_len.append(ln)
                p_pg.append(int(pgmap[k]))
                p_first.append(n == 0)
                p_last.append(n == len(pieces) - 1)
        addr = np.asarray(p_addr, dtype=np.int64)
        length = np.asarray(p_len, dtype=np.int64)
        pgmap = np.asarray(p_pg, dtype=np.int32)
        first_piece = np.asarray(p_first, dtype=np.bool_)
        last_piece = np.asarray(p_last, dtype=np.bool_)
    join = np.zeros(len(addr), dtype=np.bool_)
    if len(addr) > 1:
        window = addr & ~mask
        join[1:] = (
            last_piece[:-1]
            & first_piece[1:]
            & (addr[:-1] + length[:-1] == addr[1:])
            & (window[1:] == window[:-1])
            & (((addr[1:] + length[1:] - 1) & ~mask) == window[1:])
        )
        if ctx.datapath.cross_bio_pgmap_check:
            join[1:] &= pgmap[1:] == pgmap[:-1]
    starts = np.flatnonzero(~join)
    run_len = np.add.reduceat(length, starts) if len(starts) else np.zeros(0, np.int64)
    if len(starts) and int(run_len.max()) > max_seg:
        starts, run_len = _runs_within(join, length, max_seg)
        join = np.ones(len(addr), dtype=np.bool_)
        join[starts] = False
    run_addr = addr[starts]
    run_pg = pgmap[starts]
    spans: list[int] = []
    if len(starts) < len(addr):
        changes = np.zeros(len(addr), dtype=np.bool_)
        changes[1:] = join[1:] & (pgmap[1:] != pgmap[:-1])
        if changes.any():
            run_of = np.cumsum(~join) - 1
            spans = sorted(set(run_of[changes].tolist()))
    sg = _sg_from_entries(
        rq.index,
        run_addr // PAGE_SIZE * PAGE_SIZE,
        run_addr % PAGE_SIZE,
        run_len,
        run_pg,
        iterator,
    )
    return replace(sg, spans=tuple(spans)) if spans else sg


def _runs_within(join: np.ndarray, length: np.ndarray, max_seg: int) -> tuple[I64, I64]:
    """Runs of joinable pieces, cut where a run would exceed ``max_seg`` (a what-if limit)."""
    starts: list[int] = []
    lens: list[int] = []
    for k in range(len(length)):
        ln = int(length[k])
        if starts and join[k] and lens[-1] + ln <= max_seg:
            lens[-1] += ln
            continue
        starts.append(k)
        lens.append(ln)
    return np.asarray(starts, dtype=np.int64), np.asarray(lens, dtype=np.int64)


def _cut(addr: int, ln: int, ctx: SimContext) -> list[tuple[int, int]]:
    prev = 0
    out = []
    for end in segment_ends(addr, ln, ctx.limits).tolist():
        out.append((addr + prev, end - prev))
        prev = end
    return out


def stage_map_sg(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """Every request's scatterlist (or iterator segments)."""
    iterator = ctx.datapath.mapping is Mapping.ITER
    merges_within = iterator or ctx.datapath.map_sg_merges_within_bio
    sgls = tuple(
        iter_segments(ctx, state, r.index, iterator)
        if merges_within
        else map_sg(ctx, state, r.index)
        for r in state.requests
    )
    total = sum(len(s) for s in sgls)
    if iterator:
        text = (
            f"{len(sgls)} request(s) -> {total} DMA segment(s): blk_rq_dma_map_iter_start()"
            " merges physically contiguous vectors within and across bios (no scatterlist)"
        )
        function = "blk_rq_dma_map_iter_start()"
    elif merges_within:
        text = (
            f"{len(sgls)} request(s) -> {total} scatterlist entr{'y' if total == 1 else 'ies'}"
            " (one flat array per request, last entry SG_END; blk_map_iter_next() merges"
            " physically contiguous bvecs within and across bios, v6.14+)"
        )
        function = "blk_rq_map_sg() -> blk_map_iter_next()"
    else:
        text = (
            f"{len(sgls)} request(s) -> {total} scatterlist entr{'y' if total == 1 else 'ies'}"
            " (one flat array per request, last entry SG_END; a bvec is merged into the entry"
            " before it only across a bio boundary)"
        )
        function = "blk_rq_map_sg()"
    touched = tuple(f"sg:{s.request}:{k}" for s in sgls[:4] for k in range(min(len(s), 16)))
    events = [Event("map_sg", function, text, touched)]
    for sg in sgls:
        for k in sg.spans:
            events.append(
                Event(
                    "map_sg",
                    "blk_map_iter_next()" if merges_within else "__blk_segment_map_sg_merge()",
                    f"request {sg.request}: a bvec of another pgmap joins entry {k}"
                    + ("" if merges_within else " across the bio boundary")
                    + ": physically contiguous, but biovec_phys_mergeable() has no pgmap"
                    " check before commit 13920e4b7b78, so one entry now covers two"
                    " providers' memory and is mapped as the first one's",
                    (f"sg:{sg.request}:{k}",),
                    level="warn",
                )
            )
    return state.next("map_sg", sgls=sgls), events


class _Iova:
    """A top-down IOVA allocator, size-aligned like alloc_iova_fast() [recalled]."""

    def __init__(self) -> None:
        self.low = IOVA_TOP

    def alloc(self, size: int) -> int:
        align = 1 << max(12, (size - 1).bit_length())
        start = (self.low - size) & ~(align - 1)
        self.low = start
        return start


#: Requests whose mapping events are listed one by one; the rest are counted.
_EVENTS_FOR_REQUESTS = 4


def stage_dma_map(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """dma_map_sgtable() (or the v6.17+ iterator) for every request, in order."""
    events: list[Event] = []
    sgls = list(state.sgls)
    mappings: list[DmaMapping] = []
    iova = _Iova()
    swiotlb_next = SWIOTLB_BASE
    providers_by_pgmap = {p.pgmap: b for b, p in ctx.providers.items()}
    printed: set[BDF] = set()
    for index, sg in enumerate(sgls):
        types: list[MapType | None] = []
        for pg in sg.pgmap.tolist():
            if pg == RAM:
                types.append(None)
            else:
                provider = providers_by_pgmap[pg]
                verdict = ctx.verdict(provider)
                types.append(verdict.map_type)
                if provider not in printed:
                    printed.add(provider)
                    lines = tuple(m.dmesg() for m in verdict.messages)
                    events.append(
                        Event(
                            "dma_map",
                            "pci_p2pdma_map_type() -> calc_map_type_and_dist()",
                            f"the map type of {provider} -> {ctx.client.bdf} is not cached yet:"
                            f" computed verbosely: {verdict.text()}",
                            (f"sg:{index}:0",),
                            dmesg=lines,
                        )
                    )
        if ctx.datapath.mapping is Mapping.ITER:
            new_sg, mapping, extra, swiotlb_next = _map_iter(ctx, sg, types, iova, swiotlb_next)
        else:
            new_sg, mapping, extra, swiotlb_next = _map_sg(ctx, sg, types, iova, swiotlb_next)
        sgls[index] = new_sg
        mappings.append(mapping)
        if index < _EVENTS_FOR_REQUESTS or not mapping.ok:
            events.extend(extra)
        if not mapping.ok:
            break
    quiet = sum(1 for m in mappings[_EVENTS_FOR_REQUESTS:] if m.ok)
    if quiet:
        # As the nvme stage does: a 1 GiB read is hundreds of requests mapped alike.
        events.append(
            Event(
                "dma_map", "dma_map_sgtable()", f"... and {quiet} more requests mapped the same way"
            )
        )
    failed = next((m for m in mappings if not m.ok), None)
    result = None
    if failed is not None:
        outcome = "hang" if failed.status == "BLK_STS_RESOURCE" else "error"
        result = Result(failed.errno, "dma_map", 0, outcome)
    return state.next("dma_map", sgls=tuple(sgls), mappings=tuple(mappings), result=result), events


def _bus(ctx: SimContext, provider_pgmap: int, phys: int) -> int:
    prov = next(p for p in ctx.providers.values() if p.pgmap == provider_pgmap)
    if ctx.datapath.bus_offset_added:
        return prov.bus_address(phys)
    return (phys - prov.bus_offset) & ((1 << 64) - 1)  # v5.15 and earlier: the sign bug (TV13)


def _iova_spans(sg: SgTable, entries: Iterable[int]) -> list[int]:
    """Each entry's page-rounded share of one IOVA allocation, laid out back to back.

    An entry starts at its in-page offset (always below PAGE_SIZE here: the
    entries are page + offset) and takes whole IOMMU pages, as
    ``iommu_dma_map_sg()`` and ``dma_iova_link()`` map them [recalled].
    """
    return [
        (int(sg.offset[k]) % PAGE_SIZE + int(sg.length[k]) + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        for k in entries
    ]


def _requeued_forever(
    sg: SgTable, types: list[MapType | None], events: list[Event], swiotlb_next: int
) -> tuple[SgTable, DmaMapping, list[Event], int]:
    """A mapping failure blk-mq answers with BLK_STS_RESOURCE: the request never completes."""
    mapping = DmaMapping(sg.request, False, None, tuple(types), status="BLK_STS_RESOURCE")
    return sg, mapping, events, swiotlb_next


def _map_sg(
    ctx: SimContext, sg: SgTable, types: list[MapType | None], iova: _Iova, swiotlb_next: int
) -> tuple[SgTable, DmaMapping, list[Event], int]:
    dp = ctx.datapath
    mode = ctx.scenario.dma
    n = len(sg)
    addr = sg.phys + sg.offset
    dma_address = np.full(n, -1, dtype=np.int64)
    dma_length = np.zeros(n, dtype=np.int64)
    dma_flags = np.zeros(n, dtype=np.int64)
    page_link = sg.page_link.copy()
    events: list[Event] = []
    r = sg.request
    is_bus = np.array([t is MapType.BUS_ADDR for t in types], dtype=np.bool_)
    func = "dma_map_sgtable() -> " + (
        "iommu_dma_map_sg()" if mode is DmaMode.IOMMU else "dma_direct_map_sg()"
    )
    for k, t in enumerate(types):
        if t is MapType.NOT_SUPPORTED or (
            t is not None and t not in (MapType.BUS_ADDR, MapType.THRU_HOST_BRIDGE)
        ):
            events.append(
                Event(
                    "dma_map",
                    func,
                    f"entry {k}: pci_p2pdma_map_segment() gives NOT_SUPPORTED:"
                    f" -EREMOTEIO; entries 0-{k - 1} unmapped again"
                    if k
                    else "entry 0: pci_p2pdma_map_segment() gives NOT_SUPPORTED: -EREMOTEIO",
                    (f"sg:{r}:{k}",),
                    level="error",
                )
            )
            events.append(
                Event(
                    "dma_map",
                    "nvme_map_data()",
                    "-EREMOTEIO -> BLK_STS_TARGET: the request"
                    ' fails; the bio ends with -EREMOTEIO ("critical target error")',
                    (f"rq:{r}",),
                    level="error",
                )
            )
            return (
                sg,
                DmaMapping(r, False, "EREMOTEIO", tuple(types), status="BLK_STS_TARGET"),
                events,
                swiotlb_next,
            )
    # Bus-address entries (both dma-direct and dma-iommu mark them the same way).
    for k in np.flatnonzero(is_bus).tolist():
        dma_address[k] = _bus(ctx, int(sg.pgmap[k]), int(addr[k]))
        if mode is DmaMode.IOMMU and dp.iommu_bus_len_from_head:
            dma_length[k] = int(sg.length[0])  # v6.16+ dma-iommu: sg_dma_len(s) = sg->length
        elif mode is not DmaMode.IOMMU and dp.direct_bus_no_len:
            dma_length[k] = 0  # v6.16-v6.18-rc7: sg_dma_len not set (d0d08f4bd7f6)
        else:
            dma_length[k] = int(sg.length[k])
        if dp.bus_flag_in_page_link:
            page_link[k] |= SG_PAGE_LINK_BUS_ADDRESS
        else:
            dma_flags[k] = SG_DMA_BUS_ADDRESS
    if is_bus.any():
        where = "page_link 0x04" if dp.bus_flag_in_page_link else "dma_flags SG_DMA_BUS_ADDRESS"
        text = (
            f"{int(is_bus.sum())} entr{'y' if is_bus.sum() == 1 else 'ies'}: BUS_ADDR:"
            f" dma_address = phys {'+' if dp.bus_offset_added else '-'} bus_offset, marked with"
            f" {dp.bus_helper} ({where});"
            " no IOMMU mapping"
        )
        if not dp.bus_offset_added and any(p.bus_offset for p in ctx.providers.values()):
            text += (
                " (before v5.16 the kernel subtracted the offset: a wrong address here;"
                " commit 3a19407913e8 fixed the sign)"
            )
        events.append(
            Event(
                "dma_map",
                "pci_p2pdma_map_segment()",
                text,
                tuple(f"sg:{r}:{k}" for k in np.flatnonzero(is_bus)[:16]),
            )
        )
        if mode is DmaMode.IOMMU and dp.iommu_bus_len_from_head and len(sg) > 1:
            events.append(
                Event(
                    "dma_map",
                    "iommu_dma_map_sg()",
                    "BUS_ADDR entries get"
                    " sg_dma_len(s) = sg->length: the head entry's length (still in"
                    " the newest tree)",
                    level="warn",
                    confidence="read",
                )
            )
        elif mode is not DmaMode.IOMMU and dp.direct_bus_no_len:
            events.append(
                Event(
                    "dma_map",
                    "dma_direct_map_sg()",
                    "v6.16-v6.18-rc7: BUS_ADDR"
                    " entries are left without sg_dma_len (fixed by d0d08f4bd7f6);"
                    " this shows with CONFIG_NEED_SG_DMA_LENGTH (selected by"
                    " IOMMU_DMA), otherwise sg_dma_len() is the length itself",
                    level="warn",
                    confidence="inferred",
                )
            )
    rest = np.flatnonzero(~is_bus)
    iova_ranges: list[tuple[int, int]] = []
    stale: list[int] = []
    if len(rest):
        thru = [k for k in rest.tolist() if types[k] is MapType.THRU_HOST_BRIDGE]
        if mode is DmaMode.SWIOTLB and thru:
            k = thru[0]
            events.append(
                Event(
                    "dma_map",
                    "dma_direct_map_page()",
                    f"entry {k}: swiotlb force-bounce and a"
                    " P2P page: DMA_MAPPING_ERROR (P2P memory is never bounced): -EIO",
                    (f"sg:{r}:{k}",),
                    level="error",
                )
            )
            events.append(
                Event(
                    "dma_map",
                    "nvme_map_data()",
                    "-EIO -> BLK_STS_RESOURCE: blk-mq requeues the"
                    " request, which fails the same way again: the I/O never completes",
                    (f"rq:{r}",),
                    level="error",
                )
            )
            return _requeued_forever(sg, types, events, swiotlb_next)
        if mode is DmaMode.IOMMU:
            sizes = _iova_spans(sg, rest.tolist())
            base = iova.alloc(sum(sizes))
            pos = base
            for k, size in zip(rest.tolist(), sizes, strict=True):
                dma_address[k] = pos + int(sg.offset[k]) % PAGE_SIZE
                dma_length[k] = int(sg.length[k])
                pos += size
            iova_ranges.append((base, sum(sizes)))
            events.append(
                Event(
                    "dma_map",
                    "iommu_dma_map_sg()",
                    f"{len(rest)} entr{'y' if len(rest) == 1 else 'ies'}"
                    f" ({'THRU_HOST_BRIDGE P2P and ' if thru else ''}memory) mapped through the"
                    " IOMMU"
                    f" at IOVA {base:#x}-{base + sum(sizes) - 1:#x} (one allocation; the values"
                    " are the simulator's)",
                    tuple(f"sg:{r}:{k}" for k in rest[:16].tolist()),
                    confidence="recalled",
                )
            )
        else:
            for k in rest.tolist():
                if types[k] is MapType.THRU_HOST_BRIDGE and dp.direct_thru_unmapped:
                    # v6.16+: the switch breaks out before mapping THRU entries; the
                    # address stays what sg_init_table() left: 0.
                    dma_address[k] = 0
                    dma_length[k] = int(sg.length[k])
                    stale.append(k)
                    continue
                if mode is DmaMode.SWIOTLB:
                    dma_address[k] = swiotlb_next + int(sg.offset[k])
                    swiotlb_next += (int(sg.offset[k]) + int(sg.length[k]) + 2047) // 2048 * 2048
                else:
                    dma_address[k] = int(addr[k])
                dma_length[k] = int(sg.length[k])
            what = (
                "bounced through swiotlb"
                if mode is DmaMode.SWIOTLB
                else "mapped 1:1 (dma_direct_map_page(): the CPU physical address)"
            )
            events.append(
                Event(
                    "dma_map",
                    "dma_direct_map_sg()",
                    f"{len(rest)} entr{'y' if len(rest) == 1 else 'ies'} {what}",
                    tuple(f"sg:{r}:{k}" for k in rest[:16].tolist()),
                )
            )
            if thru and dp.direct_thru_unmapped:
                events.append(
                    Event(
                        "dma_map",
                        "dma_direct_map_sg()",
                        "v6.16+: THRU_HOST_BRIDGE"
                        " entries are left without a dma_address (the switch breaks"
                        " out before the mapping; fixed by 560000d619ef)",
                        level="warn",
                        confidence="inferred",
                    )
                )
    new_sg = SgTable(
        r,
        sg.phys,
        sg.offset,
        sg.length,
        sg.pgmap,
        page_link,
        dma_address,
        dma_length,
        dma_flags,
        nents=len(sg),
        iterator=False,
    )
    if mode is DmaMode.IOMMU:
        new_sg = _finalise_sg(ctx, new_sg, is_bus)
    mapping = DmaMapping(r, True, None, tuple(types), tuple(iova_ranges), stale=tuple(stale))
    return new_sg, mapping, events, swiotlb_next


def _finalise_sg(ctx: SimContext, sg: SgTable, is_bus: np.ndarray) -> SgTable:
    """``__finalise_sg()``: output entries in order; bus entries alone, IOVA pieces concatenated."""
    max_len = ctx.limits.max_segment_size
    out_addr: list[int] = []
    out_len: list[int] = []
    out_flags: list[int] = []
    cur_bus = False
    for k in range(len(sg)):
        a, ln = int(sg.dma_address[k]), int(sg.dma_length[k])
        if is_bus[k]:
            out_addr.append(a)
            out_len.append(ln)
            out_flags.append(SG_DMA_BUS_ADDRESS)
            cur_bus = True
            continue
        if (
            out_addr
            and not cur_bus
            and out_addr[-1] + out_len[-1] == a
            and out_len[-1] + ln <= max_len
            and a % PAGE_SIZE == 0
        ):
            out_len[-1] += ln
            continue
        out_addr.append(a)
        out_len.append(ln)
        out_flags.append(0)
        cur_bus = False
    n = len(sg)
    dma_address = np.full(n, -1, dtype=np.int64)
    dma_length = np.zeros(n, dtype=np.int64)
    dma_flags = np.zeros(n, dtype=np.int64)
    m = len(out_addr)
    dma_address[:m] = out_addr
    dma_length[:m] = out_len
    dma_flags[:m] = out_flags
    return SgTable(
        sg.request,
        sg.phys,
        sg.offset,
        sg.length,
        sg.pgmap,
        sg.page_link,
        dma_address,
        dma_length,
        dma_flags,
        nents=m,
    )


def _map_iter(
    ctx: SimContext, sg: SgTable, types: list[MapType | None], iova: _Iova, swiotlb_next: int
) -> tuple[SgTable, DmaMapping, list[Event], int]:
    """v6.17+: the first segment's state decides (``pci_p2pdma_state()``)."""
    mode = ctx.scenario.dma
    r = sg.request
    first = types[0] if types else None
    n = len(sg)
    addr = sg.phys + sg.offset
    dma_address = np.full(n, -1, dtype=np.int64)
    dma_length = sg.length.copy()
    dma_flags = np.zeros(n, dtype=np.int64)
    events: list[Event] = []
    state_name = "NONE (memory)" if first is None else first.value
    if first is MapType.NOT_SUPPORTED:
        events.append(
            Event(
                "dma_map",
                "blk_rq_dma_map_iter_start()",
                "pci_p2pdma_state() gives NOT_SUPPORTED: BLK_STS_INVAL",
                (f"rq:{r}",),
                level="error",
            )
        )
        return (
            sg,
            DmaMapping(
                r, False, ctx.datapath.unsupported_errno, tuple(types), status="BLK_STS_INVAL"
            ),
            events,
            swiotlb_next,
        )
    iova_ranges: list[tuple[int, int]] = []
    coalesced = False
    if first is MapType.BUS_ADDR:
        for k in range(n):
            dma_address[k] = _bus(ctx, int(sg.pgmap[k]), int(addr[k]))
        text = (
            "BUS_ADDR: every segment gets its bus address (pci_p2pdma_bus_addr_map()); IOD_DATA_P2P"
        )
    elif mode is DmaMode.IOMMU and _no_page_gaps(sg):
        # blk_can_dma_map_iova() and dma_iova_try_alloc(): one IOVA range for the
        # whole request, every vector linked into it back to back
        # (dma_iova_link()); the iterator then hands out ONE segment, the whole
        # range (blk_rq_dma_map_iova(): iter->addr = state->addr, iter->len =
        # dma_iova_size()) [read 7.2.13 block/blk-mq-dma.c].
        first_off = int(sg.offset[0]) % PAGE_SIZE if n else 0
        total = int(sg.length.sum())
        size = (first_off + total + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        base = iova.alloc(size)
        dma_address[:] = -1
        dma_length[:] = 0
        if n:
            dma_address[0] = base + first_off
            dma_length[0] = total
        iova_ranges.append((base, size))
        coalesced = True
        text = (
            f"{state_name}: dma_iova_try_alloc() + dma_iova_link() of {n} vector(s) into one"
            f" IOVA range at {base:#x}: the request is one DMA segment of {total} bytes"
            " (blk_rq_dma_map_coalesce())"
            + (" with DMA_ATTR_MMIO" if first is MapType.THRU_HOST_BRIDGE else "")
        )
    elif mode is DmaMode.IOMMU:
        # A request with gaps inside a page cannot use one IOVA range:
        # dma_map_phys() per segment, each its own IOVA.
        for k, span in enumerate(_iova_spans(sg, range(n))):
            base = iova.alloc(span)
            dma_address[k] = base + int(sg.offset[k]) % PAGE_SIZE
            iova_ranges.append((base, span))
        text = (
            f"{state_name}: the request has gaps inside a page (blk_can_dma_map_iova() is"
            " false): dma_map_phys() per segment, each with its own IOVA"
        )
    else:
        if mode is DmaMode.SWIOTLB and first is MapType.THRU_HOST_BRIDGE:
            events.append(
                Event(
                    "dma_map",
                    "dma_map_phys()",
                    "DMA_ATTR_MMIO under swiotlb"
                    " force-bounce: DMA_MAPPING_ERROR -> BLK_STS_RESOURCE: requeued"
                    " forever",
                    (f"rq:{r}",),
                    level="error",
                )
            )
            return _requeued_forever(sg, types, events, swiotlb_next)
        for k in range(n):
            if mode is DmaMode.SWIOTLB:
                dma_address[k] = swiotlb_next + int(sg.offset[k])
                swiotlb_next += (int(sg.offset[k]) + int(sg.length[k]) + 2047) // 2048 * 2048
            else:
                dma_address[k] = int(addr[k])
        text = f"{state_name}: dma_map_phys() per segment" + (
            " with DMA_ATTR_MMIO" if first is MapType.THRU_HOST_BRIDGE else ""
        )
    events.append(
        Event(
            "dma_map",
            "blk_rq_dma_map_iter_start()",
            text,
            tuple(f"sg:{r}:{k}" for k in range(min(n, 16))),
        )
    )
    new_sg = SgTable(
        r,
        sg.phys,
        sg.offset,
        sg.length,
        sg.pgmap,
        sg.page_link,
        dma_address,
        dma_length,
        dma_flags,
        nents=1 if coalesced else n,
        iterator=True,
    )
    mapping = DmaMapping(r, True, None, tuple(types), tuple(iova_ranges), coalesced=coalesced)
    return new_sg, mapping, events, swiotlb_next


def _no_page_gaps(sg: SgTable) -> bool:
    """No segment but the first starts, and none but the last ends, inside a page.

    ``blk_can_dma_map_iova()``: ``!(req_phys_gap_mask(req) &
    dma_get_merge_boundary(dev))``, the IOMMU's granule taken as 4 KiB.
    """
    if len(sg) < 2:
        return True
    ends = (sg.offset + sg.length) % PAGE_SIZE
    return not bool((sg.offset[1:] % PAGE_SIZE).any() or ends[:-1].any())
