"""nvme-pci's data pointer: PRPs or SGL descriptors (spec section 7.11, notes item 7).

``nvme_map_data()`` skips both single-segment fast paths for P2P pages;
``nvme_pci_use_sgls()`` picks SGLs on an I/O queue of an SGL-capable controller
when the average segment is at least ``sgl_threshold`` (32 KiB), averaging
over the request's physical segments (v6.2), the mapped entries (v6.3-v6.16)
or the physical segments again, one when the IOVA mapping coalesced (v6.17+,
``nvme_pci_avg_seg_size()``); without a virt boundary (7.2.13) a gap inside a
controller page forces SGLs. ``nvme_pci_setup_prps()``: PRP1 is the first
address; PRP2 the next page, or a PRP list from the 256-byte pool (up to 32
entries) or the page pool (511 data entries per 4 KiB page, the last slot
chaining to the next; the last page up to 512). An entry that does not end on
a controller page mid-list is "Invalid SGL for payload" and BLK_STS_IOERR.
"""

from __future__ import annotations

import numpy as np

from p2pview.iosim.context import SimContext
from p2pview.iosim.datapath import Mapping, SglAverage
from p2pview.iosim.objects import PAGE_SIZE, RAM, Event, NvmeCommand, Result, SgTable
from p2pview.iosim.scenario import TargetKind
from p2pview.iosim.state import SimState

CTRL_PAGE = 4096
#: Addresses the simulated dma_pools hand out (illustrative, host memory).
SMALL_POOL_BASE = 0x7FFF_0000
PAGE_POOL_BASE = 0x7FE0_0000


def _entries(sg: SgTable) -> tuple[np.ndarray, np.ndarray]:
    n = sg.nents if sg.nents is not None else len(sg)
    return sg.dma_address[:n], sg.dma_length[:n]


