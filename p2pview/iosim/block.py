"""From pages to bios to requests (spec sections 7.4-7.5, data-path notes items 2-3).

* bio building (``bio_iov_add_page()`` / ``__bio_try_merge_page()`` /
  ``page_is_mergeable()``, v6.2): pages are added one at a time; a page that is
  physically contiguous with the last bvec, in the same pgmap, joins it,
  otherwise it starts a new bvec. v6.17-v6.19: ``bio_add_page()`` refuses a
  page of another pgmap and direct I/O WARNs and returns a short count; v7.0+
  (read in 7.2.13, ``iov_iter_extract_bvecs()``): one bvec per folio, and a
  page of another pgmap ends the bio; P2P bios carry REQ_NOMERGE. A bio holds
  at most BIO_MAX_VECS (256) bvecs and UINT_MAX bytes.
* ``bio_split_to_limits()`` (v6.1-v6.3 copy): each bvec is at least one segment
  (no merging inside a bio); a virt-boundary gap, ``max_segments`` or
  ``max_sectors`` split the bio; the split-off front gets REQ_NOMERGE.
* plug merging: a bio joins the previous request when both may merge, they are
  contiguous on disk, the sums stay within ``max_sectors`` / ``max_segments``,
  the request's first bvec starts on a virt boundary, and the join leaves no
  virt-boundary gap (a physically contiguous join never counts as a gap):
  ``bio_will_gap()`` (block/blk-merge.c, read in 6.12.117 and 7.2.13).
"""

from __future__ import annotations

import numpy as np

from p2pview.iosim.context import SimContext
from p2pview.iosim.datapath import BioRule
from p2pview.iosim.limits import KernelLimits
from p2pview.iosim.objects import I64, PAGE_SIZE, RAM, Bio, Bvecs, Event, PageList, Request
from p2pview.iosim.state import SimState

BIO_MAX_VECS = 256
UINT_MAX = 0xFFFFFFFF
SECTOR = 512


def same_pgmap(a: int, b: int) -> bool:
    """``zone_device_pages_have_same_pgmap()`` on pgmap ids (RAM = 0 is not zone device)."""
    return a == b


def segment_ends(addr: int, length: int, limits: KernelLimits) -> I64:
    """Where ``get_max_segment_size()`` cuts ``length`` bytes from ``addr`` (ends, relative).

    ``min_not_zero(mask - (addr & mask) + 1, max_segment_size)`` for each piece.
    """
    mask = limits.seg_boundary_mask
    size = limits.max_segment_size
    if size > mask:
        # Only the boundary cuts: at every multiple of mask + 1.
        step = mask + 1
        first = step - (addr & mask)
        if first >= length:
            return np.array([length], dtype=np.int64)
        rest = np.arange(first + step, length, step, dtype=np.int64)
        return np.concatenate([[first], rest, [length]]).astype(np.int64)
    ends: list[int] = []
    pos = 0
    while pos < length:
        cur = addr + pos
        piece = min(mask - (cur & mask) + 1, size) if size else mask - (cur & mask) + 1
        pos = min(length, pos + piece)
        ends.append(pos)
    return np.asarray(ends, dtype=np.int64)


def bvec_segments(bvecs: Bvecs, limits: KernelLimits) -> I64:
    """Segments each bvec counts for: 1 for a single-page bvec, its pieces otherwise."""
    counts = np.ones(len(bvecs), dtype=np.int64)
    multi = np.flatnonzero(bvecs.offset + bvecs.length > PAGE_SIZE)
    for k in multi.tolist():
        counts[k] = len(segment_ends(int(bvecs.addr[k]), int(bvecs.length[k]), limits))
    return counts


