"""What each kernel release does on the O_DIRECT data path with a P2P buffer.

The switches follow the spec's section 7 and the project's data-path notes
(block/bio.c, block/blk-merge.c, mm/gup.c, kernel/dma/direct.c,
drivers/iommu/dma-iommu.c and drivers/nvme/host/pci.c as read in v6.0-v6.5-era
and newest copies). Each field names its source and confidence; the faces show
the confidence beside the step that depends on it.

Userspace P2PDMA exists from v6.2 (``p2pmem/allocate``). Before that, only the
out-of-tree v5 series (Logan Gunthorpe, base v5.17-rc1) let O_DIRECT use P2P
memory, through an mmap of ``/dev/nvmeX``; ask for it with a kernel string
containing ``series`` (``5.17-series``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from p2pview.kernel.profiles import KernelTarget
from p2pview.kernel.version import KernelVersion


@dataclass(frozen=True, slots=True)
class DataPathKernel:
    """The kernel an I/O runs under: a release, or the v5 series applied to one.

    Parsed once where the user gives it (a scenario file's ``kernel``, ``trace
    --kernel``, the stepper's form and ``k`` prompt); everything after works on
    the typed value. ``text`` keeps the spelling the user gave, for display.
    """

    target: KernelTarget
    #: The out-of-tree v5 userspace-P2PDMA series (``5.17-series``).
    series: bool
    text: str

    @classmethod
    def parse(cls, text: str) -> DataPathKernel:
        """``6.12``, ``6.12.117``, ``next``, ``5.17-series`` ...

        Raises:
            VersionError: a release p2pview cannot model (before v4.20, or unreadable).
        """
        text = text.strip()
        return cls(KernelTarget.parse(text), "series" in text.lower(), text)

    @classmethod
    def of(cls, target: KernelTarget) -> DataPathKernel:
        """The release ``target`` (the verdicts' kernel), without the v5 series."""
        return cls(target, False, str(target.version))

    @property
    def version(self) -> KernelVersion:
        """The release."""
        return self.target.version

    def __str__(self) -> str:
        return self.text


class Mapping(StrEnum):
    """How nvme-pci maps a request's data."""

    #: v5.17 and the v5 series: blk_rq_map_sg(), then pci_p2pdma_map_sg_attrs()
    #: when the first page is P2P, else dma_map_sg_attrs().
    P2PDMA_MAP_SG = "pci_p2pdma_map_sg_attrs"
    #: v6.0-v6.16: blk_rq_map_sg() and dma_map_sgtable().
    MAP_SG = "dma_map_sgtable"
    #: v6.17+: blk_rq_dma_map_iter_start()/next(), no scatterlist.
    ITER = "blk_rq_dma_map_iter"


class BioRule(StrEnum):
    """Where a page from another pgmap is kept apart (spec section 7.4 and 7.0 item 6)."""

    #: v6.2-v6.16: bvec_try_merge_page() / page_is_mergeable() refuses, the page
    #: starts a new bvec in the same bio [read 6.12.117 block/bio.c,
    #: bio_iov_add_folio() -> bvec_try_merge_page()].
    NEW_BVEC = "new bvec"
    #: v6.17-v6.19: bio_add_page() refuses (38446014648c) and its direct-I/O
    #: caller WARNs and gives up without iov_iter_revert(): the bio keeps the
    #: first part, the call returns a short count [read commit text of
    #: 12da89e8844a, via the spec's section 7.0 item 6; the short count inferred].
    SHORT_WARN = "WARN, short transfer"
    #: v7.0+: the page starts a new bio (12da89e8844a); in 7.2.13 the refusal is
    #: iov_iter_extract_bvecs() (lib/iov_iter.c) breaking at a page whose pgmap
    #: differs, and bio_iov_iter_get_pages() ending the bio there [read 7.2.13].
    NEW_BIO = "new bio"
    #: before v6.2 (and the v5 series before its 18/24): no pgmap check at all.
    NONE = "no pgmap check"


class SglAverage(StrEnum):
    """What ``nvme_pci_use_sgls()`` divides the payload by (spec section 7.0 item 8)."""

    #: v6.0-v6.2: the request's physical segments.
    PHYS_SEGMENTS = "blk_rq_nr_phys_segments()"
    #: v6.3-v6.16 (ae5829350324): the mapped scatterlist entries, sgt.nents
    #: [read 6.12.117 drivers/nvme/host/pci.c, nvme_map_data()].
    MAPPED_ENTRIES = "sgt.nents"
    #: v6.17+: physical segments, or 1 when the IOVA mapping coalesced
    #: (nvme_pci_avg_seg_size(): blk_rq_dma_map_coalesce()) [read 7.2.13].
    PHYS_OR_COALESCED = "blk_rq_nr_phys_segments(), 1 if coalesced"


@dataclass(frozen=True, slots=True)
class DataPath:
    """The data-path behaviour of one kernel release."""

    version: KernelVersion
    series: bool
    #: ``p2pmem/allocate`` exists (v6.2, 7e9c7ef83d78) [read].
    allocate_file: bool
    #: FOLL_PCI_P2PDMA exists, and its value (0x100000 in the v5 series and
    #: v6.2; 1 << 10 from the v6.3 GUP flag renumbering [inferred release]).
    foll_pci_p2pdma: int | None
    #: v6.3+ iov_iter_extract_pages() pins (FOLL_PIN); v6.2 takes references.
    pins: bool
    bio_rule: BioRule
    #: biovec_phys_mergeable() also checks the pgmap (the 2026 fix; mainline
    #: v7.1 and several stable series [inferred]).
    cross_bio_pgmap_check: bool
    mapping: Mapping
    #: SG_DMA_BUS_ADDRESS lives in page_link (0x04, v5 series) or dma_flags (0x1, v6.0+).
    bus_flag_in_page_link: bool
    #: v6.5 renamed sg_is_dma_bus_address() to sg_dma_is_bus_address() [read].
    new_sg_helper_names: bool
    #: v6.16 dma-direct switch form: THRU entries get no dma_address (fixed by
    #: 560000d619ef, 7.0-stable / 7.1 [inferred]) [read in the first switch form].
    direct_thru_unmapped: bool
    #: v6.16-v6.18-rc7: BUS_ADDR entries get no sg_dma_len (d0d08f4bd7f6) [read].
    direct_bus_no_len: bool
    #: v5.16+ bus address = phys + bus_offset (before: minus) [read].
    bus_offset_added: bool
    #: nvme-pci NVME_MAX_SEGS / max transfer (127 and 4 MiB up to v6.2, 128 and
    #: 8 MiB from v6.3 [inferred], 256 segments from v6.17 [read, release inferred]).
    nvme_max_segments: int
    nvme_max_hw_kb: int
    #: nvme_pci_use_sgls()'s divisor (see :class:`SglAverage`).
    sgl_average: SglAverage
    #: nvme_pci_alloc_dev() caps max_hw_sectors with dma_opt_mapping_size()
    #: (3710e2b056cb, v6.4 per the spec) instead of dma_max_mapping_size()
    #: [read: 6.1.176 has dma_max_mapping_size(), 6.12.117 and 7.2.13
    #: dma_opt_mapping_size(), drivers/nvme/host/pci.c].
    nvme_opt_mapping_cap: bool
    #: BLK_DEF_MAX_SECTORS_CAP in KiB: 2560 sectors up to v6.16
    #: (include/linux/blkdev.h, read in 6.1.176 and 6.12.117), SZ_4M from v6.17
    #: (9b8b84879d4a; block/blk.h, read in 7.2.13; the release from the spec).
    def_max_sectors_kb: int
    #: __blk_rq_map_sg() walks blk_map_iter_next(), which merges adjacent
    #: bvecs within a bio too (b7175e24d6ac, v6.14 per the spec) [read 7.2.13
    #: block/blk-mq-dma.c]; 6.12.117 block/blk-merge.c merges only across bios [read].
    map_sg_merges_within_bio: bool
    #: Direct I/O builds one bvec per folio (iov_iter_extract_bvecs(), lib/iov_iter.c)
    #: and never merges two folios into one bvec; P2P pages are order-0
    #: folios, so each page is its own bvec [read 7.2.13; 6.12.117 merges with
    #: bvec_try_merge_page()]. First release [UNVERIFIED]: taken as v7.0.
    folio_bvecs: bool
    #: nvme-pci sets no virt boundary on the I/O queues of an SGL-capable
    #: controller (nvme_pci_get_virt_boundary()) [read 7.2.13; 6.12.117 always
    #: sets NVME_CTRL_PAGE_SIZE - 1]. First release [UNVERIFIED]: taken as v7.0.
    sgl_no_virt_boundary: bool
    #: errno for a NOT_SUPPORTED pair at DMA-map time (spec section 7.12).
    unsupported_errno: str
    #: The queue's dma_alignment is 3 (memory aligned to 4 bytes) for nvme from
    #: v6.0; before, O_DIRECT memory is aligned to the logical block size [recalled].
    dio_mem_align_4: bool
    #: A bio of P2P pages is flagged REQ_P2PDMA (with REQ_NOMERGE) where the bio
    #: rule refuses mixed pgmaps before v6.18, as the posted "block: don't merge
    #: different kinds of P2P transfers in a single bio" has it [final merged form
    #: UNVERIFIED]; neither 6.12.117 nor 7.2.13 defines REQ_P2PDMA [read].
    req_p2pdma_flag: bool
    #: v6.16+ dma-iommu gives a BUS_ADDR entry sg_dma_len(s) = sg->length, the head
    #: entry's length, not its own (iommu_dma_map_sg(), still in the newest tree).
    iommu_bus_len_from_head: bool

    @property
    def foll_name(self) -> str:
        """``FOLL_PCI_P2PDMA`` with its value in this release."""
        if self.foll_pci_p2pdma is None:
            return "FOLL_PCI_P2PDMA (absent)"
        return f"FOLL_PCI_P2PDMA ({self.foll_pci_p2pdma:#x})"

    @property
    def bus_helper(self) -> str:
        """The helper that marks a bus-address entry."""
        return "sg_dma_mark_bus_address()"

    @property
    def is_bus_helper(self) -> str:
        """The helper that tests the mark."""
        return "sg_dma_is_bus_address()" if self.new_sg_helper_names else "sg_is_dma_bus_address()"

    @property
    def title(self) -> str:
        """``6.12`` or ``5.17 + v5 series``."""
        return f"{self.version} + v5 series" if self.series else str(self.version)


#: Stable series that carry "block: add pgmap check to biovec_phys_mergeable"
#: (13920e4b7b78), from which patch level: Debian's 6.12.117 changelog lists it
#: under ChangeLog-6.12.88, and 6.12.117's block/blk.h has the check [read].
_PGMAP_MERGE_STABLE = {(6, 12): 88}


def _stable_has(version: KernelVersion, table: dict[tuple[int, int], int]) -> bool:
    """The release is a stable update at or after the one that took a backport."""
    fixed_at = table.get(version.series)
    return not version.is_next and fixed_at is not None and version.patch >= fixed_at


def datapath_for(kernel: DataPathKernel) -> DataPath:
    """The data path of a release (``6.12``, ``5.17-series``, ``next``)."""
    version = kernel.version
    series = kernel.series
    v = (999, 0) if version.is_next else version.series

    def at_least(major: int, minor: int) -> bool:
        return v >= (major, minor)

    if series:
        return DataPath(
            version=version,
            series=True,
            allocate_file=False,
            foll_pci_p2pdma=0x100000,
            pins=False,
            bio_rule=BioRule.NEW_BVEC,
            cross_bio_pgmap_check=False,
            mapping=Mapping.MAP_SG,
            bus_flag_in_page_link=True,
            new_sg_helper_names=False,
            direct_thru_unmapped=False,
            direct_bus_no_len=False,
            bus_offset_added=True,
            nvme_max_segments=127,
            nvme_max_hw_kb=4096,
            sgl_average=SglAverage.PHYS_SEGMENTS,
            nvme_opt_mapping_cap=False,
            def_max_sectors_kb=1280,
            map_sg_merges_within_bio=False,
            folio_bvecs=False,
            sgl_no_virt_boundary=False,
            unsupported_errno="EREMOTEIO",
            dio_mem_align_4=False,
            req_p2pdma_flag=True,
            iommu_bus_len_from_head=False,
        )
    return DataPath(
        version=version,
        series=False,
        allocate_file=at_least(6, 2),
        foll_pci_p2pdma=(0x400 if at_least(6, 3) else 0x100000) if at_least(6, 2) else None,
        pins=at_least(6, 3),
        bio_rule=(
            BioRule.NEW_BIO
            if at_least(7, 0)
            else BioRule.SHORT_WARN
            if at_least(6, 17)
            else BioRule.NEW_BVEC
            if at_least(6, 2)
            else BioRule.NONE
        ),
        cross_bio_pgmap_check=at_least(7, 1) or _stable_has(version, _PGMAP_MERGE_STABLE),
        mapping=(
            Mapping.ITER
            if at_least(6, 17)
            else Mapping.MAP_SG
            if at_least(6, 0)
            else Mapping.P2PDMA_MAP_SG
        ),
        bus_flag_in_page_link=False,
        new_sg_helper_names=at_least(6, 5),
        direct_thru_unmapped=at_least(6, 16) and not at_least(7, 1),
        direct_bus_no_len=at_least(6, 16) and not at_least(6, 18),
        bus_offset_added=at_least(5, 16),
        nvme_max_segments=256 if at_least(6, 17) else 128 if at_least(6, 3) else 127,
        nvme_max_hw_kb=8192 if at_least(6, 3) else 4096,
        sgl_average=(
            SglAverage.PHYS_OR_COALESCED
            if at_least(6, 17)
            else SglAverage.MAPPED_ENTRIES
            if at_least(6, 3)
            else SglAverage.PHYS_SEGMENTS
        ),
        nvme_opt_mapping_cap=at_least(6, 4),
        def_max_sectors_kb=4096 if at_least(6, 17) else 1280,
        map_sg_merges_within_bio=at_least(6, 14),
        folio_bvecs=at_least(7, 0),
        sgl_no_virt_boundary=at_least(7, 0),
        unsupported_errno="EINVAL" if at_least(6, 17) else "EREMOTEIO",
        dio_mem_align_4=at_least(6, 0),
        req_p2pdma_flag=not at_least(6, 18),
        iommu_bus_len_from_head=at_least(6, 16),
    )
