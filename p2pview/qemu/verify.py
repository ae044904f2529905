"""``p2pview verify``: boot the machine, collect the kernel's verdicts, compare with the engine.

The guest (``guest/init.sh``) prints sections between ``=====P2PVIEW BEGIN name``
and ``=====P2PVIEW END name`` on the serial console:

* ``info``: kernel release, command line, the function the kretprobe sits on,
  and the files each provider's ``p2pmem/`` directory has;
* ``capture``: a base64 ``.tar.gz`` in p2pview's capture layout, taken before any
  pair is evaluated (the map type is cached per pair after the first DMA
  mapping: shared/spec/qemu-kernel-oracle.md);
* ``module`` + ``maps`` (with the ``p2pdist`` module): ``PROVIDER CLIENT DIST``
  for every pair from ``pci_p2pdma_distance()``, and the kretprobe's map types
  for the same calls, in the same order;
* ``dio``: the O_DIRECT outcome from every namespace into every provider's
  memory, mapped two ways: ``p2pmem/allocate`` (v6.2+; the kretprobe's map type
  where the pair was first evaluated there) and the sysfs mmap of the CMB BAR.

The release, and so the era, comes from the image (:mod:`p2pview.qemu.image`),
before anything boots. On the host, the engine runs on the guest's own capture
with that release (what p2pview would say on that machine), and on the topology
:func:`~p2pview.qemu.machine.build_machine` predicted (what ``p2pview qemu``
said); the O_DIRECT simulator (:mod:`p2pview.iosim`) predicts each O_DIRECT
outcome on the capture.
"""

from __future__ import annotations

import base64
import binascii
import re
import subprocess
import tempfile
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from p2pview.kernel import KernelState, KernelTarget, calc_map_type_and_dist, prepare
from p2pview.model import BDF
from p2pview.model.errors import InputError, ToolError
from p2pview.qemu.image import kernel_release
from p2pview.qemu.machine import CMB_BAR, DISK_BYTES, Machine, MachineError, build_machine
from p2pview.session import EngineConfig, Session, session_for
from p2pview.sources import SourceError, load_source

#: The map types a verdict can be (``enum pci_p2pdma_map_type`` names).
VERDICTS = ("NOT_SUPPORTED", "BUS_ADDR", "THRU_HOST_BRIDGE")
#: The size of each O_DIRECT the guest tries (p2pvhelp.c IO_LEN).
DIO_BYTES = 4096
_SECTION = re.compile(r"=====P2PVIEW (BEGIN|END) (\w+)")
_BDF = r"[0-9a-f]{4}:[0-9a-f]{2}:[0-9a-f]{2}\.[0-7]"
#: ``PROVIDER CLIENT DIST`` from p2pdist.ko.
_MODULE_LINE = re.compile(rf"({_BDF}) ({_BDF}) (-?[0-9]+)$")
#: ``PROVIDER CLIENT BLOCKDEV dio|bar read=X write=Y [maps=0x.. ...]`` from /init.
_DIO_LINE = re.compile(rf"({_BDF}) ({_BDF}) \S+ (dio|bar) (read=\S+ write=\S+)(?: maps=(.*))?$")
_HEX = re.compile(r"0x[0-9a-f]+")
#: A ``dev_printk()`` line: ``DRIVER BDF: text`` (after the timestamp).
_DEV_LINE = re.compile(rf"^(\S+) ({_BDF}): (.*)$")
_TIMESTAMP = re.compile(r"^\[\s*[0-9]+\.[0-9]+\]\s?")
_PAIR_LINE = re.compile(rf"p2pdist: ({_BDF}) ({_BDF}) -?[0-9]+$")


def map_values(target: KernelTarget) -> dict[int, str]:
    """``enum pci_p2pdma_map_type`` value -> name for ``target``'s release.

    NOT_SUPPORTED 1, BUS_ADDR 2, THRU_HOST_BRIDGE 3 through 6.12.117 (5.10.223:
    drivers/pci/p2pdma.c; 6.1.176 and 6.12.117: include/linux/dma-map-ops.h);
    2, 3, 4 after ``PCI_P2PDMA_MAP_NONE`` in 7.2.13 and 7.3~rc7
    (include/linux/pci-p2pdma.h) [read in those Debian trees].
    """
    return {value: name for name, value in target.map_type_values.items()}


class VerifyError(ToolError):
    """The guest could not be booted or said nothing usable; one line."""


