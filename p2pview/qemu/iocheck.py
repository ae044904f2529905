"""``p2pview verify --io``: O_DIRECT in a real kernel, as QEMU's NVMe saw it, against the simulator.

For a topology QEMU can build, the guest (``guest/init.sh`` with
``p2pview_io=1``) prints each namespace's queue limits and runs a list of
O_DIRECT scenarios (``p2pvhelp io``): buffers mmap'd from ``p2pmem/allocate``
of one or two providers and anonymous memory, pread/pwrite/preadv/pwritev,
the result (bytes or errno), each buffer page's frame (``/proc/self/pagemap``)
and what the kernel logged meanwhile. QEMU logs every command its emulated
controller executed (:mod:`p2pview.qemu.nvmetrace`). On the host, the
simulator (:mod:`p2pview.iosim`) runs each scenario on the guest's own capture
with the guest kernel's release and QEMU's controller (SGLs supported, the
machine's MDTS); the RAM pages are the guest's (their placement is the page
allocator's, not something the data path decides), the P2P pages where the
simulator's pool puts them (checked against the guest's).

What must agree, per scenario: the queue limits of the client's namespace,
the number of commands with their first LBA and block count, PRP or SGL per
command (an SGL's descriptor in the command or in a list), every range the
controller mapped (address and length; CMB bus addresses and, without an
IOMMU, RAM physical addresses are exact), the bytes or errno the call
returned, and whether the kernel WARNed.

QEMU-specific: QEMU 7.2's controller refuses a command that mixes its own
CMB with any other address (``nvme_map_addr()`` in hw/nvme/ctrl.c returns
Invalid Use of Controller Memory Buffer, status 0x12 with DNR), where a real
controller transfers. The expected commands and result are adjusted for it,
and the scenario's report says so.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from p2pview.model import BDF, Topology
from p2pview.qemu.machine import CMB_BAR, Machine, MachineError, QemuDevice, build_machine
from p2pview.qemu.nvmetrace import TRACE_EVENTS, NvmeCommand, TraceError, read_trace
from p2pview.qemu.nvmetrace import scenario_commands as commands_between
from p2pview.qemu.verify import VerifyError, image_target, sections
from p2pview.sources import SourceError, load_source

PAGE = 4096
SECTOR = 512
#: Each namespace's backing file (sparse): room for 8 MiB scenarios and the sentinels.
DISK_BYTES = 80 << 20
#: The sentinel reads sit at this sector and after (64 MiB in), two per scenario.
SENTINEL_BASE = (64 << 20) // SECTOR
#: QEMU 7.2's nvme ``mdts`` default (hw/nvme/ctrl.c ``DEFINE_PROP_UINT8("mdts", ..., 7)``).
QEMU_MDTS = 7
#: Queue limits the guest prints and the simulator computes (sysfs names).
LIMIT_NAMES = (
    "logical_block_size",
    "max_hw_sectors_kb",
    "max_sectors_kb",
    "max_segments",
    "max_segment_size",
    "virt_boundary_mask",
)
#: NVMe status "Invalid Use of Controller Memory Buffer" and Linux's errno for it.
QEMU_CMB_REFUSAL = "EIO"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9.+_-]{0,63}$")
_PFN_RUN = re.compile(r"^(0x[0-9a-f]+)\+([0-9]+)$")


class IoCheckError(VerifyError):
    """A scenario or machine of the I/O check cannot be run; one line."""


@dataclass(frozen=True)
class Segment:
    """One mmap of the scenario's buffer: a provider's P2P memory (SOURCE BDF) or RAM."""

    size: int
    provider: BDF | None = None

    def guest_arg(self, machine: Machine) -> str:
        """``p2p@BDF:SIZE`` or ``ram:SIZE`` for ``p2pvhelp io``."""
        if self.provider is None:
            return f"ram:{self.size}"
        return f"p2p@{_guest(machine, self.provider)}:{self.size}"


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
        client = _guest(machine, self.client)
        return f"{self.name} {client} {op} {self.file_offset} {segs} {iovs} {before} {after}"


def sentinels(index: int) -> tuple[int, int]:
    """The sentinel LBAs read before and after scenario ``index``."""
    return SENTINEL_BASE + 2 * index, SENTINEL_BASE + 2 * index + 1


def _guest(machine: Machine, bdf: BDF) -> BDF:
    guest = machine.guest_bdf(bdf)
    if guest is None:
        raise IoCheckError(f"{bdf} is not reproduced in the QEMU machine")
    return guest


# -- the scenarios ------------------------------------------------------------------------

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
        raise IoCheckError("no p2pmem provider: no P2P scenario to run")
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
    if sc.kernel and "series" in sc.kernel:
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
            " an oracle kernel built with ORACLE_VARIANT=iommu)",
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


# -- one boot -----------------------------------------------------------------------------


def io_machine(topo: Topology, release: str, mdts: int, cmdline: str = "") -> Machine:
    """The q35 machine for ``topo`` (``-cpu qemu64``) with every NVMe's ``mdts`` set."""
    from p2pview.kernel import KernelTarget

    machine = build_machine(
        topo, cpu="qemu64", kernel=KernelTarget.parse(release), extra_cmdline=cmdline
    )
    devices: list[QemuDevice] = []
    for dev in machine.devices:
        if dev.driver == "nvme":
            dev = replace(dev, props=(*dev.props, ("mdts", str(mdts))))
        devices.append(dev)
    machine.devices = devices
    return machine


