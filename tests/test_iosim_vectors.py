"""The spec's data-path vectors TV12 (all variants), TV13 and TV14, stepped through iosim."""

from __future__ import annotations

import pytest
from iosim_fixtures import (
    ACS_ON,
    DmaMode,
    Iovec,
    QueueLimits,
    TargetKind,
    adjacent,
    arm64_offset,
    p2p,
    ram,
    run,
    scenario,
    tv1,
    tv3,
)

from p2pview.iosim.objects import SG_DMA_BUS_ADDRESS, SG_END
from p2pview.iosim.scenario import NvmeSetup

KiB = 1024


def step(trace, name):
    return next(s for s in trace.steps if s.stage == name)


def tv12(**kw):
    sc = scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", **kw)
    return run(tv1(), sc)


def test_tv12_mmap_takes_the_first_chunk():
    t = tv12()
    mm = step(t, "mmap").state
    (region,) = mm.regions
    assert region.phys[0] == 0xFB000000 and (region.phys >> 12).tolist() == list(
        range(0xFB000, 0xFB020)
    )
    avail = next(iter(mm.available.values()))
    assert avail == 2097152 - 131072 == 1966080
    assert next(iter(step(t, "munmap").state.available.values())) == 2097152


def test_traces_and_their_arrays_compare_by_identity():
    # Their generated __eq__ compared numpy arrays and raised ValueError ("truth value of an
    # array ... is ambiguous"); a face comparing two runs' traces (a reactive value) must not.
    a, b = tv12(), tv12()
    assert a == a and a != b
    assert step(a, "gup").state.pages != step(b, "gup").state.pages
    assert len({a, b, step(a, "mmap").state.regions[0]}) == 3


def test_tv12_gup_flags_and_pages():
    t = tv12()
    gup = step(t, "gup")
    assert len(gup.state.pages) == 32
    text = " ".join(e.text for e in gup.events)
    assert "FOLL_WRITE | FOLL_PCI_P2PDMA (0x100000)" in text  # v6.2's value
    assert "referenced (FOLL_GET)" in text  # v6.2 takes references; pins come in v6.3


def test_tv12_one_bvec_one_entry_bus_address():
    t = tv12()
    (bio,) = step(t, "bio").state.bios
    assert (
        len(bio.bvecs),
        int(bio.bvecs.phys[0]) >> 12,
        int(bio.bvecs.offset[0]),
        int(bio.bvecs.length[0]),
    ) == (
        1,
        0xFB000,
        0,
        131072,
    )
    (sg,) = step(t, "map_sg").state.sgls
    assert (len(sg), int(sg.phys[0]) >> 12, int(sg.offset[0]), int(sg.length[0])) == (
        1,
        0xFB000,
        0,
        0x20000,
    )
    assert int(sg.page_link[0]) & SG_END
    (sg,) = step(t, "dma_map").state.sgls
    assert (int(sg.dma_address[0]), int(sg.dma_length[0]), int(sg.dma_flags[0])) == (
        0xFB000000,
        0x20000,
        SG_DMA_BUS_ADDRESS,
    )
    assert sg.nents == 1
    assert t.context.verdict(t.context.client.bdf).distance == 0


def test_tv12_prp_list_from_the_small_pool():
    t = tv12(nvme=NvmeSetup(sgl=False))
    (cmd,) = step(t, "nvme").state.commands
    assert cmd.prp1 == 0xFB000000 and not cmd.use_sgl
    assert cmd.prp_list.tolist() == list(range(0xFB001000, 0xFB020000, 0x1000))
    assert len(cmd.prp_list) == 31 and cmd.prp_pool.startswith("prp_small_pool")


def test_tv12_sgl_single_descriptor():
    t = tv12()
    (cmd,) = step(t, "nvme").state.commands
    assert cmd.use_sgl and cmd.sgl == ((0xFB000000, 0x20000, "data block"),) and cmd.sgl_in_command


def test_tv12_completion_skips_the_bus_entry():
    t = tv12()
    text = " ".join(e.text for e in step(t, "completion").events)
    assert "1 bus-address entry unmarked and skipped (sg_is_dma_bus_address())" in text
    assert t.result.to_dict() == {"errno": None, "stage": None, "bytes": 131072}