def _use_sgl(
    ctx: SimContext, sg: SgTable, nr_phys_segments: int, payload: int, coalesced: bool
) -> tuple[bool, str]:
    """``nvme_pci_use_sgls()``: SGL or PRPs for one request, and why."""
    setup = ctx.scenario.nvme
    if not setup.sgl:
        return False, "the controller has no SGL support"
    if ctx.limits.virt_boundary_mask == 0 and _page_gaps(sg):
        # 7.2.13: "A request containing page gaps within the controller's mask
        # can not use the PRP format" (req_phys_gap_mask()): SGL_FORCED.
        return True, "a gap inside a controller page: PRPs cannot describe it (SGL_FORCED)"
    if not setup.sgl_threshold:
        return False, "sgl_threshold is 0"
    rule = ctx.datapath.sgl_average
    if rule is SglAverage.MAPPED_ENTRIES:
        nseg = sg.nents or len(sg)
    elif rule is SglAverage.PHYS_OR_COALESCED and coalesced:
        nseg = 1
    else:
        nseg = nr_phys_segments
    avg = -(-payload // max(nseg, 1))
    use = avg >= setup.sgl_threshold
    return use, (
        f"average segment {avg} bytes ({payload} / {nseg} {rule.value})"
        f" {'>=' if use else '<'} sgl_threshold {setup.sgl_threshold}"
    )


def _simple_path(
    ctx: SimContext, nr_phys_segments: int, sg: SgTable, payload: int
) -> tuple[bool, str] | None:
    """The single-segment fast path of ``nvme_map_data()`` for memory pages, if it applies.

    6.12.117 (drivers/nvme/host/pci.c, nvme_map_data()): one physical segment
    of a non-P2P page that fits PRP1 and PRP2 (``offset + len <= 2 pages``) is
    ``nvme_setup_prp_simple()``; otherwise, on an SGL-capable controller with a
    non-zero sgl_threshold, ``nvme_setup_sgl_simple()``: one descriptor in the
    command, whatever the average. 7.2.13 (nvme_pci_setup_data_simple()): PRPs
    when they fit, else one inline SGL descriptor when the controller has SGLs,
    else the full path [read].
    """
    if nr_phys_segments != 1 or len(sg) != 1 or int(sg.pgmap[0]) != RAM:
        return None
    setup = ctx.scenario.nvme
    prp_possible = int(sg.offset[0]) % CTRL_PAGE + payload <= 2 * CTRL_PAGE
    if prp_possible:
        return False, "one segment: the single-segment fast path, PRP1 and PRP2"
    if ctx.datapath.mapping is Mapping.ITER:
        if setup.sgl:
            return True, "one segment: the single-segment fast path, one SGL descriptor"
        return None
    if setup.sgl and setup.sgl_threshold:
        return True, "one segment: nvme_setup_sgl_simple(), one SGL descriptor"
    return None


def _page_gaps(sg: SgTable) -> bool:
    """A segment that starts, or a non-last one that ends, inside a controller page."""
    n = sg.nents if sg.nents is not None else len(sg)
    if n < 2:
        return False
    start = sg.dma_address[:n] % CTRL_PAGE
    end = (sg.dma_address[:n] + sg.dma_length[:n]) % CTRL_PAGE
    return bool(start[1:].any() or end[:-1].any())


def prp_list_pages(entries: int) -> int:
    """4 KiB PRP list pages for ``entries`` data pointers.

    ``nvme_pci_setup_prps()`` (6.12.117) / ``nvme_pci_setup_data_prp()``
    (7.2.13): when a page's 512 slots are full and more entries follow, the
    last entry moves to a new page and its slot chains to it. Every page but
    the last holds 511 entries and a chain pointer, the last up to 512 [read].
    """
    if entries <= 512:
        return 1
    return 1 + -(-(entries - 512) // 511)


def _prps(
    addrs: np.ndarray, lens: np.ndarray, payload: int
) -> tuple[int, int | None, np.ndarray, str | None, str | None]:
    """PRP1, PRP2, the list entries, the pool, and an error if the list is invalid."""
    k = 0
    dma_addr, dma_len = int(addrs[0]), int(lens[0])
    prp1 = dma_addr
    offset = dma_addr & (CTRL_PAGE - 1)
    length = payload - (CTRL_PAGE - offset)
    if length <= 0:
        return prp1, None, np.zeros(0, dtype=np.int64), None, None
    dma_len -= CTRL_PAGE - offset
    if dma_len:
        dma_addr += CTRL_PAGE - offset
    else:
        k += 1
        dma_addr, dma_len = int(addrs[k]), int(lens[k])
    if length <= CTRL_PAGE:
        return prp1, dma_addr, np.zeros(0, dtype=np.int64), None, None
    entries: list[int] = []
    while True:
        entries.append(dma_addr)
        dma_len -= CTRL_PAGE
        dma_addr += CTRL_PAGE
        length -= CTRL_PAGE
        if length <= 0:
            break
        if dma_len > 0:
            continue
        if dma_len < 0 or k + 1 >= len(addrs):
            return prp1, None, np.asarray(entries, dtype=np.int64), None, "bad_sgl"
        k += 1
        dma_addr, dma_len = int(addrs[k]), int(lens[k])
    pool = (
        "prp_small_pool (256 bytes)" if len(entries) <= 256 // 8 else "prp_page_pool (4 KiB pages)"
    )
    return prp1, -1, np.asarray(entries, dtype=np.int64), pool, None


def stage_nvme(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """Build each request's PRPs or SGL from the mapped addresses."""
    events: list[Event] = []
    if ctx.scenario.target is not TargetKind.NVME:
        events.append(
            Event(
                "nvme",
                "queue_rq()",
                "not an nvme queue: the driver builds its own descriptors from the mapped entries",
            )
        )
        return state.next("nvme"), events
    dp = ctx.datapath
    commands: list[NvmeCommand] = []
    small_next, page_next = SMALL_POOL_BASE, PAGE_POOL_BASE
    failed: Result | None = None
    for rq, sg, mapping in zip(state.requests, state.sgls, state.mappings, strict=True):
        addrs, lens = _entries(sg)
        payload = rq.size
        if mapping.stale:
            events.append(
                Event(
                    "nvme",
                    "nvme_pci_setup_prps()",
                    f"request {rq.index}: entries"
                    f" {list(mapping.stale)} carry dma_address 0 (the v6.16 dma-direct"
                    " THRU bug): the controller is pointed at bus address 0",
                    (f"prp:{rq.index}",),
                    level="error",
                    confidence="inferred",
                )
            )
        simple = _simple_path(ctx, rq.nr_phys_segments, sg, payload)
        if simple is not None:
            use_sgl, why = simple
        else:
            use_sgl, why = _use_sgl(ctx, sg, rq.nr_phys_segments, payload, mapping.coalesced)
        if use_sgl:
            descs = tuple((int(a), int(n), "data block") for a, n in zip(addrs, lens, strict=True))
            # v6.17+ sizes the list by the request's physical segments and puts a
            # single one, or a coalesced IOVA range, in the command itself
            # (nvme_pci_setup_data_sgl(), 7.2.13) [read]; before, by the mapped entries.
            counted = rq.nr_phys_segments if dp.mapping is Mapping.ITER else len(descs)
            in_cmd = counted == 1 or mapping.coalesced or simple is not None
            commands.append(NvmeCommand(rq.index, True, sgl=descs, sgl_in_command=in_cmd))
            where = (
                "one data block descriptor in the command"
                if in_cmd
                else (
                    f"{len(descs)} data block descriptor(s) in a list from the"
                    f" {'small' if counted <= 16 else 'page'} pool, a Last Segment"
                    " descriptor in the command"
                )
            )
            if rq.index < 4:
                events.append(
                    Event(
                        "nvme",
                        "nvme_pci_setup_sgls()",
                        f"request {rq.index}: SGL ({why}): {where}",
                        (f"prp:{rq.index}",),
                    )
                )
            continue
        prp1, prp2, entries, pool, error = _prps(addrs, lens, payload)
        if error:
            events.append(
                Event(
                    "nvme",
                    "nvme_pci_setup_prps()",
                    f"request {rq.index}: an entry"
                    ' ends inside a controller page mid-list: WARN "Invalid SGL for'
                    ' payload", BLK_STS_IOERR',
                    (f"prp:{rq.index}",),
                    level="error",
                    dmesg=(f"WARNING: Invalid SGL for payload:{payload} nents:{sg.nents}",),
                )
            )
            commands.append(
                NvmeCommand(rq.index, False, prp1, None, entries, None, status="BLK_STS_IOERR")
            )
            failed = Result("EIO", "nvme", 0, "error")
            break
        if prp2 == -1:
            if pool and pool.startswith("prp_small"):
                prp2 = small_next
                small_next += 256
            else:
                prp2 = page_next
                page_next += PAGE_SIZE * prp_list_pages(len(entries))
        pages = prp_list_pages(len(entries)) if len(entries) else 0
        commands.append(
            NvmeCommand(rq.index, False, prp1, prp2, entries, pool, prp_list_pages=pages)
        )
        if rq.index < 4:
            if not len(entries):
                text = f"request {rq.index}: PRPs ({why}): PRP1 {prp1:#x}" + (
                    f", PRP2 {prp2:#x} (the second page)" if prp2 is not None else ""
                )
            else:
                chained = (
                    f" on {pages} list pages (511 entries and a pointer to the next page on"
                    " each but the last)"
                    if pages > 1
                    else ""
                )
                text = (
                    f"request {rq.index}: PRPs ({why}): PRP1 {prp1:#x}, PRP2 {prp2:#x} -> a PRP"
                    f" list of {len(entries)} entries ({int(entries[0]):#x} ..."
                    f" {int(entries[-1]):#x}) from {pool}{chained}"
                )
            events.append(Event("nvme", "nvme_pci_setup_prps()", text, (f"prp:{rq.index}",)))
    if len(state.requests) > 4:
        events.append(
            Event(
                "nvme",
                "nvme_queue_rq()",
                f"... and {len(state.requests) - 4} more requests built the same way",
            )
        )
    return state.next("nvme", commands=tuple(commands), result=failed or state.result), events
