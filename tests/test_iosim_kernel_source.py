"""The data path's numbers as the kernel source computes them, one test per divergence.

Each test names the release, file and function it was checked against, in
the Debian trees of Linux 6.1.176, 6.12.117 and 7.2.13 (the spec's section 7.0
lists the corrections; its release numbers for commits between the trees are
the spec's).
"""

from __future__ import annotations

import pytest
from iosim_fixtures import (
    ACS_ON,
    DmaMode,
    Iovec,
    QueueLimits,
    host,
    nvme,
    p2p,
    ram,
    root_port,
    run,
    scenario,
    tv1,
    tv3,
)

from p2pview.iosim.datapath import DataPathKernel, datapath_for
from p2pview.iosim.dmachoice import DmaChosenBy
from p2pview.iosim.limits import LimitBasis, kernel_limits
from p2pview.iosim.nvme import prp_list_pages
from p2pview.iosim.scenario import NvmeSetup, read_scenario
from p2pview.model import IommuMode, Platform, Topology
from p2pview.sources.checks import SourceError

KiB = 1024
MiB = 1 << 20


def step(trace, name):
    return next(s for s in trace.steps if s.stage == name)


def big_cmb(iommu: IommuMode = IommuMode.OFF) -> Topology:
    """One NVMe controller with an 8 MiB CMB at 0xf8000000 below an ACS Root Port."""
    return Topology(
        [host(), root_port("00:01.0", ACS_ON), nvme("01:00.0", "00:01.0", 0xF8000000, 8 * MiB)],
        platform=Platform(iommu=iommu),
    )


def limits(kernel, **kw):
    sc = scenario((p2p("01:00.0", 4 * KiB),), "01:00.0", kernel=kernel, **kw)
    return kernel_limits(datapath_for(sc.kernel), sc, sc.dma)


# -- max_hw_sectors and max_segments under a translating IOMMU ----------------------


def test_iommu_caps_max_hw_sectors_from_v64():
    # Linux 6.12.117 drivers/nvme/host/pci.c, nvme_pci_alloc_dev(): "max_hw_sectors =
    # min_t(u32, NVME_MAX_KB_SZ << 1, dma_opt_mapping_size(&pdev->dev) >> 9)";
    # drivers/iommu/iova.c iova_rcache_range() = PAGE_SIZE << 5 = 128 KiB;
    # drivers/nvme/host/core.c nvme_set_ctrl_limits(): max_segments =
    # min_not_zero(max_hw_sectors / 8 + 1, NVME_MAX_SEGS) = 33.
    lim = limits("6.12", dma=DmaMode.IOMMU)
    assert (lim.max_hw_sectors_kb, lim.max_sectors_kb, lim.max_segments) == (128, 128, 33)
    assert lim.dma_opt_mapping_size == 128 * KiB
    # Linux 6.1.176 has dma_max_mapping_size() there: SIZE_MAX under the IOMMU.
    old = limits("6.1", dma=DmaMode.IOMMU)
    assert (old.max_hw_sectors_kb, old.max_sectors_kb, old.max_segments) == (4096, 1280, 127)


def test_one_mib_read_through_the_iommu_is_eight_requests_on_612():
    t = run(big_cmb(IommuMode.TRANSLATED), scenario((p2p("01:00.0", MiB),), "01:00.0", "6.12"))
    assert t.context.scenario.dma is DmaMode.IOMMU  # the topology's IOMMU decided
    requests = step(t, "request").state.requests
    assert [r.size for r in requests] == [128 * KiB] * 8
    assert t.result.bytes == MiB


def test_dma_direct_and_swiotlb_limits():
    # Direct: NVME_MAX_KB_SZ 8192 (6.12.117) and NVME_MAX_SEGS 128; 7.2.13:
    # NVME_MAX_BYTES SZ_8M and NVME_MAX_SEGS = 4096 / 16 = 256.
    assert (limits("6.12").max_hw_sectors_kb, limits("6.12").max_segments) == (8192, 128)
    assert (limits("7.2").max_hw_sectors_kb, limits("7.2").max_segments) == (8192, 256)
    # swiotlb=force: kernel/dma/swiotlb.c swiotlb_max_mapping_size() = 2048 * 128 -
    # roundup(4095, 2048) = 252 KiB, reached through dma_direct_max_mapping_size().
    lim = limits("6.12", dma=DmaMode.SWIOTLB)
    assert (lim.max_hw_sectors_kb, lim.max_segments) == (252, 64)


