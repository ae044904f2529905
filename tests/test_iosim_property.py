"""Properties of the simulated data path over random scenarios."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from iosim_fixtures import DmaMode, Iovec, QueueLimits, adjacent, p2p, ram, run, scenario, tv1, tv3

from p2pview.iosim.objects import RAM
from p2pview.iosim.scenario import NvmeSetup
from p2pview.kernel.verdict import MapType

KERNELS = ["6.2", "6.3", "6.12", "6.12.117", "6.14", "6.16", "6.17", "7.0", "7.1", "7.2", "next"]
TOPOLOGIES = {
    "tv1": (tv1, ["01:00.0"], ["01:00.0"]),
    "tv3": (tv3, ["01:00.0"], ["01:00.0", "02:00.0"]),
    "tv3-unlisted": (lambda: tv3("8086:1234"), ["01:00.0"], ["01:00.0", "02:00.0"]),
    "adjacent": (adjacent, ["03:00.0", "04:00.0"], ["03:00.0", "04:00.0"]),
}
SECTOR = 512


@st.composite
def scenarios(draw):
    name = draw(st.sampled_from(sorted(TOPOLOGIES)))
    make, providers, clients = TOPOLOGIES[name]
    buffer = []
    for _ in range(draw(st.integers(1, 3))):
        size = draw(st.integers(1, 64)) * 4096
        if draw(st.booleans()):
            buffer.append(p2p(draw(st.sampled_from(providers)), size))
        else:
            buffer.append(ram(size, layout=draw(st.sampled_from(["contiguous", "scattered"]))))
    total = sum(b.size for b in buffer)
    iovecs = []
    pos = draw(st.integers(0, 8)) * SECTOR
    while pos < total and len(iovecs) < 4:
        length = min(draw(st.integers(1, 96)) * SECTOR, total - pos)
        length -= length % SECTOR
        if length <= 0:
            break
        iovecs.append(Iovec(pos, length))
        pos += length + draw(st.sampled_from([0, 0, SECTOR, 4096]))
    if not iovecs:
        iovecs = [Iovec(0, SECTOR)]
    io_len = sum(v.length for v in iovecs)
    boundaries = tuple(
        sorted(
            {
                draw(st.integers(1, max(1, io_len // 4096))) * 4096
                for _ in range(draw(st.integers(0, 2)))
            }
        )
    )
    sc = scenario(
        tuple(buffer),
        draw(st.sampled_from(clients)),
        kernel=draw(st.sampled_from(KERNELS)),
        iovecs=tuple(iovecs),
        extent_boundaries=boundaries,
        dma=draw(st.sampled_from([DmaMode.DIRECT, DmaMode.IOMMU])),
        nvme=NvmeSetup(sgl=draw(st.booleans())),
        limits=QueueLimits(
            max_sectors_kb=draw(st.sampled_from([16, 64, 1280])),
            max_segments=draw(st.sampled_from([None, 4, 32])),
        ),
    )
    return make(), sc


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(scenarios())
def test_data_path_properties(case):
    topo, sc = case
    t = run(topo, sc)
    ctx = t.context
    by_pgmap = {p.pgmap: b for b, p in ctx.providers.items()}
    result = t.result
    steps = {s.stage: s.state for s in t.steps}
    # The errno follows the engine's verdict for every provider the I/O touched.
    verdicts = {b: ctx.verdict(b).map_type for b in ctx.providers}
    if "map_sg" in steps:
        sgls = steps["map_sg"].sgls
        requests = steps["map_sg"].requests
        # The scatterlist describes exactly the I/O's bytes.
        assert sum(int(sg.length.sum()) for sg in sgls) == sum(r.size for r in requests)
        short = steps["map_sg"].extra.get("short")
        expected = sc.io_length if short is None else short[0]
        assert sum(r.size for r in requests) == expected
        # No entry covers two pgmaps, except in the documented window (a merge by
        # biovec_phys_mergeable() before its pgmap check), where the bug must show.
        pages = steps["gup"].pages
        owner = dict(zip((pages.phys // 4096).tolist(), pages.pgmap.tolist(), strict=True))
        for sg in sgls:
            for k in range(len(sg)):
                start = int(sg.phys[k] + sg.offset[k])
                first, last = start // 4096, (start + int(sg.length[k]) - 1) // 4096
                kinds = {owner.get(pfn, int(sg.pgmap[k])) for pfn in range(first, last + 1)}
                if len(kinds) > 1:
                    assert k in sg.spans
                    assert not ctx.datapath.cross_bio_pgmap_check
                else:
                    assert k not in sg.spans
    touched = set()
    if "map_sg" in steps:
        touched = {
            by_pgmap[pg] for sg in steps["map_sg"].sgls for pg in sg.pgmap.tolist() if pg != RAM
        }
    if "dma_map" in steps:
        state = steps["dma_map"]
        for sg in state.sgls:
            n = sg.nents if sg.nents is not None else len(sg)
            for k in range(n):
                if int(sg.dma_flags[k]) & 1:
                    # a bus-address entry only ever comes from a BUS_ADDR pair
                    assert any(verdicts[b] is MapType.BUS_ADDR for b in touched)
        unsupported = [b for b in touched if verdicts[b] is MapType.NOT_SUPPORTED]
        if unsupported:
            assert result.errno == ctx.datapath.unsupported_errno and result.stage == "dma_map"
        elif sc.dma is not DmaMode.SWIOTLB:
            dp = ctx.datapath
            # v6.16 (the last release nvme maps through map_sg): dma-direct leaves BUS_ADDR
            # entries without sg_dma_len and THRU entries without an address, dma-iommu
            # gives BUS_ADDR entries the head entry's length; the PRP walk can trip over
            # them (EIO) or the device gets address 0, as modelled and flagged [inferred].
            v616_p2p = (
                dp.mapping.value == "dma_map_sgtable"
                and (dp.version.is_next or dp.version.series >= (6, 16))
                and bool(touched)
            )
            if v616_p2p:
                assert result.errno in (None, "EIO")
            else:
                assert result.errno is None
    if "completion" in steps and "dma_map" in steps and result.errno is None:
        released = steps["completion"].unmapped
        assert len(released) == len(set(released))  # each mapped entry once
        expected = {
            (sg.request, k)
            for sg in steps["dma_map"].sgls
            for k in range(sg.nents if sg.nents is not None else len(sg))
        }
        assert set(released) == expected
    if "munmap" in steps:
        # every chunk went back to its pool
        assert steps["munmap"].available == {b: p.available for b, p in ctx.providers.items()}