def test_tv12_iommu_still_bus_address_no_iova():
    t = tv12(dma=DmaMode.IOMMU, kernel="6.12")
    (sg,) = step(t, "dma_map").state.sgls
    (mapping,) = step(t, "dma_map").state.mappings
    assert int(sg.dma_address[0]) == 0xFB000000 and mapping.iova_ranges == ()


@pytest.mark.parametrize("iommu", [False, True])
def test_tv12_peer_thru_host_bridge(iommu):
    sc = scenario(
        (p2p("01:00.0", 128 * KiB),),
        "02:00.0",
        kernel="6.12",
        dma=DmaMode.IOMMU if iommu else DmaMode.DIRECT,
    )
    t = run(tv3(), sc)
    v = t.context.verdict(t.context.providers and next(iter(t.context.providers)))
    assert (v.map_type.value, v.distance) == ("THRU_HOST_BRIDGE", 4)
    (sg,) = step(t, "dma_map").state.sgls
    assert int(sg.dma_flags[0]) == 0
    if iommu:
        assert int(sg.dma_address[0]) != 0xFB000000  # an IOVA
    else:
        assert int(sg.dma_address[0]) == 0xFB000000
    assert t.result.errno is None
    route = step(t, "device_dma").state.tlps[0]
    assert route.through_root_complex


@pytest.mark.parametrize(
    ("kernel", "errno"), [("6.2", "EREMOTEIO"), ("6.16", "EREMOTEIO"), ("6.17", "EINVAL")]
)
def test_tv12_unsupported(kernel, errno):
    sc = scenario((p2p("01:00.0", 128 * KiB),), "02:00.0", kernel=kernel)
    t = run(tv3("8086:1234"), sc)
    assert t.result.errno == errno and t.result.stage == "dma_map"
    lines = [line for e in t.events for line in e.dmesg]
    assert any("do not share an upstream bridge or whitelisted host bridge" in x for x in lines)
    assert [s.stage for s in t.steps][-2:] == ["completion", "munmap"]


def test_tv12_no_p2p_queue_fails_at_gup():
    sc = scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", target=TargetKind.OTHER)
    t = run(tv1(), sc)
    assert (t.result.errno, t.result.stage) == ("EREMOTEIO", "gup")
    assert not any(s.stage == "bio" for s in t.steps)


def test_tv13_translating_host_bridge():
    sc = scenario(
        (p2p("01:00.0", 16 * KiB, pool_offset=0x3000),),
        "01:00.0",
        kernel="6.12",
        iovecs=(Iovec(0, 4 * KiB),),
    )
    t = run(arm64_offset(), sc)
    (sg,) = step(t, "dma_map").state.sgls
    assert int(sg.phys[0]) == 0x4000103000
    assert int(sg.dma_address[0]) == 0x80103000


# -- TV14 --------------------------------------------------------------------------


def tv14a(kernel, dma=DmaMode.DIRECT):
    buffer = (p2p("01:00.0", 8 * KiB), ram(8 * KiB, pfns=(0x12345, 0x0ABCD)))
    sc = scenario(
        buffer,
        "01:00.0",
        kernel=kernel,
        iovecs=(Iovec(0, 8 * KiB), Iovec(8 * KiB, 8 * KiB)),
        dma=dma,
    )
    return run(tv1(), sc)


@pytest.mark.parametrize("kernel", ["6.2", "6.12", "6.16"])
def test_tv14a_one_bio_three_bvecs(kernel):
    t = tv14a(kernel)
    (bio,) = step(t, "bio").state.bios
    assert bio.bvecs.length.tolist() == [8192, 4096, 4096]
    assert [int(p) for p in bio.bvecs.phys[1:]] == [0x12345000, 0x0ABCD000]
    (sg,) = step(t, "dma_map").state.sgls
    assert sg.length.tolist() == [8192, 4096, 4096]
    assert sg.dma_flags.tolist() == [SG_DMA_BUS_ADDRESS, 0, 0]
    assert sg.dma_address.tolist()[1:] == [0x12345000, 0x0ABCD000]