def test_mdts_lowers_max_hw_sectors():
    # drivers/nvme/host/core.c nvme_init_identify(): max_hw_sectors =
    # min_not_zero(ctrl->max_hw_sectors, nvme_mps_to_sectors(ctrl, id->mdts)).
    lim = limits("6.12", nvme=NvmeSetup(mdts=7))
    assert (lim.max_hw_sectors_kb, lim.max_sectors_kb, lim.max_segments) == (512, 512, 128)
    assert limits("6.12", nvme=NvmeSetup(mdts=5)).max_segments == 33


def test_each_limit_says_where_it_comes_from():
    # Through the IOMMU with MDTS 3: nvme_pci_alloc_dev() caps max_hw_sectors at 128
    # KiB, then nvme_init_identify() at MDTS; the first cap stays a note (the CLI
    # prints both), the second is the value's source.
    lim = limits("6.12", dma=DmaMode.IOMMU, nvme=NvmeSetup(mdts=3))
    hw = lim.source("max_hw_sectors_kb")
    assert (lim.max_hw_sectors_kb, hw.basis) == (32, LimitBasis.LIMITED)
    assert hw.why == "the controller's MDTS 3 (2^3 pages of 4 KiB; nvme_init_identify())"
    assert hw.note == lim.notes[-1]
    assert lim.other_notes == (
        "max_hw_sectors_kb 128: nvme_pci_alloc_dev() caps it at dma_opt_mapping_size() ="
        " 128 KiB (the IOMMU's IOVA rcache limit)",
    )
    segments = lim.source("max_segments")
    assert segments.basis is LimitBasis.DEFAULT
    assert segments.why.startswith("the lower of max_hw_sectors / 8 + 1 = 9 and NVME_MAX_SEGS")
    assert "iova_rcache_range()" in lim.source("dma_opt_mapping_size").why
    # No MDTS, no SGLs, no IOMMU on 7.2: the kernel's defaults, naming the function and
    # the release, but for max_sectors_kb under BLK_DEF_MAX_SECTORS_CAP (4 MiB).
    plain = limits("7.2", nvme=NvmeSetup(mdts=0, sgl=False))
    bases = [LimitBasis.DEFAULT] * 6
    bases[2] = LimitBasis.LIMITED
    assert [s.basis for s in plain.sources] == bases
    assert plain.notes == (plain.source("max_sectors_kb").note,) and not plain.other_notes
    assert plain.source("max_hw_sectors_kb").why.startswith("NVME_MAX_KB_SZ, 8192 KiB in Linux 7.2")
    # The scenario's own values are what-ifs, and say so.
    given = limits("6.12", limits=QueueLimits(max_segments=7, max_sectors_kb=64))
    assert given.source("max_segments").basis is LimitBasis.GIVEN
    assert "target.max_segments (a what-if" in given.source("max_segments").why
    assert "target.max_sectors_kb" in given.source("max_sectors_kb").why


# -- the default max_sectors cap -------------------------------------------------------


def test_default_max_sectors_cap_1280k_then_4m():
    # 6.12.117 include/linux/blkdev.h BLK_DEF_MAX_SECTORS_CAP 2560u; 7.2.13 block/blk.h
    # "(SZ_4M >> SECTOR_SHIFT)"; block/blk-settings.c blk_validate_limits().
    assert limits("6.12").max_sectors_kb == 1280
    assert limits("6.16").max_sectors_kb == 1280
    assert limits("6.17").max_sectors_kb == 4096
    assert limits("7.2").max_sectors_kb == 4096
    # A user's max_sectors_kb (max_user_sectors) is capped at max_hw_sectors.
    assert limits("6.12", limits=QueueLimits(max_sectors_kb=65536)).max_sectors_kb == 8192
    t = run(big_cmb(), scenario((p2p("01:00.0", 2 * MiB),), "01:00.0", "6.12"))
    assert [r.size for r in step(t, "request").state.requests] == [1280 * KiB, 768 * KiB]