class JobError(VerifyError):
    """One job's machine could not be built or booted; the job is kept for the record.

    ``skipped``: nothing was wrong with the kernel or p2pview, the job had
    nothing to check (QEMU cannot build SOURCE, or SOURCE has no provider).
    """

    def __init__(self, job: Job, reason: str, skipped: bool = False) -> None:
        super().__init__(f"{job.source} -cpu {job.cpu or 'default'}: {reason}")
        self.job = job
        self.reason = reason
        self.skipped = skipped


class NothingToCheck(InputError):
    """SOURCE's machine has no p2pmem provider, so booting it would check no pair."""


@dataclass(frozen=True)
class DioCheck:
    """One O_DIRECT attempt between a namespace and a provider's memory.

    ``way``: ``allocate`` (an mmap of ``p2pmem/allocate``) or ``bar`` (the sysfs
    mmap of the CMB BAR). ``seen`` is the guest's line (``read=... write=...``),
    ``outcome`` its first failure (an errno name) or ``ok``, ``expected`` what the
    O_DIRECT simulator says for the same I/O (``None``: it could not say).
    """

    way: str
    seen: str
    outcome: str
    expected: str | None

    @property
    def agrees(self) -> bool:
        """The guest's outcome is the simulator's."""
        return self.expected is not None and self.outcome == self.expected


@dataclass(frozen=True)
class PairResult:
    """One (provider, client) pair: the kernel's verdict and p2pview's.

    ``kernel_map`` is ``None`` when only the O_DIRECT outcome is known,
    ``kernel_dist`` ``None`` without the module; ``dio`` and ``bar`` are the
    O_DIRECT attempts (``None`` when the client has no namespace).
    """

    provider: BDF
    client: BDF
    kernel_map: str | None
    kernel_dist: int | None
    engine: tuple[str, int]
    predicted: tuple[str, int] | None
    dio: DioCheck | None = None
    bar: DioCheck | None = None
    #: The lines the kernel printed for the pair (verbose), ``None``: not seen.
    kernel_messages: tuple[str, ...] | None = None
    #: The lines p2pview says the kernel prints for it.
    engine_messages: tuple[str, ...] = ()

    @property
    def messages_agree(self) -> bool:
        """The kernel printed exactly p2pview's lines, in order (True when not seen)."""
        return self.kernel_messages is None or self.kernel_messages == self.engine_messages

    @property
    def kernel_supported(self) -> bool | None:
        """Whether the kernel allows the pair (from the map type, else from O_DIRECT)."""
        if self.kernel_map is not None:
            return self.kernel_map != "NOT_SUPPORTED"
        if self.dio is not None and self.dio.outcome in ("ok", "EREMOTEIO"):
            return self.dio.outcome == "ok"
        return None

    def _agrees(self, verdict: tuple[str, int]) -> bool:
        if self.kernel_map is not None and verdict[0] != self.kernel_map:
            return False
        supported = self.kernel_supported
        if (
            self.kernel_map is None
            and supported is not None
            and (verdict[0] != "NOT_SUPPORTED") != supported
        ):
            return False
        # The kernel reports -1 instead of the distance of an unsupported pair.
        return not (
            self.kernel_dist is not None
            and self.kernel_dist >= 0
            and verdict[1] != self.kernel_dist
        )

    @property
    def checked(self) -> bool:
        """The kernel said something about the pair (a map type, a distance or an outcome)."""
        return (
            self.kernel_map is not None
            or self.kernel_dist is not None
            or (self.kernel_supported is not None)
        )

    @property
    def agrees(self) -> bool:
        """p2pview's verdict on the guest capture matches the kernel."""
        return self._agrees(self.engine)

    @property
    def prediction_agrees(self) -> bool:
        """``p2pview qemu``'s prediction matches the kernel (True when there is none)."""
        return self.predicted is None or self._agrees(self.predicted)

    @property
    def dio_checks(self) -> list[DioCheck]:
        """The O_DIRECT attempts made for this pair."""
        return [d for d in (self.dio, self.bar) if d is not None]

    @property
    def ok(self) -> bool:
        """Verdict, prediction, messages and every O_DIRECT outcome agree."""
        return (
            self.agrees
            and self.prediction_agrees
            and self.messages_agree
            and all(d.agrees for d in self.dio_checks)
        )


