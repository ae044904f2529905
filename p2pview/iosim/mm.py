"""mmap of the buffer, its page-table entries, and GUP (spec sections 5, 7.1-7.3).

``p2pmem_alloc_mmap()`` (drivers/pci/p2pdma.c, v6.2) allocates one contiguous
chunk from the provider's gen_pool (first fit, PAGE_SIZE granule) and inserts
its pages with ``vm_insert_page()``; the v5 series' ``/dev/nvmeX`` mmap
allocates at the first fault. GUP refuses P2P pages without FOLL_PCI_P2PDMA
(``try_grab_page()`` -EREMOTEIO) and pages without a struct page (-EFAULT).
"""

from __future__ import annotations

import numpy as np

from p2pview.iosim.context import SimContext
from p2pview.iosim.objects import PAGE_SIZE, RAM, Event, PageList, Region, Result
from p2pview.iosim.scenario import BufferKind, BufferSegment
from p2pview.iosim.state import SimState

#: Where the simulated process maps its buffer (one mmap after another).
USER_BASE = 0x7F0000000000
#: The command the allocate file's ratelimited messages name.
COMM = "app"


def _fail(
    state: SimState, stage: str, errno: str, events: list[Event]
) -> tuple[SimState, list[Event]]:
    return state.next(stage, result=Result(errno, stage, 0, "error")), events


def _ram_frames(seg: BufferSegment, index: int) -> np.ndarray:
    pages = (seg.size + PAGE_SIZE - 1) // PAGE_SIZE
    if seg.pfns:
        return np.asarray(seg.pfns[:pages], dtype=np.int64)
    if seg.layout == "contiguous":
        return seg.base_pfn + np.arange(pages, dtype=np.int64)
    # Scattered: distinct frames spread over 16 GiB, the same for the same scenario.
    rng = np.random.default_rng(0x5EED + index)
    span = max(pages * 16, 1 << 22)
    picked = rng.choice(span, size=pages, replace=False).astype(np.int64)
    return seg.base_pfn + picked


