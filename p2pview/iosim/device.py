"""The device's DMA, completion, unmapping and munmap (spec sections 7.9-7.12).

Where the TLPs go follows from the map type: BUS_ADDR traffic turns at the
common upstream device (a switch keeps it below the root complex); THRU
traffic climbs to the host bridge, is translated there when an IOMMU is on,
and comes back down to the provider's BAR; memory traffic ends at the host
bridge. Completion unmaps through ``dma_unmap_sgtable()``, which unmarks and
skips bus-address entries, then releases the pages; the P2P chunk returns to
the pool only when the last mapping of it goes away (munmap).
"""

from __future__ import annotations

import numpy as np

from p2pview.iosim.context import SimContext
from p2pview.iosim.datapath import Mapping
from p2pview.iosim.objects import RAM, Event, Result, TlpRoute, syscall_name
from p2pview.iosim.scenario import DmaMode, TargetKind
from p2pview.iosim.state import SimState
from p2pview.kernel.verdict import MapType
from p2pview.model import BDF, RootBus


def _route(
    ctx: SimContext, provider: BDF | None, map_type: MapType | None
) -> tuple[tuple[BDF | RootBus, ...], BDF | RootBus | None, bool]:
    """(hops from the client, where the TLPs turn, whether they enter the root complex)."""
    topo = ctx.topology
    client = ctx.client.bdf
    up = topo.upstream_chain(client)
    client_root = topo.root_bus_of(client)
    if provider is None:
        return (*up, client_root), client_root, True
    verdict = ctx.verdict(provider)
    if map_type is MapType.BUS_ADDR and verdict.common is not None:
        common = verdict.common
        climb = up[: up.index(common) + 1]
        down = topo.upstream_chain(provider)
        descend = tuple(reversed(down[: down.index(common)]))
        return (*climb, *descend), common, False
    provider_root = topo.root_bus_of(provider)
    roots: tuple[BDF | RootBus, ...] = (
        (client_root,) if provider_root == client_root else (client_root, provider_root)
    )
    return (*up, *roots, *reversed(topo.upstream_chain(provider))), client_root, True


