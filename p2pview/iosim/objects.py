"""The kernel objects one O_DIRECT I/O passes through, as immutable snapshots.

Page-level data are numpy arrays (one element per page, bvec or scatterlist
entry), so that a 1 GiB I/O costs array operations, not a Python loop per
page. Nothing here is mutated after it is built: each stage makes new
objects, and a state shares whatever did not change with the one before.

The classes that hold arrays (and those holding them: ``Bio``, and
``SimState``, ``Step`` and ``Trace`` elsewhere) are ``eq=False``: two of
them are equal only if they are the same object. A generated ``__eq__``
would compare arrays element-wise and raise ("truth value of an array ...
is ambiguous"), and the ``__hash__`` that comes with it would raise too.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from p2pview.iosim.scenario import BufferKind
from p2pview.kernel.verdict import MapType
from p2pview.model import BDF, RootBus

I64 = npt.NDArray[np.int64]
U64 = npt.NDArray[np.uint64]
I32 = npt.NDArray[np.int32]
Bools = npt.NDArray[np.bool_]

PAGE_SHIFT = 12
PAGE_SIZE = 1 << PAGE_SHIFT

#: ``page_link`` low bits (include/linux/scatterlist.h) [read].
SG_CHAIN = 0x01
SG_END = 0x02
#: The v5 series' third page_link bit (V5-03) [read].
SG_PAGE_LINK_BUS_ADDRESS = 0x04
#: ``sg->dma_flags`` bits, v6.0+ [read].
SG_DMA_BUS_ADDRESS = 0x01
SG_DMA_SWIOTLB = 0x02

#: pgmap id of ordinary RAM in the page arrays (providers are numbered from 1).
RAM = 0


@dataclass(frozen=True)
class Event:
    """One thing the kernel did, for the log and for highlighting.

    ``touched`` names the objects it changed (``pool:BDF``, ``page:N``,
    ``bio:N``, ``bvec:N``, ``rq:N``, ``sg:R:N``, ``prp:R``, ``tlp:R``) so a face
    can light exactly those up. ``confidence`` carries the spec's tag for the
    behaviour shown. ``dmesg`` holds kernel log lines the step prints.
    """

    stage: str
    function: str
    text: str
    touched: tuple[str, ...] = ()
    level: str = "info"
    confidence: str = "read"
    dmesg: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Region:
    """One mmap() of the user buffer.

    ``phys`` holds each page's CPU physical address; ``pgmap`` is the provider's
    pgmap id (``RAM`` for anonymous memory). ``struct_pages`` is False for a
    ``resourceN`` mapping (VM_IO | VM_PFNMAP).
    """

    index: int
    kind: BufferKind
    va: int
    size: int
    pgmap: int
    provider: BDF | None
    phys: I64
    struct_pages: bool = True
    chunk_offset: int | None = None


@dataclass(frozen=True, eq=False)
class PageList:
    """The pages GUP returned, one element per page-sized piece of the I/O."""

    phys: I64
    offset: I64
    length: I64
    pgmap: I32

    def __len__(self) -> int:
        return len(self.phys)


@dataclass(frozen=True, eq=False)
class Bvecs:
    """Bio vectors: (first page's physical address, offset in it, length, pgmap).

    A multi-page bvec covers ``length`` bytes from ``phys + offset``; the
    offset stays below PAGE_SIZE.
    """

    phys: I64
    offset: I64
    length: I64
    pgmap: I32

    def __len__(self) -> int:
        return len(self.phys)

    def slice(self, start: int, end: int) -> Bvecs:
        """Vectors ``start`` to ``end`` (views, not copies)."""
        return Bvecs(
            self.phys[start:end],
            self.offset[start:end],
            self.length[start:end],
            self.pgmap[start:end],
        )

    @property
    def addr(self) -> I64:
        """Physical address of each vector's first byte."""
        return self.phys + self.offset


@dataclass(frozen=True, eq=False)
class Bio:
    """A bio: its vectors, where it sits on the disk, and its flags."""

    index: int
    bvecs: Bvecs
    sector: int
    flags: frozenset[str] = frozenset()
    split_from: int | None = None

    @property
    def size(self) -> int:
        """``bi_iter.bi_size``."""
        return int(self.bvecs.length.sum())


@dataclass(frozen=True)
class Request:
    """A block request: the bios merged into it and its physical segment count."""

    index: int
    bios: tuple[int, ...]
    sector: int
    size: int
    nr_phys_segments: int
    flags: frozenset[str] = frozenset()


@dataclass(frozen=True, eq=False)
class SgTable:
    """One request's scatterlist (or, v6.17+, the DMA iterator's segments).

    ``page_link`` keeps only the flag bits (the page is ``phys``).
    ``dma_address`` is -1 where nothing was written.
    """

    request: int
    phys: I64
    offset: I64
    length: I64
    pgmap: I32
    page_link: I64
    dma_address: I64
    dma_length: I64
    dma_flags: I64
    nents: int | None = None
    iterator: bool = False
    #: Entries that cover pages of more than one pgmap (the cross-bio merge
    #: window before the biovec_phys_mergeable() pgmap fix).
    spans: tuple[int, ...] = ()

    def __len__(self) -> int:
        return len(self.phys)


@dataclass(frozen=True)
class DmaMapping:
    """What dma_map_sgtable() (or the iterator) made of one request."""

    request: int
    ok: bool
    errno: str | None
    map_types: tuple[MapType | None, ...]
    iova_ranges: tuple[tuple[int, int], ...] = ()
    status: str = "BLK_STS_OK"
    #: entries left with the zeroed dma_address of sg_init_table() (v6.16 THRU bug).
    stale: tuple[int, ...] = ()
    #: v6.17+: the IOVA mapping coalesced the request into one segment
    #: (``blk_rq_dma_map_coalesce()``).
    coalesced: bool = False


@dataclass(frozen=True, eq=False)
class NvmeCommand:
    """The data pointer of one nvme command: PRPs or SGL descriptors."""

    request: int
    use_sgl: bool
    prp1: int | None = None
    prp2: int | None = None
    prp_list: I64 = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    prp_pool: str | None = None
    sgl: tuple[tuple[int, int, str], ...] = ()
    sgl_in_command: bool = False
    status: str = "BLK_STS_OK"
    #: 4 KiB PRP list pages (511 entries and a chain pointer on each but the last).
    prp_list_pages: int = 0


@dataclass(frozen=True)
class TlpRoute:
    """Where the client's memory requests for one mapped range travel.

    ``hops`` lists the functions (and host bridge) the TLPs cross, from the
    client; ``turn`` is where they turn back down (the common upstream device
    for BUS_ADDR, the host bridge otherwise).
    """

    request: int
    address: int
    length: int
    target: str
    hops: tuple[BDF | RootBus, ...]
    turn: BDF | RootBus | None
    through_root_complex: bool
    translated: bool


def syscall_name(write: bool, vectors: int) -> str:
    """``pread``, ``preadv``, ``pwrite`` or ``pwritev``."""
    return ("pwrite" if write else "pread") + ("v" if vectors > 1 else "")


@dataclass(frozen=True)
class Result:
    """What the application sees."""

    errno: str | None
    stage: str | None
    bytes: int
    outcome: str

    def to_dict(self) -> dict[str, object]:
        """``"result"`` of ``p2pview trace --json``."""
        return {"errno": self.errno, "stage": self.stage, "bytes": self.bytes}