def stage_mmap(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """mmap() each buffer segment; P2P segments take a chunk from the provider's pool."""
    events: list[Event] = []
    dp = ctx.datapath
    regions: list[Region] = []
    available = dict(state.available)
    used: dict[object, int] = {}
    va = USER_BASE
    for i, seg in enumerate(ctx.scenario.buffer):
        size = (seg.size + PAGE_SIZE - 1) // PAGE_SIZE * PAGE_SIZE
        pages = size // PAGE_SIZE
        if seg.kind is BufferKind.RAM:
            pfns = _ram_frames(seg, i)
            regions.append(Region(i, seg.kind, va, size, RAM, None, pfns << 12))
            events.append(
                Event(
                    "mmap",
                    "mmap(MAP_ANONYMOUS)",
                    f"buffer[{i}]: {size:#x} bytes of anonymous memory at {va:#x}"
                    f" ({seg.layout} page frames)",
                    (f"region:{i}",),
                )
            )
            va += size
            continue
        assert seg.provider is not None
        prov = ctx.providers[seg.provider]
        if seg.kind is BufferKind.BAR_RESOURCE:
            start = prov.region_start + (seg.pool_offset or 0)
            phys = start + np.arange(pages, dtype=np.int64) * PAGE_SIZE
            regions.append(Region(i, seg.kind, va, size, prov.pgmap, seg.provider, phys, False))
            events.append(
                Event(
                    "mmap",
                    "pci_mmap_resource_range()",
                    f"buffer[{i}]: /sys/bus/pci/devices/{seg.provider}/resource{prov.bar} mapped"
                    f" at {va:#x}: VM_IO | VM_PFNMAP, no struct pages behind it",
                    (f"region:{i}",),
                    confidence="recalled",
                )
            )
            va += size
            continue
        if seg.kind is BufferKind.P2PMEM and not dp.allocate_file:
            events.append(
                Event(
                    "mmap",
                    "open()",
                    f"/sys/bus/pci/devices/{seg.provider}/p2pmem/allocate does not exist before"
                    f" v6.2 (7e9c7ef83d78); kernel {dp.title}"
                    + (" has /dev/nvmeX mmap instead (kind = nvme_cmb)" if dp.series else ""),
                    level="error",
                )
            )
            return _fail(state, "mmap", "ENOENT", events)
        if seg.kind is BufferKind.NVME_CMB:
            dev = ctx.topology[seg.provider]
            if not dp.series:
                events.append(
                    Event(
                        "mmap",
                        "mmap(/dev/nvmeX)",
                        "the nvme character device has no mmap in mainline kernels; the v5"
                        " series (not merged) added nvme_dev_mmap() (use --kernel 5.17-series)",
                        level="error",
                    )
                )
                return _fail(state, "mmap", "ENODEV", events)
            if dev.p2pmem is None:
                events.append(
                    Event(
                        "mmap",
                        "nvme_dev_mmap()",
                        f"{seg.provider} has no CMB: -ENODEV",
                        level="error",
                        confidence="read",
                    )
                )
                return _fail(state, "mmap", "ENODEV", events)
        if not seg.shared:
            events.append(
                Event(
                    "mmap",
                    "p2pmem_alloc_mmap()",
                    "MAP_PRIVATE: the allocate file only supports shared mappings",
                    level="error",
                    dmesg=(f"pci {seg.provider}: {COMM}: fail, attempted private mapping",),
                )
            )
            return _fail(state, "mmap", "EINVAL", events)
        key = seg.provider
        in_use = prov.pool_size - available[key]
        offset = seg.pool_offset if seg.pool_offset is not None else in_use + used.get(key, 0)
        if offset + size > prov.pool_size or size > available[key]:
            events.append(
                Event(
                    "mmap",
                    "gen_pool_alloc_owner()",
                    f"no free chunk of {size:#x} bytes in {seg.provider}'s pool"
                    f" ({available[key]:#x} of {prov.pool_size:#x} available)",
                    (f"pool:{key}",),
                    level="error",
                )
            )
            return _fail(state, "mmap", "ENOMEM", events)
        used[key] = used.get(key, 0) + size
        available[key] -= size
        cpu = prov.region_start + offset
        phys = cpu + np.arange(pages, dtype=np.int64) * PAGE_SIZE
        regions.append(Region(i, seg.kind, va, size, prov.pgmap, seg.provider, phys, True, offset))
        how = (
            "gen_pool_alloc_owner(), first fit"
            if seg.kind is BufferKind.P2PMEM
            else "nvme_dev_mmap(): the chunk is allocated at the first fault"
        )
        notes = "; ".join(prov.notes)
        events.append(
            Event(
                "mmap",
                "p2pmem_alloc_mmap()" if seg.kind is BufferKind.P2PMEM else "pci_mmap_p2pmem()",
                f"buffer[{i}]: {how}: {size:#x} bytes at pool offset {offset:#x}, CPU"
                f" {cpu:#x}, bus {prov.bus_address(cpu):#x};"
                f" p2pmem/available {available[key] + size} -> {available[key]}"
                + (f" ({notes})" if notes else ""),
                (f"pool:{key}", f"region:{i}"),
            )
        )
        va += size
    return state.next("mmap", regions=tuple(regions), available=available), events


def stage_ptes(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """The page-table entries each mapping has (or gets at the first touch)."""
    events: list[Event] = []
    for region in state.regions:
        first, last = int(region.phys[0]) >> 12, int(region.phys[-1]) >> 12
        frames = (
            f"pfn {first:#x}-{last:#x}"
            if region.kind is not BufferKind.RAM
            else (f"{len(region.phys)} frames")
        )
        if region.kind is BufferKind.P2PMEM:
            text = (
                f"vm_insert_page() x {len(region.phys)}: ordinary PTEs (not pte_devmap) for"
                f" {frames}: ZONE_DEVICE pages of the MEMORY_DEVICE_PCI_P2PDMA pgmap of"
                f" {region.provider}"
            )
            function = "vm_insert_page()"
        elif region.kind is BufferKind.NVME_CMB:
            text = (
                f"vmf_insert_mixed() at the first fault: devmap PTEs (VM_MIXEDMAP) for {frames}"
                f" in {region.provider}'s pgmap"
            )
            function = "vmf_insert_mixed()"
        elif region.kind is BufferKind.BAR_RESOURCE:
            text = f"remap_pfn_range(): raw PFN PTEs for {frames}, no struct page behind them"
            function = "remap_pfn_range()"
        else:
            text = f"anonymous pages, faulted in on first touch ({frames})"
            function = "handle_mm_fault()"
        events.append(
            Event(
                "ptes",
                function,
                f"{region.va:#x}-{region.va + region.size - 1:#x}: {text}",
                (f"region:{region.index}",),
            )
        )
    return state.next("ptes"), events


def _pages_of_io(ctx: SimContext, state: SimState) -> tuple[PageList, np.ndarray]:
    """The I/O's bytes cut at page boundaries, with the region each piece is in."""
    phys_parts, off_parts, len_parts, pgmap_parts, region_parts = [], [], [], [], []
    starts = np.cumsum([0] + [r.size for r in state.regions])
    for vec in ctx.scenario.io_vectors:
        pos, end = vec.offset, vec.offset + vec.length
        while pos < end:
            r = int(np.searchsorted(starts, pos, side="right")) - 1
            region = state.regions[r]
            local_end = min(end, int(starts[r + 1]))
            first = (pos - int(starts[r])) // PAGE_SIZE
            last = (local_end - 1 - int(starts[r])) // PAGE_SIZE
            idx = np.arange(first, last + 1)
            page_start = int(starts[r]) + idx * PAGE_SIZE
            lo = np.maximum(page_start, pos)
            hi = np.minimum(page_start + PAGE_SIZE, local_end)
            phys_parts.append(region.phys[idx])
            off_parts.append((lo - page_start).astype(np.int64))
            len_parts.append((hi - lo).astype(np.int64))
            pgmap_parts.append(np.full(len(idx), region.pgmap, dtype=np.int32))
            region_parts.append(np.full(len(idx), r, dtype=np.int32))
            pos = local_end
    pages = PageList(
        np.concatenate(phys_parts),
        np.concatenate(off_parts),
        np.concatenate(len_parts),
        np.concatenate(pgmap_parts),
    )
    return pages, np.concatenate(region_parts)


def stage_gup(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """bio_iov_iter_get_pages(): the O_DIRECT checks, then GUP with or without FOLL_PCI_P2PDMA."""
    events: list[Event] = []
    sc = ctx.scenario
    dp = ctx.datapath
    lbs = sc.limits.logical_block_size
    # O_DIRECT alignment: position and lengths to the logical block size; memory
    # to the queue's dma_alignment (nvme: 3, i.e. 4 bytes, v6.0+) [recalled].
    mem_align = 4 if dp.dio_mem_align_4 else lbs
    if sc.file_offset < 0:
        # ksys_pread64()/ksys_pwrite64() (fs/read_write.c) refuse it before anything else.
        call = "ksys_pwrite64()" if sc.write else "ksys_pread64()"
        events.append(
            Event(
                "gup",
                call,
                f"negative file offset {sc.file_offset}: -EINVAL",
                level="error",
                confidence="read",
            )
        )
        return _fail(state, "gup", "EINVAL", events)
    bad_len = sc.file_offset % lbs or any(v.length % lbs for v in sc.io_vectors)
    bad_mem = any(v.offset % mem_align for v in sc.io_vectors)
    if bad_len or bad_mem:
        what = "position or length" if bad_len else "buffer address"
        events.append(
            Event(
                "gup",
                "blkdev_direct_IO()",
                f"O_DIRECT {what} not aligned ({lbs}-byte"
                f" logical blocks, {mem_align}-byte memory alignment): -EINVAL",
                level="error",
                confidence="recalled",
            )
        )
        return _fail(state, "gup", "EINVAL", events)
    pages, region_of = _pages_of_io(ctx, state)
    flags = [] if sc.write else ["FOLL_WRITE"]
    p2p_flag = ctx.queue_p2pdma and dp.foll_pci_p2pdma is not None
    if p2p_flag:
        flags.append(dp.foll_name)
    if dp.foll_pci_p2pdma is not None:
        why = (
            "blk_queue_pci_p2pdma() is true: the caller asks for P2P pages"
            if ctx.queue_p2pdma
            else "blk_queue_pci_p2pdma() is false for this queue: P2P pages are refused"
        )
        events.append(Event("gup", "__bio_iov_iter_get_pages()", why))
    if dp.pins:
        call = (
            "iov_iter_extract_pages("
            + ("ITER_ALLOW_P2PDMA" if p2p_flag else "0")
            + ") -> pin_user_pages_fast()"
        )
    else:
        call = "iov_iter_get_pages() -> get_user_pages_fast()"
    # The first page GUP refuses, if any.
    has_struct = np.array([r.struct_pages for r in state.regions], dtype=np.bool_)[region_of]
    no_struct = np.flatnonzero(~has_struct)
    refused = (pages.pgmap != RAM) & has_struct & (not p2p_flag)
    p2p = np.flatnonzero(refused)
    stops = []
    if len(no_struct):
        stops.append(
            (
                int(no_struct[0]),
                "EFAULT",
                "follow_page_pte(): a VM_PFNMAP page has no struct page: -EFAULT",
            )
        )
    if len(p2p):
        stops.append(
            (
                int(p2p[0]),
                "EREMOTEIO",
                f"try_grab_page(): a P2PDMA page without {dp.foll_name}: -EREMOTEIO"
                + (
                    " (gup-fast stopped at it: try_grab_folio() returned NULL)"
                    if dp.foll_pci_p2pdma is not None
                    else ""
                ),
            )
        )
    if stops:
        index, errno, text = min(stops)
        done = int(pages.length[:index].sum()) // lbs * lbs
        events.append(Event("gup", call, text, (f"page:{index}",), level="error"))
        if done == 0:
            return _fail(state, "gup", errno, events)
        events.append(
            Event(
                "gup",
                "iomap_dio_rw()",
                f"the {done} bytes before that page were already"
                " submitted: the call returns a short count",
                confidence="recalled",
            )
        )
        keep = np.cumsum(pages.length) <= done
        pages = PageList(
            pages.phys[keep], pages.offset[keep], pages.length[keep], pages.pgmap[keep]
        )
        state = state.next("gup", extra={**state.extra, "short": (done, errno)})
    kind = "pinned (FOLL_PIN)" if dp.pins else "referenced (FOLL_GET)"
    events.append(
        Event(
            "gup",
            call,
            f"{call.split(' -> ')[-1]} with {' | '.join(flags) or '0'}: {len(pages)} pages {kind}",
            tuple(f"page:{k}" for k in range(min(len(pages), 64))),
        )
    )
    return state.next("gup", pages=pages), events