@dataclass
class VerifyResult:
    """The outcome of one boot."""

    name: str
    cpu: str
    release: str = ""
    profile: str = ""
    cmdline: str = ""
    method: str = ""
    seconds: float = 0.0
    dsp_acs: bool = False
    pairs: list[PairResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    #: provider BDF -> the files its ``p2pmem/`` directory holds in the guest.
    p2pmem_files: dict[str, list[str]] = field(default_factory=dict)
    console: str = ""

    @property
    def disagreements(self) -> list[PairResult]:
        """Pairs where p2pview (verdict, prediction or O_DIRECT outcome) and the kernel differ."""
        return [p for p in self.pairs if not p.ok]

    @property
    def ok(self) -> bool:
        """No pair disagrees (a machine without a p2pmem provider has no pairs to check)."""
        return not self.disagreements


def sections(console: str) -> dict[str, list[str]]:
    """The guest's marked sections, by name (lines without the serial console's CRs)."""
    out: dict[str, list[str]] = {}
    current: str | None = None
    for raw in console.splitlines():
        line = raw.rstrip("\r")
        m = _SECTION.search(line)
        if m:
            current = m[2] if m[1] == "BEGIN" else None
            if current is not None:
                out[current] = []
            continue
        if current is not None:
            out[current].append(line)
    return out


def capture_session(
    name: str, lines: Sequence[str], release: str, error: type[Exception]
) -> Session:
    """The engine on the guest's capture (``lines``: its base64 section) under ``release``.

    Raises ``error`` (one line) when the section is not base64; the archive
    itself is read like any capture (a SourceError names what is wrong in it).
    """
    try:
        blob = base64.b64decode("".join(lines), validate=False)
    except (binascii.Error, ValueError):
        raise error(f"{name}: the guest's capture is not valid base64") from None
    with tempfile.TemporaryDirectory(prefix="p2pview-cap-") as tmp:
        path = Path(tmp) / f"{name}.tar.gz"
        path.write_bytes(blob)
        return session_for(load_source(str(path)), EngineConfig.parse(kernel=release))


def run_guest(
    args: Sequence[str], qemu: str, timeout: float, error: type[Exception]
) -> tuple[subprocess.CompletedProcess[bytes], float]:
    """Run QEMU until the guest powers off: the finished process and its wall time.

    Raises ``error`` (one line) when QEMU is missing or the guest outlives ``timeout``.
    """
    start = time.monotonic()
    try:
        proc = subprocess.run(args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise error(f"{qemu}: not found (apt-get install qemu-system-x86)") from None
    except subprocess.TimeoutExpired:
        raise error(f"the guest did not power off within {timeout:.0f} s") from None
    return proc, time.monotonic() - start


def boot(
    machine: Machine,
    kernel_image: Path,
    initrd: Path,
    qemu: str = "qemu-system-x86_64",
    timeout: float = 600,
) -> tuple[str, float]:
    """Boot ``machine`` once (TCG); the serial console's text and the wall time."""
    with tempfile.TemporaryDirectory(prefix="p2pview-vm-") as tmp:
        for name in machine.drives:
            with open(Path(tmp) / name, "wb") as fh:
                fh.truncate(DISK_BYTES)
        # log_buf_len: the module's reasons for every pair must all fit in dmesg.
        # no_timer_check: under TCG on a busy host the IO-APIC timer test at boot
        # can miss its ticks and panic ("IO-APIC + timer doesn't work!"; seen with
        # 5.10.223); the test checks the emulated board, not anything p2pview needs.
        extra = f"quiet log_buf_len=1M no_timer_check p2pview_nvme={len(machine.drives)}"
        args = machine.qemu_args(
            kernel=str(kernel_image),
            initrd=str(initrd),
            disk_dir=tmp,
            qemu=qemu,
            extra_cmdline=extra,
        )
        proc, elapsed = run_guest(args, qemu, timeout, VerifyError)
    console = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        last = err[-1] if err else ""
        if machine.dsp_acs and "disable-acs' not found" in last:
            last += " (--dsp-acs needs the QEMU that tools/qemu-acs/build.sh builds)"
        raise VerifyError(f"{qemu} exited with {proc.returncode}: {last}")
    return console, elapsed


def _parse_module(
    lines: Sequence[str], maps: Sequence[str], values: dict[int, str]
) -> dict[tuple[BDF, BDF], tuple[str | None, int]]:
    rows = [m for ln in lines if (m := _MODULE_LINE.match(ln.strip()))]
    found = [int(v, 16) for ln in maps for v in _HEX.findall(ln)]
    out: dict[tuple[BDF, BDF], tuple[str | None, int]] = {}
    # The kretprobe events line up with the module's lines only when none was lost.
    aligned = len(found) == len(rows)
    for i, row in enumerate(rows):
        key = (BDF.parse(row[1]), BDF.parse(row[2]))
        name = values.get(found[i]) if aligned else None
        out[key] = (name if name in VERDICTS else None, int(row[3]))
    return out


def _parse_messages(lines: Sequence[str]) -> dict[tuple[BDF, BDF], tuple[str, ...]]:
    """The device lines the kernel printed for each pair the module asked about.

    The module prints ``p2pdist: P C DIST`` after each call, so the device lines
    since the previous one are that call's reasons.
    """
    out: dict[tuple[BDF, BDF], tuple[str, ...]] = {}
    pending: list[str] = []
    for raw in lines:
        line = _TIMESTAMP.sub("", raw.strip())
        pair = _PAIR_LINE.search(line)
        if pair:
            out[(BDF.parse(pair[1]), BDF.parse(pair[2]))] = tuple(pending)
            pending = []
        elif _DEV_LINE.match(line):
            pending.append(line)
    return out


def _first_failure(text: str) -> str:
    """``read=ok write=EFAULT`` -> ``EFAULT``; a set-up step's ``open:ENOENT`` -> ``ENOENT``."""
    fields = dict(f.split("=", 1) for f in text.split() if "=" in f)
    for key in ("read", "write"):
        value = fields.get(key, "?")
        if value != "ok":
            return value.rsplit(":", 1)[-1]
    return "ok"


@dataclass(frozen=True)
class _DioLine:
    way: str
    seen: str
    kernel_map: str | None


def _parse_dio(
    lines: Sequence[str], values: dict[int, str]
) -> dict[tuple[BDF, BDF], dict[str, _DioLine]]:
    out: dict[tuple[BDF, BDF], dict[str, _DioLine]] = {}
    for line in lines:
        m = _DIO_LINE.match(line.strip())
        if not m:
            continue
        vals = _HEX.findall(m[5] or "")
        name = values.get(int(vals[0], 16)) if vals else None
        way = "allocate" if m[3] == "dio" else "bar"
        key = (BDF.parse(m[1]), BDF.parse(m[2]))
        out.setdefault(key, {})[way] = _DioLine(way, m[4], name if name in VERDICTS else None)
    return out


def expected_dio(
    source: str, state: KernelState, provider: BDF, client: BDF, way: str
) -> str | None:
    """What the O_DIRECT simulator says the guest's read, then write, end with.

    ``allocate``: a 4 KiB read and write through an mmap of ``p2pmem/allocate``;
    ``bar``: the same through the sysfs mmap of the CMB BAR. ``None`` when the
    simulator cannot build the scenario from the capture.
    """
    # Imported here: the simulator needs numpy, which `p2pview --help` (it lists
    # this module's commands) must not load.
    from p2pview.iosim.context import ScenarioError
    from p2pview.iosim.datapath import DataPathKernel
    from p2pview.iosim.scenario import BufferKind, BufferSegment, quick_scenario
    from p2pview.iosim.simulate import simulate

    outcomes = []
    for write in (False, True):
        scenario = quick_scenario(
            source, provider, client, DIO_BYTES, write=write, kernel=DataPathKernel.of(state.target)
        )
        if way == "bar":
            seg = BufferSegment(BufferKind.BAR_RESOURCE, 16 * DIO_BYTES, provider, bar=CMB_BAR)
            scenario = scenario.replace(buffer=(seg,))
        try:
            result = simulate(scenario, state.topology, state).result
        except ScenarioError:
            return None
        outcomes.append(result.errno or ("ok" if result.outcome == "ok" else result.outcome))
    return next((o for o in outcomes if o != "ok"), "ok")


def compare(
    name: str, machine: Machine, console: str, release: str, dsp_acs: bool = False
) -> VerifyResult:
    """Turn the guest's console into a :class:`VerifyResult`.

    ``release`` is the image's (what p2pview judges by); the guest's own
    ``osrelease`` must be the same.
    """
    target = KernelTarget.parse(release)
    values = map_values(target)
    result = VerifyResult(name, machine.cpu, console=console, dsp_acs=dsp_acs)
    result.profile = target.profile.title
    sec = sections(console)
    guest_release = ""
    for line in sec.get("info", []):
        key, _, value = line.partition(" ")
        if key == "release":
            guest_release = value
        elif key == "cmdline":
            result.cmdline = value
        elif key == "kretprobe" and value == "off":
            result.notes.append("no kretprobe could be set on the decision function")
        elif key == "p2pmem":
            bdf, _, files = value.partition(" ")
            result.p2pmem_files[bdf] = files.split()
    for line in sec.get("acs", []):
        if " -> " not in line:
            result.notes.append(f"ACS Control not set: {line.strip()}")
    result.release = release
    if guest_release and guest_release != release:
        result.notes.append(f"the guest runs {guest_release}, the image says {release}")
    if "capture" not in sec:
        raise VerifyError(f"{name}: the guest printed no capture (console: {console[-300:]!r})")
    session = capture_session(name, sec["capture"], release, VerifyError)
    state = session.state
    pred_state = prepare(machine.guest, target)
    module = _parse_module(sec.get("module", []), sec.get("maps", []), values)
    messages = _parse_messages(sec.get("dmesg", []))
    dio = _parse_dio(sec.get("dio", []), values)
    result.method = "module+kretprobe" if module else "O_DIRECT+kretprobe"
    if not any(d.p2pmem is not None for d in session.topology.devices):
        result.notes.append("no p2pmem provider in the guest: no pair to check")
    keys = sorted(set(module) | set(dio))
    for p, c in keys:
        if p not in session.topology or c not in session.topology:
            result.notes.append(f"{p} {c}: not in the guest's capture")
            continue
        v = calc_map_type_and_dist(state, p, c)
        engine = (v.map_type.value if v.map_type else "?", v.distance)
        predicted = None
        if p in machine.guest and c in machine.guest:
            w = calc_map_type_and_dist(pred_state, p, c)
            predicted = (w.map_type.value if w.map_type else "?", w.distance)
        kmap, kdist = module.get((p, c), (None, None))
        lines = dio.get((p, c), {})
        checks: dict[str, DioCheck] = {}
        for way, got in lines.items():
            expected = expected_dio(session.topology.source, state, p, c, way)
            checks[way] = DioCheck(way, got.seen, _first_failure(got.seen), expected)
        dio_map = lines["allocate"].kernel_map if "allocate" in lines else None
        result.pairs.append(
            PairResult(
                p,
                c,
                kmap or dio_map,
                kdist,
                engine,
                predicted,
                checks.get("allocate"),
                checks.get("bar"),
                messages.get((p, c)),
                tuple(m.dmesg() for m in v.messages),
            )
        )
    return result


@dataclass(frozen=True)
class Job:
    """One topology with one CPU model to boot."""

    source: str
    cpu: str | None = None


def image_target(kernel_image: Path) -> tuple[str, KernelTarget]:
    """The release a kernel image carries and the era p2pview judges it by.

    Raises:
        ImageError: no release in the image.
        VersionError: a release p2pview has no era for.
    """
    release = kernel_release(kernel_image)
    return release, KernelTarget.parse(release)


def run_job(
    job: Job,
    kernel_image: Path,
    initrd: Path,
    qemu: str,
    timeout: float,
    kernel_cmdline: str = "",
    dsp_acs: bool = False,
) -> VerifyResult:
    """Build the machine for ``job`` (judged by the image's release), boot it and compare."""
    release, target = image_target(kernel_image)
    loaded = load_source(job.source)
    machine = build_machine(
        loaded.topology,
        cpu=job.cpu,
        kernel=target,
        extra_cmdline=kernel_cmdline,
        dsp_acs=dsp_acs,
    )
    if not any(d.p2pmem is not None for d in machine.guest.devices):
        raise NothingToCheck("no p2pmem provider, so no pair to check")
    console, seconds = boot(machine, kernel_image, initrd, qemu, timeout)
    result = compare(Path(job.source).name.split(".")[0], machine, console, release, dsp_acs)
    result.seconds = seconds
    return result


def run_jobs(
    jobs: Sequence[Job],
    kernel_image: Path,
    initrd: Path,
    qemu: str = "qemu-system-x86_64",
    parallel: int = 1,
    timeout: float = 600,
    kernel_cmdline: str = "",
    dsp_acs: bool = False,
) -> list[VerifyResult | VerifyError]:
    """Every job, ``parallel`` at a time; errors are returned in place of results."""

    def one(job: Job) -> VerifyResult | VerifyError:
        try:
            return run_job(job, kernel_image, initrd, qemu, timeout, kernel_cmdline, dsp_acs)
        # SOURCE QEMU cannot check is skipped; a boot that failed, or a guest
        # capture p2pview cannot read, is that job's error; anything else stops the run.
        except (NothingToCheck, MachineError) as exc:
            return JobError(job, str(exc), skipped=True)
        except (VerifyError, SourceError) as exc:
            return JobError(job, str(exc))

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, jobs))