def test_tv14a_iommu_bus_entry_alone_ram_entries_merged():
    t = tv14a("6.12", DmaMode.IOMMU)
    (sg,) = step(t, "dma_map").state.sgls
    assert sg.nents == 2
    assert int(sg.dma_address[0]) == 0xFB000000 and int(sg.dma_flags[0]) == SG_DMA_BUS_ADDRESS
    assert int(sg.dma_length[1]) == 8192 and int(sg.dma_flags[1]) == 0


def test_tv14a_v617_warns_and_returns_short():
    # v6.17-v6.19: bio_add_page() refuses the RAM page (38446014648c) and the
    # direct-I/O caller gives up with a WARN and no iov_iter_revert(): a short read
    # (spec section 7.0 item 6, from the commit text of 12da89e8844a).
    t = tv14a("6.17")
    (bio,) = step(t, "bio").state.bios
    assert bio.size == 8192
    assert any(e.level == "warn" and "WARN_ON_ONCE" in e.text for e in step(t, "bio").events)
    assert (t.result.outcome, t.result.bytes) == ("short", 8192)


@pytest.mark.parametrize("kernel", ["7.0", "7.2", "next"])
def test_tv14a_v70_separate_bios_and_requests(kernel):
    # Linux 7.2.13 lib/iov_iter.c, iov_iter_extract_bvecs(): "if (*nr_vecs > 0 &&
    # !zone_device_pages_have_same_pgmap(bv[*nr_vecs - 1].bv_page, pages[i])) break;"
    # ends the bio; block/bio.c bio_iov_iter_get_pages() marks a P2P bio REQ_NOMERGE.
    t = tv14a(kernel)
    bios = step(t, "bio").state.bios
    assert [b.size for b in bios] == [8192, 8192]
    assert "REQ_NOMERGE" in bios[0].flags and "REQ_NOMERGE" not in bios[1].flags
    assert len(step(t, "request").state.requests) == 2
    assert t.result.errno is None


def tv14b(kernel, boundary: bool):
    buffer = (
        p2p("03:00.0", 8 * KiB, pool_offset=2 * 1024 * 1024 - 8 * KiB),
        p2p("04:00.0", 8 * KiB),
    )
    sc = scenario(
        buffer, "03:00.0", kernel=kernel, extent_boundaries=(8 * KiB,) if boundary else ()
    )
    return run(adjacent(), sc)


@pytest.mark.parametrize("kernel", ["6.2", "6.12", "6.12.117"])
def test_tv14b_join_inside_a_bio_two_entries(kernel):
    t = tv14b(kernel, boundary=False)
    (bio,) = step(t, "bio").state.bios
    assert len(bio.bvecs) == 2
    (sg,) = step(t, "map_sg").state.sgls
    assert len(sg) == 2 and not sg.spans


@pytest.mark.parametrize("kernel", ["6.14", "6.16"])
def test_tv14b_v614_iterator_merges_inside_a_bio(kernel):
    # v6.14-v6.16: __blk_rq_map_sg() walks blk_map_iter_next() (b7175e24d6ac), which
    # absorbs the next bvec of the same bio when biovec_phys_mergeable() holds (Linux
    # 7.2.13 block/blk-mq-dma.c, blk_map_iter_next()), and biovec_phys_mergeable() has
    # no pgmap check before 13920e4b7b78: one entry covers both providers.
    t = tv14b(kernel, boundary=False)
    (bio,) = step(t, "bio").state.bios
    assert len(bio.bvecs) == 2
    (sg,) = step(t, "map_sg").state.sgls
    assert sg.length.tolist() == [16 * KiB] and sg.spans == (0,)
    assert any(e.level == "warn" and "covers two" in e.text for e in step(t, "map_sg").events)