def traced_args(
    machine: Machine,
    kernel_image: Path,
    initrd: Path,
    disk_dir: Path,
    events: Path,
    log: Path,
    qemu: str = "qemu-system-x86_64",
    iommu: bool = False,
) -> list[str]:
    """QEMU's argument vector for one ``verify --io`` boot (see :func:`boot_traced`)."""
    extra = f"quiet log_buf_len=1M no_timer_check p2pview_io=1 p2pview_nvme={len(machine.drives)}"
    if iommu:
        extra += " intel_iommu=on"
    args = machine.qemu_args(
        kernel=str(kernel_image),
        initrd=str(initrd),
        disk_dir=str(disk_dir),
        qemu=qemu,
        extra_cmdline=extra,
    )
    if iommu:
        # VT-d must exist before the devices it translates for; kernel-irqchip only
        # matters under KVM (intremap=on needs split there), TCG accepts it.
        args[args.index("-machine") + 1] = "q35,kernel-irqchip=split"
        at = args.index("-device") if "-device" in args else len(args)
        args[at:at] = ["-device", "intel-iommu,intremap=on"]
    return [*args, "-trace", f"events={events}", "-D", str(log)]


def boot_traced(
    machine: Machine,
    kernel_image: Path,
    initrd: Path,
    log: Path,
    qemu: str = "qemu-system-x86_64",
    timeout: float = 900,
    iommu: bool = False,
) -> tuple[str, float]:
    """Boot once with the NVMe trace events logged to ``log``; the console and wall time.

    ``iommu``: QEMU's VT-d (``-device intel-iommu,intremap=on`` before the other
    devices, ``-machine q35,kernel-irqchip=split``) and ``intel_iommu=on``.
    """
    with tempfile.TemporaryDirectory(prefix="p2pview-io-") as tmp:
        for name in machine.drives:
            with open(Path(tmp) / name, "wb") as fh:
                fh.truncate(DISK_BYTES)
        events = Path(tmp) / "events"
        events.write_text("\n".join(TRACE_EVENTS) + "\n")
        args = traced_args(machine, kernel_image, initrd, Path(tmp), events, log, qemu, iommu)
        start = time.monotonic()
        try:
            proc = subprocess.run(
                args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise IoCheckError(f"{qemu}: not found (apt-get install qemu-system-x86)") from None
        except subprocess.TimeoutExpired:
            raise IoCheckError(f"the guest did not power off within {timeout:.0f} s") from None
        elapsed = time.monotonic() - start
    console = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise IoCheckError(f"{qemu} exited with {proc.returncode}: {err[-1] if err else ''}")
    return console, elapsed


# -- what the guest printed ---------------------------------------------------------------


@dataclass
class GuestRun:
    """One scenario as the guest ran it."""

    pfns: dict[int, list[int]] = field(default_factory=dict)
    result: str | None = None
    setup: str | None = None
    dmesg: list[str] = field(default_factory=list)

    @property
    def warned(self) -> bool:
        """The kernel printed a WARNING (a WARN_ON or WARN splat)."""
        return any("WARNING:" in line for line in self.dmesg)


def parse_limits(lines: Sequence[str]) -> tuple[dict[str, str], dict[str, dict[str, int]]]:
    """``ns`` lines (namespace -> controller BDF) and ``limit`` lines (namespace -> values)."""
    ns: dict[str, str] = {}
    limits: dict[str, dict[str, int]] = {}
    for line in lines:
        parts = line.split()
        if len(parts) == 3 and parts[0] == "ns":
            ns[parts[1]] = parts[2]
        elif len(parts) == 4 and parts[0] == "limit" and parts[3].isdigit():
            limits.setdefault(parts[1], {})[parts[2]] = int(parts[3])
    return ns, limits


def _pfn_runs(text: str) -> list[int]:
    out: list[int] = []
    for run in text.split(","):
        m = _PFN_RUN.match(run)
        if m is None:
            raise ValueError(run)
        first, count = int(m[1], 16), int(m[2])
        if count > 1 << 16:
            raise ValueError(run)
        out.extend(range(first, first + count))
    return out


def parse_io(lines: Sequence[str], names: Sequence[str]) -> dict[str, GuestRun]:
    """The ``io`` section: each scenario's page frames, result and log lines."""
    runs = {name: GuestRun() for name in names}
    for line in lines:
        name, _, rest = line.partition(" ")
        run = runs.get(name)
        if run is None:
            continue
        kind, _, value = rest.partition(" ")
        if kind == "seg":
            index, _, pfn = value.partition(" pfn ")
            try:
                run.pfns[int(index)] = _pfn_runs(pfn.strip())
            except ValueError:
                run.setup = f"unreadable page frames: {pfn.strip()[:60]!r}"
        elif kind == "result":
            run.result = value.strip()
        elif kind == "setup":
            run.setup = value.strip()
        elif kind == "dmesg":
            run.dmesg.append(value.strip())
    return runs


# -- the comparison -----------------------------------------------------------------------


@dataclass(frozen=True)
class ExpectedCommand:
    """A command as the simulator says the controller will see it."""

    op: str
    slba: int
    nlb: int
    dptr: str
    sgl_inline: bool
    ranges: tuple[tuple[int, int], ...]
    #: QEMU refuses it (own CMB mixed with other memory).
    refused: bool = False


def qemu_prp_ranges(
    prp1: int, prp2: int | None, entries: Sequence[int], length: int
) -> list[tuple[int, int]]:
    """The ranges ``nvme_map_prp()`` (QEMU 7.2) maps for PRPs the driver built."""
    first = min(length, PAGE - prp1 % PAGE)
    ranges = [(prp1, first)]
    left = length - first
    if left <= 0:
        return ranges
    if left <= PAGE:
        return [*ranges, (prp2 if prp2 is not None else -1, left)]
    for entry in entries:
        if left <= 0:
            break
        n = min(left, PAGE)
        ranges.append((int(entry), n))
        left -= n
    return ranges


def _cmb_window(topo: Topology, client: BDF) -> tuple[int, int] | None:
    """The client's own CMB (BAR 2) when it has one: QEMU maps it itself."""
    dev = topo[client]
    if dev.p2pmem is None:
        return None
    bar = next((b for b in dev.bars if b.index == CMB_BAR), None)
    return None if bar is None else (bar.start, bar.start + bar.size)


def expected_commands(trace: Any, topo: Topology, client: BDF) -> list[ExpectedCommand]:
    """The commands the simulated I/O issues, as QEMU's trace will list them."""
    sc = trace.context.scenario
    state = trace.steps[-1].state
    rq_by_index = {rq.index: rq for rq in state.requests}
    window = _cmb_window(topo, client)
    out: list[ExpectedCommand] = []
    for cmd in state.commands:
        if cmd.status != "BLK_STS_OK":
            continue
        rq = rq_by_index[cmd.request]
        if cmd.use_sgl:
            ranges = []
            left = rq.size
            for addr, n, _kind in cmd.sgl:
                if left <= 0:
                    break
                take = min(n, left)
                ranges.append((addr, take))
                left -= take
            inline = cmd.sgl_in_command
        else:
            assert cmd.prp1 is not None
            ranges = qemu_prp_ranges(cmd.prp1, cmd.prp2, cmd.prp_list.tolist(), rq.size)
            inline = False
        refused = False
        if window is not None:
            # QEMU-specific (hw/nvme/ctrl.c nvme_map_addr()): the first range decides
            # whether the command's memory is the controller's own CMB or DMA; a range
            # of the other kind is Invalid Use of Controller Memory Buffer. QEMU has
            # traced that range before refusing, and maps nothing after it.
            in_cmb = [window[0] <= a < window[1] for a, _ in ranges]
            bad = next((i for i, c in enumerate(in_cmb) if c != in_cmb[0]), None)
            if bad is not None:
                ranges = ranges[: bad + 1]
                refused = True
        out.append(
            ExpectedCommand(
                "write" if sc.write else "read",
                rq.sector,
                rq.size // SECTOR,
                "sgl" if cmd.use_sgl else "prp",
                inline,
                tuple(ranges),
                refused,
            )
        )
    return out


def _fmt_ranges(ranges: Sequence[tuple[int, int]], most: int = 4) -> str:
    shown = [f"{a:#x}+{n}" for a, n in ranges[:most]]
    if len(ranges) > most:
        shown.append(f"... ({len(ranges)} ranges)")
    return " ".join(shown)


def _describe(cmd: ExpectedCommand | NvmeCommand) -> str:
    """``read lba 0 nlb 8 sgl inline 1 range(s)``: one command, predicted or traced."""
    if cmd.dptr == "sgl":
        kind = "sgl inline" if cmd.sgl_inline else "sgl list"
    else:
        kind = cmd.dptr or "rejected"
    return f"{cmd.op} lba {cmd.slba} nlb {cmd.nlb} {kind} {len(cmd.ranges)} range(s)"


def iova_view(
    ranges: Sequence[tuple[int, int]], bars: Sequence[tuple[int, int]] | None
) -> tuple[tuple[int, int], ...]:
    """Ranges as far as the kernel determines them.

    Without an IOMMU (``bars`` None) every address is exact. Through one, an
    address inside a BAR is a bus address (exact) and any other is an IOVA,
    which iommu-dma's allocator places: only its offset in the page is kept,
    as ``-1 - offset``.
    """
    if bars is None:
        return tuple(ranges)
    out = []
    for addr, n in ranges:
        bus = any(lo <= addr < hi for lo, hi in bars)
        out.append((addr if bus else -1 - (addr % PAGE), n))
    return tuple(out)


def compare_commands(
    expected: Sequence[ExpectedCommand],
    seen: Sequence[NvmeCommand],
    bars: Sequence[tuple[int, int]] | None = None,
) -> list[str]:
    """What differs between the predicted and the traced commands (sorted by LBA).

    ``bars``: the machine translates DMA; ranges compare through :func:`iova_view`.
    """
    diffs: list[str] = []
    exp = sorted(expected, key=lambda c: (c.slba, c.op))
    got = sorted(seen, key=lambda c: (c.slba, c.op))
    if len(exp) != len(got):
        diffs.append(
            f"{len(got)} command(s) traced, {len(exp)} predicted: traced"
            f" [{'; '.join(_describe(c) for c in got[:4])}], predicted"
            f" [{'; '.join(_describe(c) for c in exp[:4])}]"
        )
        return diffs
    for i, (e, g) in enumerate(zip(exp, got, strict=True)):
        where = f"command {i} (lba {g.slba})"
        if (e.op, e.slba, e.nlb) != (g.op, g.slba, g.nlb):
            diffs.append(f"{where}: traced {_describe(g)}, predicted {_describe(e)}")
            continue
        if e.dptr != g.dptr or (e.dptr == "sgl" and e.sgl_inline != g.sgl_inline):
            diffs.append(f"{where}: traced {_describe(g)}, predicted {_describe(e)}")
        if iova_view(g.ranges, bars) != iova_view(e.ranges, bars):
            diffs.append(
                f"{where}: ranges traced {_fmt_ranges(g.ranges)}, predicted {_fmt_ranges(e.ranges)}"
                + (" (IOVAs compared by page offset and length)" if bars is not None else "")
            )
        refused = "INVALID_USE_OF_CMB" if e.refused else None
        if refused and g.mapped == g.count:
            diffs.append(
                f"{where}: QEMU was predicted to refuse it (own CMB mixed with other memory)"
            )
    return diffs


def _check_page_cache(
    cached: Sequence[NvmeCommand], start: int, blocks: int, io: IoScenario, topo: Topology
) -> list[str]:
    """The page cache's commands: the call's direction, RAM only, ``blocks`` from ``start``.

    Which page-cache pages and how much readahead are the page cache's and
    readahead's choices, which p2pview does not model.
    """
    op = "write" if io.write else "read"
    bars = [(b.start, b.start + b.size) for d in topo.devices for b in d.bars if b.size]
    out: list[str] = []
    covered: set[int] = set()
    for c in cached:
        if c.op != op:
            out.append(f"page cache: a {c.op} command at lba {c.slba}, expected {op}s")
        if any(lo <= a < hi for a, _ in c.ranges for lo, hi in bars):
            out.append(f"page cache: the command at lba {c.slba} maps a BAR, not RAM")
        covered.update(range(c.slba, c.slba + c.nlb))
    missing = [b for b in range(start, start + blocks) if b not in covered]
    if missing:
        out.append(
            f"page cache: blocks {missing[0]}-{missing[-1]} of the buffered part have no command"
        )
    return out


@dataclass
class IoResult:
    """One scenario: the guest's observations, p2pview's prediction, and what differs."""

    name: str
    origin: str
    seen: str
    predicted: str
    commands: int
    predicted_commands: int
    summary: str
    differences: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def agrees(self) -> bool:
        """Nothing differs."""
        return not self.differences


def _sim_result(trace: Any) -> str:
    """The simulated call's return as the guest prints it: bytes, ``-1 ERRNO`` or ``hang``."""
    r = trace.result
    if r.outcome == "hang":
        return "hang"
    if r.errno is not None and r.outcome == "error":
        return f"-1 {r.errno}"
    return str(r.bytes)


def _sim_warned(trace: Any) -> bool:
    return any("WARNING" in d for e in trace.events for d in e.dmesg) or any(
        "WARN_ON" in e.text and e.level != "info" for e in trace.events
    )


@dataclass
class IoBoot:
    """One machine booted for the I/O check."""

    topology: str
    release: str
    mdts: int
    seconds: float = 0.0
    limits: dict[str, dict[str, int]] = field(default_factory=dict)
    results: list[IoResult] = field(default_factory=list)
    not_run: list[NotRun] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: The boot failed or printed nothing usable (one line); no scenario was checked.
    error: str | None = None
    #: The machine had QEMU's intel-iommu (the guest's DMA translated).
    iommu: bool = False

    @property
    def disagreements(self) -> list[IoResult]:
        """Scenarios where the kernel and p2pview differ."""
        return [r for r in self.results if not r.agrees]


def _load_capture(name: str, console_sections: dict[str, list[str]], release: str) -> Any:
    from p2pview.session import session_for

    if "capture" not in console_sections:
        raise IoCheckError(f"{name}: the guest printed no capture")
    try:
        blob = base64.b64decode("".join(console_sections["capture"]), validate=False)
    except (binascii.Error, ValueError):
        raise IoCheckError(f"{name}: the guest's capture is not valid base64") from None
    with tempfile.TemporaryDirectory(prefix="p2pview-cap-") as tmp:
        path = Path(tmp) / f"{name}.tar.gz"
        path.write_bytes(blob)
        loaded = load_source(str(path))
        return session_for(loaded, kernel=release)


def simulate_guest(
    io: IoScenario, machine: Machine, session: Any, release: str, mdts: int, run: GuestRun
) -> Any:
    """The simulator's trace of ``io`` on the guest's capture, with the guest's RAM pages."""
    from p2pview.iosim.scenario import BufferKind, BufferSegment, Iovec, NvmeSetup, Scenario
    from p2pview.iosim.simulate import simulate

    buffer = []
    for k, seg in enumerate(io.segments):
        if seg.provider is None:
            pfns = run.pfns.get(k, [])
            if len(pfns) * PAGE < seg.size or not all(pfns):
                raise IoCheckError(f"{io.name}: the guest gave no page frames for buffer[{k}]")
            buffer.append(BufferSegment(BufferKind.RAM, seg.size, pfns=tuple(pfns)))
        else:
            buffer.append(
                BufferSegment(BufferKind.P2PMEM, seg.size, provider=_guest(machine, seg.provider))
            )
    scenario = Scenario(
        name=io.name,
        description=f"p2pview verify --io ({io.origin})",
        source="guest capture",
        kernel=release,
        buffer=tuple(buffer),
        client=_guest(machine, io.client),
        write=io.write,
        file_offset=io.file_offset,
        iovecs=tuple(Iovec(o, n) for o, n in io.iovecs),
        # The guest reads and writes the namespace's block device itself.
        blockdev=True,
        nvme=NvmeSetup(sgl=True, mdts=mdts),
    )
    return simulate(scenario, session.topology, session.state)


def check_scenario(
    io: IoScenario,
    machine: Machine,
    session: Any,
    release: str,
    mdts: int,
    run: GuestRun,
    seen: list[NvmeCommand] | None,
    ns_limits: dict[str, int] | None,
    iommu: bool = False,
) -> IoResult:
    """Compare one scenario's guest run and trace with the simulator."""
    notes = list(io.adapted)
    if run.setup is not None:
        return IoResult(
            io.name,
            io.origin,
            f"setup {run.setup}",
            "-",
            0,
            0,
            "",
            [f"the guest could not set the scenario up: {run.setup}"],
            notes,
        )
    trace = simulate_guest(io, machine, session, release, mdts, run)
    diffs: list[str] = []
    # Queue limits of the client's namespace.
    if ns_limits is None:
        diffs.append("the guest printed no queue limits for the client's namespace")
    else:
        sim = trace.context.limits.sysfs()
        for key in LIMIT_NAMES:
            if key in ns_limits and key in sim and ns_limits[key] != sim[key]:
                diffs.append(f"queue limit {key}: kernel {ns_limits[key]}, p2pview {sim[key]}")
    # P2P pages where the simulator's pool put them.
    for region in trace.steps[0].state.regions:
        if region.provider is None:
            continue
        got = run.pfns.get(region.index, [])
        want = [int(p) >> 12 for p in region.phys]
        if got[: len(want)] != want:
            first = f"{got[0]:#x}" if got else "none"
            diffs.append(
                f"buffer[{region.index}]: the guest's P2P pages start at pfn {first},"
                f" p2pview's at {want[0]:#x}"
            )
    expected = expected_commands(trace, session.topology, _guest(machine, io.client))
    predicted = _sim_result(trace)
    if any(c.refused for c in expected):
        predicted = f"-1 {QEMU_CMB_REFUSAL}"
        notes.append(
            "QEMU 7.2 refuses a command mixing the controller's own CMB with other memory"
            " (Invalid Use of Controller Memory Buffer); a real controller transfers it"
        )
    seen_result = run.result or "none"
    if seen_result != predicted:
        diffs.append(f"result: kernel {seen_result}, p2pview {predicted}")
    if seen is None:
        diffs.append("the sentinel reads around the scenario are not in QEMU's trace")
        seen = []
    else:
        buffered = int(trace.steps[-1].state.extra.get("buffered", 0))
        direct, cached = seen, []
        if buffered:
            end = io.file_offset // SECTOR + (io.length - buffered) // SECTOR
            direct = [c for c in seen if c.slba < end]
            cached = [c for c in seen if c.slba >= end]
            diffs.extend(_check_page_cache(cached, end, buffered // SECTOR, io, session.topology))
            notes.append(
                f"{buffered} bytes through the page cache (the block device's buffered"
                " fallback): its commands are checked as RAM covering those blocks"
            )
        bars = None
        if iommu:
            topo = session.topology
            bars = [(b.start, b.start + b.size) for d in topo.devices for b in d.bars if b.size]
        diffs.extend(compare_commands(expected, direct, bars))
    if run.warned != _sim_warned(trace):
        lines = [ln for ln in run.dmesg if "WARNING" in ln][:1]
        diffs.append(
            f"WARN: kernel {'yes' if run.warned else 'no'}"
            + (f" ({lines[0]})" if lines else "")
            + f", p2pview {'yes' if _sim_warned(trace) else 'no'}"
        )
    kinds = sorted({c.dptr or "rejected" for c in seen})
    summary = f"{len(seen)} command(s)" + (f" ({', '.join(kinds)})" if seen else "")
    return IoResult(
        io.name, io.origin, seen_result, predicted, len(seen), len(expected), summary, diffs, notes
    )


def run_boot(
    topology: str,
    scenarios: Sequence[IoScenario],
    kernel_image: Path,
    qemu: str = "qemu-system-x86_64",
    mdts: int = QEMU_MDTS,
    timeout: float = 900,
    not_run: Sequence[NotRun] = (),
    iommu: bool = False,
) -> IoBoot:
    """Boot ``topology`` once, run ``scenarios`` in the guest and compare each."""
    from p2pview.qemu.initramfs import build_initramfs

    release, _target = image_target(kernel_image)
    loaded = load_source(topology)
    machine = io_machine(loaded.topology, release, mdts)
    lines = []
    for i, io in enumerate(scenarios):
        if not _NAME.match(io.name):
            raise IoCheckError(f"scenario name {io.name!r}: letters, digits, . + _ - only")
        lines.append(io.guest_line(machine, i))
    initrd = build_initramfs(None, ("\n".join(lines) + "\n").encode())
    name = Path(topology).name.split(".")[0]
    with tempfile.TemporaryDirectory(prefix="p2pview-iotrace-") as tmp:
        log = Path(tmp) / "nvme-trace.log"
        console, seconds = boot_traced(machine, kernel_image, initrd, log, qemu, timeout, iommu)
        boot = compare_boot(name, machine, scenarios, console, log, release, mdts, iommu)
    boot.seconds = seconds
    boot.not_run = list(not_run)
    return boot


def compare_boot(
    name: str,
    machine: Machine,
    scenarios: Sequence[IoScenario],
    console: str,
    log: Path,
    release: str,
    mdts: int,
    iommu: bool = False,
) -> IoBoot:
    """Compare what one boot printed (``console``) and traced (``log``) with the simulator.

    ``iommu``: the machine had intel-iommu; the guest's capture must show it
    translating (IOMMU groups of a DMA type), and addresses outside every BAR are
    IOVAs, compared by page offset and length only.
    """
    try:
        commands = read_trace(log)
    except TraceError as exc:
        raise IoCheckError(str(exc)) from None
    sec = sections(console)
    if "io" not in sec:
        raise IoCheckError(f"{name}: the guest printed no io section (console: {console[-300:]!r})")
    boot = IoBoot(name, release, mdts, iommu=iommu)
    session = _load_capture(name, sec, release)
    from p2pview.model import IommuMode

    translated = session.topology.platform.iommu is IommuMode.TRANSLATED
    if iommu and not translated:
        raise IoCheckError(
            f"{name}: the guest's capture shows no translating IOMMU (a kernel without"
            " CONFIG_INTEL_IOMMU? tools/oracle-kernel/build.sh with ORACLE_VARIANT=iommu)"
        )
    ns_of, limits = parse_limits(sec.get("limits", []))
    boot.limits = limits
    ns_by_ctrl = {ctrl: ns for ns, ctrl in ns_of.items()}
    runs = parse_io(sec["io"], [io.name for io in scenarios])
    for i, io in enumerate(scenarios):
        before, after = sentinels(i)
        seen = commands_between(commands, before, after)
        ns = ns_by_ctrl.get(str(_guest(machine, io.client)))
        boot.results.append(
            check_scenario(
                io, machine, session, release, mdts, runs[io.name], seen,
                limits.get(ns) if ns else None, iommu,
            )
        )  # fmt: skip
    return boot


def plan(
    sources: Sequence[str], iommu: bool = False
) -> dict[str, tuple[list[IoScenario], list[NotRun]]]:
    """Group SOURCEs by topology: a topology brings its generated scenarios, a scenario itself.

    Raises:
        IoCheckError: a SOURCE is neither a topology nor a scenario (one line).
    """
    from p2pview.sources.bundled import bundled_scenario_path

    out: dict[str, tuple[list[IoScenario], list[NotRun]]] = {}
    for source in sources:
        path = Path(source)
        scenario_path = (
            path
            if path.is_file() and path.suffix == ".toml" and _is_scenario(path)
            else bundled_scenario_path(source)
            if not path.exists()
            else None
        )
        if scenario_path is not None:
            try:
                topology, item = bundled_io(scenario_path, iommu)
            except SourceError as exc:
                raise IoCheckError(str(exc)) from None
            runs, skipped = out.setdefault(topology, ([], []))
            (skipped if isinstance(item, NotRun) else runs).append(item)  # type: ignore[arg-type]
            continue
        try:
            topo = load_source(source).topology
        except SourceError as exc:
            raise IoCheckError(str(exc)) from None
        runs, _ = out.setdefault(source, ([], []))
        runs[:0] = generated_scenarios(topo)
    return out


def _is_scenario(path: Path) -> bool:
    from p2pview.iosim.scenario import looks_like_scenario

    try:
        with open(path, "rb") as fh:
            return looks_like_scenario(fh.read(1 << 20).decode(errors="replace"))
    except OSError:
        return False


def run_all(
    sources: Sequence[str],
    kernel_image: Path,
    qemu: str = "qemu-system-x86_64",
    mdts: Sequence[int] = (QEMU_MDTS,),
    timeout: float = 900,
    jobs: int = 1,
    iommu: bool = False,
) -> list[IoBoot]:
    """Every topology of ``sources`` booted once per MDTS value, ``jobs`` at a time.

    A boot that fails is an :class:`IoBoot` with ``error`` set.

    Raises:
        IoCheckError: a SOURCE is neither a topology nor a scenario.
    """
    from concurrent.futures import ThreadPoolExecutor

    release, _ = image_target(kernel_image)
    # A topology with nothing to run is listed once (its reasons do not depend on MDTS).
    planned = plan(sources, iommu)
    work = [(topology, runs, skipped, m) for topology, (runs, skipped) in planned.items()
            for m in (mdts if runs else mdts[:1])]  # fmt: skip

    def one(item: tuple[str, list[IoScenario], list[NotRun], int]) -> IoBoot:
        topology, runs, skipped, m = item
        name = Path(topology).name.split(".")[0]
        # What cannot run is said once per topology, with its first MDTS value.
        skipped = skipped if m == mdts[0] else []
        if not runs:
            return IoBoot(name, release, m, not_run=skipped, iommu=iommu)
        try:
            return run_boot(topology, runs, kernel_image, qemu, m, timeout, skipped, iommu)
        except (IoCheckError, MachineError, SourceError) as exc:
            return IoBoot(name, release, m, not_run=skipped, error=str(exc), iommu=iommu)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, work))