# -- bio_will_gap() -----------------------------------------------------------------


def test_bio_will_gap_refuses_behind_a_first_bvec_with_an_offset():
    # 6.12.117 and 7.2.13 block/blk-merge.c bio_will_gap(): "bio_get_first_bvec(
    # prev_rq->bio, &pb); if (pb.bv_offset & queue_virt_boundary(q)) return true;"
    # Two contiguous bios of contiguous RAM (an extent boundary 7.5 KiB into the I/O,
    # on a page boundary), the first starting 512 bytes into a page: two requests.
    buf = (ram(32 * KiB),)
    sc = scenario(buf, "01:00.0", "6.12", iovecs=(Iovec(512, 16 * KiB),), extent_boundaries=(7680,))
    t = run(tv1(), sc)
    assert len(step(t, "bio").state.bios) == 2
    assert len(step(t, "request").state.requests) == 2
    # Page-aligned, the same two bios merge into one request.
    aligned = run(tv1(), sc.replace(iovecs=(Iovec(0, 16 * KiB),), extent_boundaries=(8 * KiB,)))
    assert len(step(aligned, "request").state.requests) == 1


# -- bvecs per folio and the DMA iterator -----------------------------------------------


def test_v72_one_bvec_per_page_merged_again_by_the_iterator():
    # 7.2.13 lib/iov_iter.c iov_iter_extract_bvecs() -> get_contig_folio_len(): a bvec
    # never spans two folios, and P2P pages are order-0 folios; block/blk-mq-dma.c
    # blk_map_iter_next() merges them again into one DMA segment.
    t = run(tv1(), scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", "7.2"))
    (bio,) = step(t, "bio").state.bios
    assert len(bio.bvecs) == 32
    (rq,) = step(t, "request").state.requests
    assert rq.nr_phys_segments == 32
    (sg,) = step(t, "map_sg").state.sgls
    assert sg.length.tolist() == [128 * KiB]
    # 6.12.117 block/bio.c bio_iov_add_folio() -> bvec_try_merge_page(): one bvec.
    old = run(tv1(), scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", "6.12"))
    assert len(step(old, "bio").state.bios[0].bvecs) == 1


# -- SGL or PRPs ------------------------------------------------------------------------


def test_v72_bus_addr_uses_prps_averaging_over_physical_segments():
    # 7.2.13 drivers/nvme/host/pci.c nvme_pci_avg_seg_size(): payload /
    # blk_rq_nr_phys_segments() = 128 KiB / 32 = 4 KiB < sgl_threshold: PRPs, although
    # the controller has SGLs and the iterator made one segment.
    t = run(tv1(), scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", "7.2"))
    (cmd,) = step(t, "nvme").state.commands
    assert not cmd.use_sgl and cmd.prp1 == 0xFB000000 and len(cmd.prp_list) == 31
    # 6.12.117 nvme_map_data(): nvme_pci_use_sgls(dev, req, iod->sgt.nents): 1 entry: SGL.
    old = run(tv1(), scenario((p2p("01:00.0", 128 * KiB),), "01:00.0", "6.12"))
    (cmd,) = step(old, "nvme").state.commands
    assert cmd.use_sgl and cmd.sgl_in_command


def test_v72_coalesced_iova_is_one_inline_sgl_descriptor():
    # 7.2.13 block/blk-mq-dma.c blk_rq_dma_map_iova(): iter->addr = state->addr,
    # iter->len = dma_iova_size(state); nvme_pci_avg_seg_size() counts one segment when
    # blk_rq_dma_map_coalesce(), and nvme_pci_setup_data_sgl() puts it in the command.
    sc = scenario((p2p("01:00.0", 128 * KiB),), "02:00.0", "7.2")
    t = run(tv3().with_platform(iommu=IommuMode.TRANSLATED), sc)
    assert t.context.verdict(next(iter(t.context.providers))).map_type.value == "THRU_HOST_BRIDGE"
    (mapping,) = step(t, "dma_map").state.mappings
    assert mapping.coalesced
    (sg,) = step(t, "dma_map").state.sgls
    assert sg.nents == 1 and int(sg.dma_length[0]) == 128 * KiB
    (cmd,) = step(t, "nvme").state.commands
    assert cmd.use_sgl and cmd.sgl_in_command and len(cmd.sgl) == 1


def test_v62_averages_over_physical_segments_v63_over_mapped_entries():
    # v6.2: nvme_pci_use_sgls(dev, req) with blk_rq_nr_phys_segments(); v6.3-v6.16
    # (ae5829350324): the mapped nents. 128 KiB of scattered RAM through the IOMMU is
    # 32 physical segments and one mapped entry after __finalise_sg().
    buf = (ram(128 * KiB, layout="scattered"),)
    for kernel, sgl in (("6.2", False), ("6.12", True)):
        t = run(tv1(), scenario(buf, "01:00.0", kernel, dma=DmaMode.IOMMU))
        (cmd,) = step(t, "nvme").state.commands
        assert cmd.use_sgl is sgl, kernel


def test_prp_list_pages_hold_511_entries_and_a_chain_pointer():
    # 6.12.117 nvme_pci_setup_prps() / 7.2.13 nvme_pci_setup_data_prp(): "if (i ==
    # NVME_CTRL_PAGE_SIZE >> 3)" the last entry moves to a new page and its slot chains.
    assert [prp_list_pages(n) for n in (1, 511, 512, 513, 1023, 1024, 2047)] == [
        1,
        1,
        1,
        2,
        2,
        3,
        5,
    ]
    sc = scenario(
        (p2p("01:00.0", 4 * MiB),),
        "01:00.0",
        "6.12",
        nvme=NvmeSetup(sgl=False),
        limits=QueueLimits(max_sectors_kb=4096),
    )
    t = run(big_cmb(), sc)
    (cmd,) = step(t, "nvme").state.commands
    assert len(cmd.prp_list) == 1023 and cmd.prp_list_pages == 2


# -- the virt boundary in 7.x -------------------------------------------------------------


def test_v72_no_virt_boundary_with_sgls():
    # 7.2.13 drivers/nvme/host/pci.c nvme_pci_get_virt_boundary(): "if
    # (!nvme_ctrl_sgl_supported(ctrl) || is_admin) return NVME_CTRL_PAGE_SIZE - 1;
    # return 0;"
    assert limits("7.2").virt_boundary_mask == 0
    assert limits("7.2", nvme=NvmeSetup(sgl=False)).virt_boundary_mask == 0xFFF
    assert limits("6.12").virt_boundary_mask == 0xFFF


def test_v72_page_gap_forces_sgl():
    # 7.2.13 nvme_pci_use_sgls(): "if (req_phys_gap_mask(req) & (NVME_CTRL_PAGE_SIZE
    # - 1) ...) return SGL_FORCED;". Two 2 KiB halves of two scattered pages.
    buf = (ram(8 * KiB, pfns=(0x12345, 0x0ABCD)),)
    sc = scenario(buf, "01:00.0", "7.2", iovecs=(Iovec(0, 2 * KiB), Iovec(6 * KiB, 2 * KiB)))
    t = run(tv1(), sc)
    assert len(step(t, "request").state.requests) == 1
    (cmd,) = step(t, "nvme").state.commands
    assert cmd.use_sgl and len(cmd.sgl) == 2
    # With the 6.12 virt boundary the same readv is two requests of PRPs.
    old = run(tv1(), sc.replace(kernel=DataPathKernel.parse("6.12")))
    assert len(step(old, "request").state.requests) == 2


# -- the topology's IOMMU -----------------------------------------------------------------


def test_topology_iommu_wins_unless_the_scenario_says_otherwise():
    topo = big_cmb(IommuMode.TRANSLATED)
    t = run(topo, scenario((p2p("01:00.0", 64 * KiB),), "01:00.0", "6.12"))
    assert t.context.scenario.dma is DmaMode.IOMMU and t.context.limits.max_hw_sectors_kb == 128
    assert t.context.dma.chosen_by is DmaChosenBy.TOPOLOGY and not t.context.dma.what_if
    what_if = run(
        topo, scenario((p2p("01:00.0", 64 * KiB),), "01:00.0", "6.12", dma=DmaMode.DIRECT)
    )
    assert what_if.context.scenario.dma is DmaMode.DIRECT
    assert what_if.context.dma.chosen_by is DmaChosenBy.SCENARIO and what_if.context.dma.what_if
    assert what_if.context.dma.note == (
        "what-if: the topology's IOMMU translates DMA, but this scenario runs as direct"
    )
    off = run(big_cmb(IommuMode.OFF), scenario((p2p("01:00.0", 64 * KiB),), "01:00.0", "6.12"))
    assert off.context.scenario.dma is DmaMode.DIRECT and off.context.dma.note is None
    assert off.context.dma.chosen_by is DmaChosenBy.TOPOLOGY


# -- scenario fields ---------------------------------------------------------------------


SCENARIO = """
name = "t"
topology = "switch-nvme"
kernel = "6.12"
[[buffer]]
kind = "p2pmem"
provider = "0000:1a:00.0"
size = "128K"
{buffer}
[target]
client = "0000:1b:00.0"
[nvme]
{nvme}
"""


@pytest.mark.parametrize(
    ("buffer", "nvme", "message"),
    [
        ("", "mdts = 256", "nvme.mdts: 256 is out of range (from 0 to 255)"),
        ("", 'mdts = "seven"', "nvme.mdts:"),
        ("pool_size = 100", "", "buffer[0].pool_size: 0x64 is not a positive multiple"),
        ('pool_size = "8G"', "", "buffer[0].pool_size:"),
    ],
)
def test_bad_controller_fields_are_one_line(tmp_path, buffer, nvme, message):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(buffer=buffer, nvme=nvme))
    with pytest.raises(SourceError) as err:
        read_scenario(path)
    text = str(err.value)
    assert text.startswith(str(path)) and message in text and "\n" not in text


def test_controller_fields_are_read(tmp_path):
    path = tmp_path / "s.toml"
    path.write_text(SCENARIO.format(buffer='pool_size = "1M"', nvme="mdts = 5\nsgl = false"))
    sc = read_scenario(path)
    assert sc.nvme.mdts == 5 and not sc.nvme.sgl and sc.buffer[0].pool_size == MiB
    assert not sc.dma_given


def test_single_segment_fast_path_for_memory():
    # Linux 6.12.117 drivers/nvme/host/pci.c nvme_map_data(): one physical segment of a
    # non-P2P page that does not fit PRP1 + PRP2 goes to nvme_setup_sgl_simple() on an
    # SGL-capable controller, whatever the average (16 KiB < sgl_threshold here).
    sc = scenario((ram(16 * KiB),), "01:00.0", "6.12")
    (cmd,) = step(run(tv1(), sc), "nvme").state.commands
    assert (
        cmd.use_sgl and cmd.sgl_in_command and cmd.sgl == ((0x100000000, 16 * KiB, "data block"),)
    )
    # Two pages fit PRP1 + PRP2: nvme_setup_prp_simple().
    (cmd,) = step(run(tv1(), sc.replace(length=8 * KiB)), "nvme").state.commands
    assert not cmd.use_sgl and (cmd.prp1, cmd.prp2) == (0x100000000, 0x100001000)
    # 7.2.13: four order-0 folios are four physical segments: the full path, PRPs.
    (cmd,) = step(run(tv1(), sc.replace(kernel=DataPathKernel.parse("7.2"))), "nvme").state.commands
    assert not cmd.use_sgl and len(cmd.prp_list) == 3