@pytest.mark.parametrize("kernel", ["6.2", "6.12", "6.12.87", "6.16"])
def test_tv14b_join_on_a_bio_boundary_one_entry_the_bug(kernel):
    t = tv14b(kernel, boundary=True)
    assert len(step(t, "bio").state.bios) == 2
    assert len(step(t, "request").state.requests) == 1
    (sg,) = step(t, "map_sg").state.sgls
    assert sg.length.tolist() == [16 * KiB] and sg.spans == (0,)
    assert any(e.level == "warn" and "covers two" in e.text for e in step(t, "map_sg").events)


def test_tv14b_v612_stable_has_the_pgmap_check():
    # Linux 6.12.117 block/blk.h, biovec_phys_mergeable(): "if
    # (!zone_device_pages_have_same_pgmap(vec1->bv_page, vec2->bv_page)) return
    # false;" (Debian's changelog: "block: add pgmap check to biovec_phys_mergeable"
    # in 6.12.88). 6.12.0 still merges across the bio boundary.
    t = tv14b("6.12.117", boundary=True)
    (sg,) = step(t, "map_sg").state.sgls
    assert sg.length.tolist() == [8 * KiB, 8 * KiB] and not sg.spans


@pytest.mark.parametrize("kernel", ["7.0", "7.1", "next"])
def test_tv14b_v70_never_merges_p2p_bios(kernel):
    for boundary in (False, True):
        t = tv14b(kernel, boundary=boundary)
        assert len(step(t, "bio").state.bios) == 2
        assert len(step(t, "request").state.requests) == 2
        assert all(not sg.spans for sg in step(t, "map_sg").state.sgls)


def test_segment_limits_split_a_big_bio():
    sc = scenario(
        (p2p("01:00.0", 2 * 1024 * 1024),),
        "01:00.0",
        kernel="6.12",
        limits=QueueLimits(max_sectors_kb=512),
    )
    t = run(tv1(), sc)
    bios = step(t, "split").state.bios
    assert [b.size for b in bios] == [512 * KiB] * 4
    assert all("REQ_NOMERGE" in b.flags for b in bios[:3]) and "REQ_NOMERGE" not in bios[3].flags
    assert len(step(t, "request").state.requests) == 4


def test_swiotlb_thru_hangs():
    sc = scenario((p2p("01:00.0", 128 * KiB),), "02:00.0", kernel="6.12", dma=DmaMode.SWIOTLB)
    t = run(tv3(), sc)
    assert t.result.outcome == "hang" and t.result.errno is None and t.result.stage == "dma_map"


def test_pre_62_has_no_allocate_file():
    t = run(tv1(), scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", kernel="6.1"))
    assert (t.result.errno, t.result.stage) == ("ENOENT", "mmap")
    assert ACS_ON  # the fixture's Root Port keeps ACS on; it never matters for the own-CMB path


def test_stepper_goes_back_and_forth():
    from p2pview.iosim import Stepper

    stepper = Stepper(tv12())
    assert stepper.step.stage == "mmap" and not stepper.back()
    assert stepper.forward() and stepper.step.stage == "ptes"
    assert stepper.to("dma_map") and stepper.step.state.sgls[0].nents == 1
    assert stepper.back() and stepper.step.stage == "map_sg"
    assert stepper.step.state.sgls[0].dma_address.tolist() == [-1]  # not mapped yet here
    while stepper.forward():
        pass
    assert stepper.step.stage == "munmap"


def test_v5_series_marks_page_link():
    from iosim_fixtures import B

    from p2pview.iosim.objects import SG_PAGE_LINK_BUS_ADDRESS
    from p2pview.iosim.scenario import BufferKind, BufferSegment

    seg = BufferSegment(BufferKind.NVME_CMB, 64 * KiB, provider=B("01:00.0"))
    t = run(tv1(), scenario((seg,), "01:00.0", kernel="5.17-series"))
    (sg,) = step(t, "dma_map").state.sgls
    assert int(sg.page_link[0]) & SG_PAGE_LINK_BUS_ADDRESS and int(sg.dma_flags[0]) == 0
    assert "0x100000" in " ".join(e.text for e in step(t, "gup").events)
    mainline = run(tv1(), scenario((seg,), "01:00.0", kernel="5.17"))
    assert (mainline.result.errno, mainline.result.stage) == ("ENODEV", "mmap")
