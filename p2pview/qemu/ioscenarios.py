"""The O_DIRECT scenarios of ``p2pview verify --io``: generated, bundled, and the guest's list.

A scenario names SOURCE's functions; :meth:`IoScenario.guest_line` turns it into
the line ``guest/init.sh`` hands to ``p2pvhelp io`` (guest BDFs, sizes, iovecs,
and the two sentinel LBAs that bracket its commands in QEMU's trace). Bundled
scenarios (topologies/scenarios/*.toml) run when QEMU can express them, adapted
where QEMU's controller differs, or come back as :class:`NotRun` with the reason.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from p2pview.model import BDF, Topology
from p2pview.qemu.machine import Machine, MachineError
from p2pview.qemu.verify import NothingToCheck, VerifyError

PAGE = 4096
SECTOR = 512
#: The sentinel reads sit at this sector and after (64 MiB in), two per scenario.
SENTINEL_BASE = (64 << 20) // SECTOR
#: QEMU 7.2's nvme ``mdts`` default (hw/nvme/ctrl.c ``DEFINE_PROP_UINT8("mdts", ..., 7)``).
QEMU_MDTS = 7
#: What a scenario name may hold (it is a word on the guest's command lines).
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")


class IoCheckError(VerifyError):
    """A boot of the I/O check failed or cannot be compared; one line.

    QEMU exited or timed out, the guest printed no capture or io section, its
    trace log or page frames cannot be used, or a scenario's name cannot be put
    on the guest's command line. What SOURCE itself cannot give is a
    :class:`~p2pview.qemu.machine.MachineError` or
    :class:`~p2pview.qemu.verify.NothingToCheck` (bad input, not a tool's failure).
    """


@dataclass(frozen=True)
class Segment:
    """One mmap of the scenario's buffer: a provider's P2P memory (SOURCE BDF) or RAM."""

    size: int
    provider: BDF | None = None

    def guest_arg(self, machine: Machine) -> str:
        """``p2p@BDF:SIZE`` or ``ram:SIZE`` for ``p2pvhelp io``."""
        if self.provider is None:
            return f"ram:{self.size}"
        return f"p2p@{guest_bdf(machine, self.provider)}:{self.size}"


@dataclass(frozen=True)
class IoScenario:
    """One O_DIRECT call: buffer, iovecs (byte ranges of the buffer), file offset, client.

    BDFs are SOURCE's; ``origin`` is ``generated`` or the bundled scenario's
    name; ``adapted`` says what was changed to run it under QEMU.
    """

    name: str
    client: BDF
    segments: tuple[Segment, ...]
    iovecs: tuple[tuple[int, int], ...]
    write: bool = False
    file_offset: int = 0
    origin: str = "generated"
    adapted: tuple[str, ...] = ()

    @property
    def length(self) -> int:
        """Bytes the call asks for."""
        return sum(n for _, n in self.iovecs)

    def guest_line(self, machine: Machine, index: int) -> str:
        """The scenario's line in ``/etc/p2pview-io``."""
        segs = ",".join(s.guest_arg(machine) for s in self.segments)
        iovs = ",".join(f"{o}+{n}" for o, n in self.iovecs)
        before, after = sentinels(index)
        op = "write" if self.write else "read"
        client = guest_bdf(machine, self.client)
        return f"{self.name} {client} {op} {self.file_offset} {segs} {iovs} {before} {after}"


def sentinels(index: int) -> tuple[int, int]:
    """The sentinel LBAs read before and after scenario ``index``."""
    return SENTINEL_BASE + 2 * index, SENTINEL_BASE + 2 * index + 1


def guest_bdf(machine: Machine, bdf: BDF) -> BDF:
    """Where SOURCE's function ``bdf`` is in the guest (raises when QEMU left it out)."""
    guest = machine.guest_bdf(bdf)
    if guest is None:
        raise MachineError(f"{bdf} is not reproduced in the QEMU machine")
    return guest


#: Transfer sizes of the generated scenarios (the brief's list: 512 B to 8 MiB).
SIZES = (512, 4096, 8192 + 512, 128 << 10, 1 << 20, 8 << 20)


def _pages(n: int) -> int:
    return -(-n // PAGE) * PAGE


def _size_name(n: int) -> str:
    for shift, unit in ((20, "M"), (10, "K")):
        if n >= 1 << shift and n % (1 << shift) == 0:
            return f"{n >> shift}{unit}"
    if n > 1024 and n % 512 == 0 and (n // 1024) * 1024 + 512 == n:
        return f"{n // 1024}K+512"
    return str(n)


def generated_scenarios(topo: Topology) -> list[IoScenario]:
    """The generated list for a topology with at least one p2pmem provider and an NVMe peer.

    Providers A (and B) are SOURCE's first two p2pmem functions; the client is
    B, or an NVMe without CMB, or A itself. Sizes of :data:`SIZES` read into A's
    memory and two written from it; buffer page offsets 512 and 4096-512;
    RAM-only reads for reference; readv/writev mixing P2P and RAM; a readv into
    both CMBs (two providers); a controller reading into its own CMB.
    """
    nvme = [d for d in topo.devices if d.class_code >> 8 == 0x0108 and not d.is_bridge]
    providers = [d.bdf for d in nvme if d.p2pmem is not None]
    plain = [d.bdf for d in nvme if d.p2pmem is None]
    if not providers:
        raise NothingToCheck("no p2pmem provider: no P2P scenario to run")
    a = providers[0]
    b = providers[1] if len(providers) > 1 else None
    peer = b or (plain[0] if plain else a)
    out: list[IoScenario] = []

    def add(
        name: str,
        client: BDF,
        segs: Sequence[Segment],
        iovs: Sequence[tuple[int, int]],
        write: bool = False,
        offset: int = 0,
    ) -> None:
        out.append(IoScenario(name, client, tuple(segs), tuple(iovs), write, offset))

    for size in SIZES:
        add(f"read-{_size_name(size)}", peer, [Segment(_pages(size), a)], [(0, size)])
    for size in (128 << 10, 1 << 20):
        add(f"write-{_size_name(size)}", peer, [Segment(size, a)], [(0, size)], write=True)
    for off in (512, PAGE - 512):
        add(f"read-4K-at-{off}", peer, [Segment(2 * PAGE, a)], [(off, PAGE)])
    add("read-8K+512-at-512", peer, [Segment(3 * PAGE, a)], [(512, 8192 + 512)])
    add("read-64K-file-4K", peer, [Segment(64 << 10, a)], [(0, 64 << 10)], offset=PAGE)
    add("ram-read-1M", peer, [Segment(1 << 20)], [(0, 1 << 20)])
    add("ram-read-8K+512-at-512", peer, [Segment(3 * PAGE)], [(512, 8192 + 512)])
    add(
        "readv-p2p-ram",
        peer,
        [Segment(2 * PAGE, a), Segment(2 * PAGE)],
        [(0, 2 * PAGE), (2 * PAGE, 2 * PAGE)],
    )
    add(
        "writev-ram-p2p",
        peer,
        [Segment(PAGE), Segment(2 * PAGE, a)],
        [(0, PAGE), (PAGE, 2 * PAGE)],
        write=True,
    )
    add("read-ram-p2p-one-iovec", peer, [Segment(PAGE), Segment(PAGE, a)], [(0, 2 * PAGE)])
    # More than BIO_MAX_VECS pages: the block device's direct I/O loops over bios.
    add(
        "readv-p2p-ram-2M",
        peer,
        [Segment(1 << 20, a), Segment(1 << 20)],
        [(0, 1 << 20), (1 << 20, 1 << 20)],
    )
    add("ram-read-8M", peer, [Segment(8 << 20)], [(0, 8 << 20)])
    if b is not None:
        # A client without CMB as close to A as possible (most common upstream bridges).
        def shared(bdf: BDF) -> int:
            return len(set(_ancestors(topo, bdf)) & set(_ancestors(topo, a)))

        other = max(plain, key=shared) if plain else b
        add(
            "readv-cmb-cmb",
            other,
            [Segment(2 * PAGE, a), Segment(2 * PAGE, b)],
            [(0, 2 * PAGE), (2 * PAGE, 2 * PAGE)],
        )
        add(
            "writev-own-cmb-peer-cmb",
            b,
            [Segment(2 * PAGE, b), Segment(2 * PAGE, a)],
            [(0, 2 * PAGE), (2 * PAGE, 2 * PAGE)],
            write=True,
        )
    add("own-cmb-read-64K", a, [Segment(64 << 10, a)], [(0, 64 << 10)])
    return out


def _ancestors(topo: Topology, bdf: BDF) -> list[BDF]:
    out: list[BDF] = []
    parent = topo[bdf].parent
    while parent is not None and len(out) < 64:
        out.append(parent)
        parent = topo[parent].parent
    return out


@dataclass(frozen=True)
class NotRun:
    """A bundled scenario the I/O check cannot run under QEMU, and why."""

    name: str
    reason: str


def bundled_io(path: Path, iommu: bool = False) -> tuple[str, IoScenario | NotRun]:
    """A bundled scenario as an :class:`IoScenario` on its topology, or why QEMU cannot run it.

    Returns the topology's name (or path) and the scenario. ``iommu``: the
    machine has QEMU's intel-iommu, so a scenario through the IOMMU can run.
    """
    from p2pview.iosim.scenario import BufferKind, DmaMode, TargetKind, read_scenario

    sc = read_scenario(path)
    name = path.stem
    if sc.kernel is not None and sc.kernel.series:
        return sc.source, NotRun(name, "the v5 series is not among the oracle kernels")
    if sc.target is not TargetKind.NVME:
        return sc.source, NotRun(
            name,
            "the I/O goes to a queue other than nvme (no NVMe command to trace); its"
            " EREMOTEIO at GUP is outside what QEMU's NVMe trace shows",
        )
    if sc.dma is DmaMode.SWIOTLB:
        return sc.source, NotRun(
            name, "under swiotlb=force the request is requeued forever: the guest would hang"
        )
    if sc.dma is DmaMode.IOMMU and not iommu:
        return sc.source, NotRun(
            name,
            "needs a translating IOMMU in the guest: run with --iommu (QEMU's intel-iommu and"
            " a kernel with CONFIG_INTEL_IOMMU)",
        )
    if iommu and sc.dma is DmaMode.DIRECT and sc.dma_given:
        return sc.source, NotRun(name, "runs without an IOMMU (its [dma] mode is direct)")
    if any(s.pool_offset is not None for s in sc.buffer):
        return sc.source, NotRun(
            name,
            "places its buffer at a chosen pool offset; in the guest p2pmem/allocate hands"
            " out the first free chunk, after the submission queue nvme-pci keeps in the CMB",
        )
    if sc.extent_boundaries:
        return sc.source, NotRun(name, "file extents: the guest reads the raw namespace")
    adapted: list[str] = []
    segs: list[Segment] = []
    for seg in sc.buffer:
        if seg.kind is BufferKind.RAM:
            if seg.pfns or seg.layout != "contiguous" or seg.base_pfn != 0x100000:
                adapted.append("RAM pages are the guest's")
            segs.append(Segment(_pages(seg.size)))
        elif seg.kind is BufferKind.P2PMEM:
            segs.append(Segment(_pages(seg.size), seg.provider))
        else:
            return sc.source, NotRun(name, f"a {seg.kind.value} buffer is not run under QEMU")
    if not sc.nvme.sgl:
        adapted.append("QEMU 7.2's controller always supports SGLs (no property turns them off)")
    if sc.nvme.mdts is not None and sc.nvme.mdts != QEMU_MDTS:
        adapted.append(f"MDTS is the machine's, not {sc.nvme.mdts}")
    iovs = tuple((v.offset, v.length) for v in sc.io_vectors)
    return sc.source, IoScenario(
        name, sc.client, tuple(segs), iovs, sc.write, sc.file_offset, name, tuple(adapted)
    )