def stage_bio(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """Build the bios from the pinned pages."""
    pages = state.pages
    assert pages is not None
    dp = ctx.datapath
    events: list[Event] = []
    addr = pages.phys + pages.offset
    end = addr + pages.length
    contiguous = np.zeros(len(pages), dtype=np.bool_)
    contiguous[1:] = end[:-1] == addr[1:]
    pgmap_change = np.zeros(len(pages), dtype=np.bool_)
    pgmap_change[1:] = pages.pgmap[1:] != pages.pgmap[:-1]
    merge = contiguous if dp.bio_rule is BioRule.NONE else contiguous & ~pgmap_change
    if dp.folio_bvecs:
        # iov_iter_extract_bvecs(): one bvec per folio, never two folios in one;
        # P2P pages are order-0 folios, and anonymous RAM is taken as order-0
        # too (no THP) [read 7.2.13 lib/iov_iter.c; RAM folios assumed].
        merge[:] = False
    # A new extent of the file starts a new bio (iomap builds bios one extent
    # at a time).
    extent = np.zeros_like(merge)
    if ctx.scenario.extent_boundaries:
        at = np.cumsum(pages.length) - pages.length
        extent = np.isin(at, np.asarray(ctx.scenario.extent_boundaries, dtype=np.int64))
    short_at = None
    refused = pgmap_change & ~extent
    if dp.bio_rule is BioRule.SHORT_WARN and refused.any():
        # bio_add_page() refuses the page; its direct-I/O caller WARNs and gives
        # up: the bio holds the pages before it, the rest is never submitted.
        # (A page that starts a new extent goes into a new, empty bio: no refusal.)
        short_at = int(np.flatnonzero(refused)[0])
        pages = PageList(
            pages.phys[:short_at],
            pages.offset[:short_at],
            pages.length[:short_at],
            pages.pgmap[:short_at],
        )
        contiguous, merge = contiguous[:short_at], merge[:short_at]
        pgmap_change, extent = pgmap_change[:short_at], extent[:short_at]
    buffered = 0
    if (
        ctx.scenario.blockdev
        and dp.bio_rule is BioRule.NEW_BIO
        and len(pages) <= BIO_MAX_VECS
        and pgmap_change.any()
    ):
        # The block device itself, few pages (7.2.13 block/fops.c blkdev_direct_IO():
        # bio_iov_vecs_to_alloc(iter, BIO_MAX_VECS + 1) <= BIO_MAX_VECS, a synchronous
        # call): __blkdev_direct_IO_simple() submits ONE bio, which
        # iov_iter_extract_bvecs() ended at the first page of another pgmap
        # (bio_iov_iter_get_pages(), block/bio.c), and returns its size; then
        # blkdev_read_iter() reads the rest through the page cache (filemap_read())
        # and blkdev_write_iter() writes it there (direct_write_fallback()) [read 7.2.13].
        cut = int(np.flatnonzero(pgmap_change)[0])
        lbs = ctx.scenario.limits.logical_block_size
        direct = int(pages.length[:cut].sum()) // lbs * lbs
        keep = np.cumsum(pages.length) <= direct
        buffered = int(pages.length.sum()) - direct
        pages = PageList(
            pages.phys[keep], pages.offset[keep], pages.length[keep], pages.pgmap[keep]
        )
        contiguous, merge = contiguous[keep], merge[keep]
        pgmap_change, extent = pgmap_change[keep], extent[keep]
    # Bio boundaries forced before a page: another pgmap (v7.0+), or a new extent.
    forced = pgmap_change | extent if dp.bio_rule is BioRule.NEW_BIO else extent.copy()
    forced[0] = False
    merge &= ~forced
    starts = np.flatnonzero(~merge)
    bv_len = np.add.reduceat(pages.length, starts) if len(starts) else np.zeros(0, np.int64)
    bvecs = Bvecs(
        pages.phys[starts], pages.offset[starts], bv_len.astype(np.int64), pages.pgmap[starts]
    )
    bvec_forced = forced[starts]
    # Cut into bios: forced breaks, BIO_MAX_VECS bvecs, UINT_MAX bytes.
    bios: list[Bio] = []
    sector = ctx.scenario.file_offset // SECTOR
    n = len(bvecs)
    i = 0
    while i < n:
        j = i + 1
        size = int(bvecs.length[i])
        while j < n and not bvec_forced[j] and j - i < BIO_MAX_VECS:
            if size + int(bvecs.length[j]) > UINT_MAX:
                break
            size += int(bvecs.length[j])
            j += 1
        part = bvecs.slice(i, j)
        flags: frozenset[str] = frozenset()
        if dp.bio_rule in (BioRule.NEW_BIO, BioRule.SHORT_WARN) and bool((part.pgmap != RAM).any()):
            p2p_flag = {"REQ_NOMERGE"} | ({"REQ_P2PDMA"} if dp.req_p2pdma_flag else set())
            flags = frozenset(p2p_flag)
        bios.append(Bio(len(bios), part, sector, flags))
        sector += size // SECTOR
        i = j
    split_reasons = []
    if (pgmap_change & contiguous & ~forced).any() and dp.bio_rule is BioRule.NEW_BVEC:
        split_reasons.append(
            "page_is_mergeable(): zone_device_pages_have_same_pgmap() is false at a"
            " physically contiguous join: new bvec"
        )
    if dp.bio_rule is BioRule.NEW_BIO and pgmap_change.any():
        split_reasons.append(
            "iov_iter_extract_bvecs() stops at a page of another pgmap"
            " (zone_device_pages_have_same_pgmap()): the bio is submitted and a new one"
            " started; P2P bios get REQ_NOMERGE"
        )
    if dp.folio_bvecs and len(pages):
        split_reasons.append(
            "iov_iter_extract_bvecs(): one bvec per folio; P2P pages are order-0 folios, so"
            " contiguous pages stay separate bvecs (the DMA mapping merges them again)"
        )
    function = (
        "bio_iov_add_page() -> __bio_try_merge_page()"
        if dp.bio_rule in (BioRule.NEW_BVEC, BioRule.NONE)
        else "bio_add_folio() -> bio_add_page()"
        if dp.bio_rule is BioRule.SHORT_WARN
        else "bio_iov_iter_get_pages() -> iov_iter_extract_bvecs()"
    )
    events.append(
        Event(
            "bio",
            function,
            f"{len(pages)} pages -> {len(bvecs)} bvec(s) in {len(bios)} bio(s)"
            + (
                " (contiguous pages of one pgmap merge into multi-page bvecs)"
                if len(bvecs) < len(pages)
                else ""
            ),
            tuple(f"bio:{b.index}" for b in bios[:32]),
        )
    )
    for text in split_reasons:
        events.append(Event("bio", function, text))
    if short_at is not None:
        done = int(pages.length.sum())
        events.append(
            Event(
                "bio",
                "__bio_iov_iter_get_pages()",
                f"bio_add_folio() refused page {short_at} (another pgmap): WARN_ON_ONCE, -EINVAL"
                " without iov_iter_revert(); the bio keeps the first"
                f" {done} bytes and the rest of the I/O is never submitted (fixed in v7.0 by"
                " 12da89e8844a)",
                (f"page:{short_at}",),
                level="warn",
                confidence="inferred",
            )
        )
        extra = {**state.extra, "short": (done, None), "short_stage": "bio"}
        return state.next("bio", bios=tuple(bios), pages=pages, extra=extra), events
    if buffered:
        direct = int(pages.length.sum())
        how = (
            "blkdev_write_iter() -> direct_write_fallback(): written into the page cache and"
            " written back from there"
            if ctx.scenario.write
            else "blkdev_read_iter() -> filemap_read(): read into the page cache and copied"
        )
        events.append(
            Event(
                "bio",
                "__blkdev_direct_IO_simple()",
                f"the block device's direct I/O of {len(pages)} page(s) or fewer is one bio,"
                f" ended at the first page of another pgmap: {direct} bytes go direct; the"
                f" other {buffered} bytes: {how} (page-cache pages, not the buffer's)",
                (f"page:{len(pages)}",),
                level="warn",
            )
        )
        extra = {**state.extra, "buffered": buffered}
        return state.next("bio", bios=tuple(bios), pages=pages, extra=extra), events
    return state.next("bio", bios=tuple(bios)), events


def bvec_range(bv: Bvecs, start: int, stop: int) -> Bvecs:
    """Bytes ``start`` to ``stop`` of a vector list, the first and last vectors cut."""
    cum = np.concatenate([[0], np.cumsum(bv.length)])
    i = int(np.searchsorted(cum, start, side="right")) - 1
    j = int(np.searchsorted(cum, stop, side="left"))
    phys = bv.phys[i:j].copy()
    offset = bv.offset[i:j].copy()
    length = bv.length[i:j].copy()
    cut = start - int(cum[i])
    if cut:
        moved = int(offset[0]) + cut
        phys[0] += (moved // PAGE_SIZE) * PAGE_SIZE
        offset[0] = moved % PAGE_SIZE
        length[0] -= cut
    length[-1] -= int(cum[j]) - stop
    return Bvecs(phys, offset, length, bv.pgmap[i:j].copy())


def _segments(bv: Bvecs, lim: KernelLimits) -> tuple[I64, I64, np.ndarray]:
    """Per segment: its bvec, its length, and whether a virt-boundary gap precedes it."""
    single = (bv.offset + bv.length) <= PAGE_SIZE
    if single.all():
        seg_bvec = np.arange(len(bv), dtype=np.int64)
        seg_len = bv.length.astype(np.int64)
    else:
        bvec_parts: list[I64] = []
        len_parts: list[I64] = []
        for k in range(len(bv)):
            if single[k]:
                bvec_parts.append(np.array([k], dtype=np.int64))
                len_parts.append(bv.length[k : k + 1].astype(np.int64))
                continue
            ends = segment_ends(int(bv.phys[k]) + int(bv.offset[k]), int(bv.length[k]), lim)
            bvec_parts.append(np.full(len(ends), k, dtype=np.int64))
            len_parts.append(np.diff(ends, prepend=0))
        seg_bvec = np.concatenate(bvec_parts)
        seg_len = np.concatenate(len_parts)
    gap = np.zeros(len(seg_len), dtype=np.bool_)
    mask = lim.virt_boundary_mask
    if mask and len(bv) > 1:
        prev_end = bv.offset[:-1] + bv.length[:-1]
        bvec_gap = np.zeros(len(bv), dtype=np.bool_)
        bvec_gap[1:] = ((bv.offset[1:] & mask) != 0) | ((prev_end & mask) != 0)
        first_of_bvec = np.ones(len(seg_len), dtype=np.bool_)
        first_of_bvec[1:] = seg_bvec[1:] != seg_bvec[:-1]
        gap = first_of_bvec & bvec_gap[seg_bvec]
    return seg_bvec, seg_len, gap


def _split_points(bio: Bio, ctx: SimContext) -> list[int]:
    """Byte offsets where ``bio_split_rw()`` cuts the bio (the end included).

    Greedy, as the kernel counts: segments while fewer than ``max_segments``
    and within ``max_sectors`` (the last one cut to fit), stopping before a
    virt-boundary gap; each cut rounded down to the logical block size.
    """
    lim = ctx.limits
    lbs = lim.logical_block_size
    max_bytes = lim.max_sectors_kb * 1024 // lbs * lbs
    max_segs = lim.max_segments
    _seg_bvec, seg_len, gap = _segments(bio.bvecs, lim)
    cum = np.concatenate([[0], np.cumsum(seg_len)])
    gaps = np.flatnonzero(gap)
    total = int(cum[-1])
    points: list[int] = []
    pos = 0  # bytes of the bio already cut off
    while pos < total:
        s = int(np.searchsorted(cum, pos, side="right")) - 1  # segment holding pos
        # Limit by segment count and by the next gap after s.
        limit_seg = min(len(seg_len), s + max_segs)
        g = int(np.searchsorted(gaps, s, side="right"))
        if g < len(gaps):
            limit_seg = min(limit_seg, int(gaps[g]))
        stop = min(int(cum[limit_seg]), pos + max_bytes, total)
        if stop < total:
            aligned = pos + (stop - pos) // lbs * lbs
            if aligned == pos:
                raise ValueError("a segment smaller than one logical block cannot be split")
            stop = aligned
        points.append(stop)
        pos = stop
    return points


def _split_bio(bio: Bio, ctx: SimContext, first_index: int) -> list[Bio]:
    """``bio_split_to_limits()`` on one bio: the pieces, front ones with REQ_NOMERGE."""
    points = _split_points(bio, ctx)
    if len(points) <= 1:
        return [Bio(first_index, bio.bvecs, bio.sector, bio.flags, bio.split_from)]
    pieces: list[Bio] = []
    start = 0
    for n, stop in enumerate(points):
        last = n == len(points) - 1
        flags = bio.flags if last else bio.flags | {"REQ_NOMERGE"}
        part = bvec_range(bio.bvecs, start, stop)
        pieces.append(Bio(first_index + n, part, bio.sector + start // SECTOR, flags, bio.index))
        start = stop
    return pieces


def stage_split(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """``submit_bio()`` -> ``bio_split_to_limits()`` for every bio."""
    out: list[Bio] = []
    events: list[Event] = []
    splits = 0
    for bio in state.bios:
        pieces = _split_bio(bio, ctx, len(out))
        splits += len(pieces) - 1
        out.extend(pieces)
    lim = ctx.limits
    events.append(
        Event(
            "split",
            "bio_split_to_limits()",
            f"{len(state.bios)} bio(s) -> {len(out)} after splitting to max_sectors"
            f" {lim.max_sectors_kb} KiB, max_segments {lim.max_segments}, virt boundary"
            f" {lim.virt_boundary_mask:#x}"
            + (f" ({splits} split(s); split-off fronts get REQ_NOMERGE)" if splits else ""),
            tuple(f"bio:{b.index}" for b in out[:32]),
        )
    )
    return state.next("split", bios=tuple(out)), events


def phys_mergeable(
    ctx: SimContext, a_addr: int, a_len: int, a_pgmap: int, b_addr: int, b_len: int, b_pgmap: int
) -> bool:
    """``biovec_phys_mergeable()``: contiguous, within one segment boundary, same pgmap.

    The pgmap test only exists from the 2026 fix (mainline v7.1 [inferred]).
    """
    if a_addr + a_len != b_addr:
        return False
    if ctx.datapath.cross_bio_pgmap_check and not same_pgmap(a_pgmap, b_pgmap):
        return False
    mask = ctx.limits.seg_boundary_mask
    return (a_addr | mask) == ((b_addr + b_len - 1) | mask)


def stage_request(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """Plug merging: each bio back-merges into the previous request or starts one."""
    lim = ctx.limits
    max_bytes = lim.max_sectors_kb * 1024
    segs = [int(bvec_segments(b.bvecs, lim).sum()) for b in state.bios]
    requests: list[Request] = []
    events: list[Event] = []
    merged = 0
    for bio, nseg in zip(state.bios, segs, strict=True):
        prev = requests[-1] if requests else None
        if prev is not None and _can_merge(ctx, state, prev, bio, nseg, max_bytes):
            requests[-1] = Request(
                prev.index,
                (*prev.bios, bio.index),
                prev.sector,
                prev.size + bio.size,
                prev.nr_phys_segments + nseg,
                prev.flags | bio.flags,
            )
            merged += 1
            continue
        requests.append(Request(len(requests), (bio.index,), bio.sector, bio.size, nseg, bio.flags))
    text = f"{len(state.bios)} bio(s) -> {len(requests)} request(s)"
    if merged:
        text += f"; {merged} bio(s) back-merged into the request before them"
    events.append(
        Event(
            "request",
            "blk_mq_submit_bio() / blk_attempt_plug_merge()",
            text,
            tuple(f"rq:{r.index}" for r in requests[:32]),
        )
    )
    return state.next("request", requests=tuple(requests)), events


def _can_merge(
    ctx: SimContext, state: SimState, rq: Request, bio: Bio, nseg: int, max_bytes: int
) -> bool:
    if "REQ_NOMERGE" in rq.flags or "REQ_NOMERGE" in bio.flags:
        return False
    if rq.sector + rq.size // SECTOR != bio.sector:
        return False
    if rq.size + bio.size > max_bytes:
        return False
    if rq.nr_phys_segments + nseg > ctx.limits.max_segments:
        return False
    last = state.bios[rq.bios[-1]].bvecs
    a_addr = int(last.addr[-1])
    a_len = int(last.length[-1])
    b_addr = int(bio.bvecs.addr[0])
    mask = ctx.limits.virt_boundary_mask
    if mask:
        # bio_will_gap() (block/blk-merge.c, read in 6.12.117 and 7.2.13): no merge
        # when the first bvec of the request's first bio starts inside the virt
        # boundary ("bio_get_first_bvec(prev_rq->bio, &pb); if (pb.bv_offset &
        # queue_virt_boundary(q)) return true;"), whatever the join looks like.
        first = state.bios[rq.bios[0]].bvecs
        if int(first.offset[0]) & mask:
            return False
        # Then no gap when the two vectors are physically mergeable.
        contiguous = phys_mergeable(
            ctx,
            a_addr,
            a_len,
            int(last.pgmap[-1]),
            b_addr,
            int(bio.bvecs.length[0]),
            int(bio.bvecs.pgmap[0]),
        )
        gap = ((a_addr + a_len) & mask) or (int(bio.bvecs.offset[0]) & mask)
        if gap and not contiguous:
            return False
    return True