def stage_device_dma(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """The controller moves the data: which address it uses and where the TLPs travel."""
    events: list[Event] = []
    routes: list[TlpRoute] = []
    by_pgmap = {p.pgmap: b for b, p in ctx.providers.items()}
    iommu = ctx.scenario.dma is DmaMode.IOMMU
    write = ctx.scenario.write
    seen: set[tuple[object, ...]] = set()
    cache: dict[
        tuple[object, ...], tuple[tuple[BDF | RootBus, ...], BDF | RootBus | None, bool]
    ] = {}
    for sg, mapping in zip(state.sgls, state.mappings, strict=True):
        # One route per pgmap in the request: every entry of a pgmap travels the same way.
        # (Not np.unique: it imports numpy.ma, 10-20 ms of a trace's start-up.)
        for pg in sorted(set(sg.pgmap.tolist())):
            rows = np.flatnonzero(sg.pgmap == pg)
            k = int(rows[0])
            provider = by_pgmap.get(pg) if pg != RAM else None
            map_type = mapping.map_types[k] if k < len(mapping.map_types) else None
            key = (provider, map_type)
            if key not in cache:
                cache[key] = _route(ctx, provider, map_type)
            hops, turn, through_rc = cache[key]
            address = int(sg.dma_address[k])
            target = "host memory" if provider is None else f"{provider}'s BAR"
            total = int(sg.length[rows].sum())
            routes.append(
                TlpRoute(
                    sg.request,
                    address,
                    total,
                    target,
                    hops,
                    turn,
                    through_rc,
                    iommu and map_type is not MapType.BUS_ADDR,
                )
            )
            if key in seen:
                continue
            seen.add(key)
            path = " -> ".join(str(h) for h in hops)
            verb = "reads from" if write else "writes to"
            if provider is None:
                text = f"the controller {verb} host memory: TLPs {path}"
                if iommu:
                    text += ", translated by the IOMMU at the root complex"
            elif map_type is MapType.BUS_ADDR:
                if provider == ctx.client.bdf:
                    text = f"the controller {verb} its own CMB: the TLPs never leave the device"
                else:
                    where = "inside the switch" if not through_rc else "at the root port"
                    text = (
                        f"the controller {verb} {provider}'s BAR at bus address {address:#x}:"
                        f" TLPs {path}; they turn at {turn} ({where}) and never reach the"
                        " root complex or the IOMMU"
                    )
            else:
                text = (
                    f"the controller {verb} {provider}'s BAR: TLPs {path}, through the root"
                    " complex" + (", where the IOMMU translates the IOVA" if iommu else "")
                )
                if mapping.stale:
                    text += "; with the v6.16 bug the address is 0: the data goes astray"
            events.append(Event("device_dma", "(the device)", text, (f"tlp:{sg.request}",)))
    result = state.result
    if any(m.stale for m in state.mappings) and result is None:
        result = Result(None, "device_dma", 0, "wrong address")
    return state.next("device_dma", tlps=tuple(routes), result=result), events


def stage_completion(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """nvme_unmap_data(), bio end, page release; the syscall's return."""
    events: list[Event] = []
    dp = ctx.datapath
    mode = ctx.scenario.dma
    bus = 0
    mapped = 0
    released: list[tuple[int, int]] = []
    for sg in state.sgls:
        n = sg.nents if sg.nents is not None else len(sg)
        marked = (sg.dma_flags[:n] != 0) | ((sg.page_link[:n] & 0x04) != 0)
        bus += int(marked.sum())
        mapped += int(n - marked.sum())
        released.extend((sg.request, k) for k in range(n))
    if dp.mapping is Mapping.ITER:
        text = "blk_rq_dma_unmap(): bus-address (IOD_DATA_P2P) requests need no unmapping"
        if mapped:
            text += f"; {mapped} memory/IOVA segment(s) unmapped"
    else:
        helper = dp.is_bus_helper
        text = (
            f"dma_unmap_sgtable(): {bus} bus-address entr{'y' if bus == 1 else 'ies'} unmarked and"
            f" skipped ({helper}), {mapped} unmapped"
            + (" (one IOVA range per request)" if mode is DmaMode.IOMMU and mapped else "")
        )
    if ctx.scenario.target is TargetKind.NVME:
        events.append(
            Event(
                "completion",
                "nvme_unmap_data()",
                text,
                tuple(f"sg:{s.request}:{k}" for s in state.sgls[:2] for k in range(min(len(s), 8))),
            )
        )
    pages = len(state.pages) if state.pages is not None else 0
    release = "unpin_user_pages()" if dp.pins else "put_page()"
    events.append(
        Event("completion", f"bio_release_pages() -> {release}", f"{pages} page(s) released")
    )
    short = state.extra.get("short")
    if state.result is not None:
        result = state.result
    elif short is not None:
        result = Result(None, state.extra.get("short_stage", "gup"), int(short[0]), "short")
        events.append(
            Event(
                "completion",
                "iomap_dio_complete()",
                f"returns {short[0]}: a short"
                f" {'write' if ctx.scenario.write else 'read'}"
                + (f"; the next call fails with {short[1]}" if short[1] else ""),
                level="warn",
                confidence="recalled",
            )
        )
    else:
        # The block device's buffered fallback adds the bytes it moved (stage_bio).
        total = sum(r.size for r in state.requests) + int(state.extra.get("buffered", 0))
        result = Result(None, None, total, "ok")
        events.append(
            Event(
                "completion",
                "blkdev_direct_IO()" if ctx.scenario.blockdev else "iomap_dio_complete()",
                f"{syscall_name(ctx.scenario.write, len(ctx.scenario.io_vectors))} returns {total}",
            )
        )
    return state.next("completion", result=result, unmapped=tuple(released)), events


def stage_munmap(ctx: SimContext, state: SimState) -> tuple[SimState, list[Event]]:
    """The application unmaps the buffer: P2P pages go back to the pool."""
    events: list[Event] = []
    available = dict(state.available)
    for region in state.regions:
        if region.provider is None or region.chunk_offset is None:
            continue
        available[region.provider] += region.size
        events.append(
            Event(
                "munmap",
                "p2pdma_page_free() -> gen_pool_free_owner()",
                f"the last reference to the {region.size:#x}-byte chunk is gone: it returns to"
                f" {region.provider}'s pool; p2pmem/available"
                f" {available[region.provider] - region.size} -> {available[region.provider]}",
                (f"pool:{region.provider}",),
            )
        )
    if not events:
        events.append(Event("munmap", "munmap()", "nothing to give back to a P2P pool"))
    return state.next("munmap", available=available), events
