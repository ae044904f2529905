"""``p2pview verify``: boot the machine, collect the kernel's verdicts, compare with the engine.

The guest (``guest/init.sh``) prints sections between ``=====P2PVIEW BEGIN name``
and ``=====P2PVIEW END name`` on the serial console:

* ``info``: kernel release, command line, whether the kretprobe is on;
* ``capture``: a base64 ``.tar.gz`` in p2pview's capture layout, taken before any
  pair is evaluated (the map type is cached per pair after the first DMA
  mapping: shared/spec/qemu-kernel-oracle.md);
* ``module`` + ``maps`` (with the ``p2pdist`` module): ``PROVIDER CLIENT DIST``
  for every pair from ``pci_p2pdma_distance()``, and the kretprobe's map types
  for the same calls, in the same order;
* ``dio``: the O_DIRECT outcome from every namespace into every provider's
  ``p2pmem/allocate``, with the kretprobe's map type where the pair was first
  evaluated there.

On the host, the engine runs on the guest's own capture with the guest's kernel
release (what p2pview would say on that machine), and on the topology
:func:`~p2pview.qemu.machine.build_machine` predicted (what ``p2pview qemu`` said).
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

from p2pview.kernel import KernelTarget, calc_map_type_and_dist, prepare
from p2pview.model import BDF
from p2pview.qemu.machine import DISK_BYTES, ORACLE_KERNEL, Machine, MachineError, build_machine
from p2pview.session import session_for
from p2pview.sources import SourceError, load_source

#: ``enum pci_p2pdma_map_type`` values in v6.12 (include/linux/pci-p2pdma.h):
#: NOT_SUPPORTED 1, BUS_ADDR 2, THRU_HOST_BRIDGE 3 (the notes, [read]).
MAP_VALUES = {1: "NOT_SUPPORTED", 2: "BUS_ADDR", 3: "THRU_HOST_BRIDGE"}
_SECTION = re.compile(r"=====P2PVIEW (BEGIN|END) (\w+)")


class VerifyError(RuntimeError):
    """The guest could not be booted or said nothing usable; one line."""


@dataclass(frozen=True)
class PairResult:
    """One (provider, client) pair: the kernel's verdict and p2pview's.

    ``kernel`` is (map type or ``None`` when only the O_DIRECT outcome is known,
    distance or ``None``); ``dio`` the O_DIRECT outcome if tried.
    """

    provider: BDF
    client: BDF
    kernel_map: str | None
    kernel_dist: int | None
    dio: str | None
    engine: tuple[str, int]
    predicted: tuple[str, int] | None

    @property
    def kernel_supported(self) -> bool | None:
        """Whether the kernel allows the pair (from the map type, else from O_DIRECT)."""
        if self.kernel_map is not None:
            return self.kernel_map != "NOT_SUPPORTED"
        if self.dio is not None:
            return self.dio.startswith("ok")
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
        if (
            self.kernel_dist is not None
            and self.kernel_dist >= 0
            and verdict[1] != self.kernel_dist
        ):
            return False
        # O_DIRECT must succeed exactly where the map type allows it.
        return not (
            self.dio is not None
            and self.kernel_map is not None
            and self.dio.startswith("ok") != (self.kernel_map != "NOT_SUPPORTED")
        )

    @property
    def agrees(self) -> bool:
        """p2pview's verdict on the guest capture matches the kernel."""
        return self._agrees(self.engine)

    @property
    def prediction_agrees(self) -> bool:
        """``p2pview qemu``'s prediction matches the kernel (True when there is none)."""
        return self.predicted is None or self._agrees(self.predicted)


@dataclass
class VerifyResult:
    """The outcome of one boot."""

    name: str
    cpu: str
    release: str = ""
    cmdline: str = ""
    method: str = ""
    seconds: float = 0.0
    pairs: list[PairResult] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    console: str = ""

    @property
    def disagreements(self) -> list[PairResult]:
        """Pairs where p2pview (on the capture or in its prediction) and the kernel differ."""
        return [p for p in self.pairs if not (p.agrees and p.prediction_agrees)]

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
        extra = f"quiet p2pview_nvme={len(machine.drives)}"
        args = machine.qemu_args(
            kernel=str(kernel_image),
            initrd=str(initrd),
            disk_dir=tmp,
            qemu=qemu,
            extra_cmdline=extra,
        )
        start = time.monotonic()
        try:
            proc = subprocess.run(
                args, capture_output=True, timeout=timeout, stdin=subprocess.DEVNULL
            )
        except FileNotFoundError:
            raise VerifyError(f"{qemu}: not found (apt-get install qemu-system-x86)") from None
        except subprocess.TimeoutExpired:
            raise VerifyError(f"the guest did not power off within {timeout:.0f} s") from None
        elapsed = time.monotonic() - start
    console = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        last = err[-1] if err else ""
        if machine.dsp_acs and "disable-acs' not found" in last:
            last += " (--dsp-acs needs the QEMU that tools/qemu-acs/build.sh builds)"
        raise VerifyError(f"{qemu} exited with {proc.returncode}: {last}")
    return console, elapsed


def _parse_module(
    lines: Sequence[str], maps: Sequence[str]
) -> dict[tuple[BDF, BDF], tuple[str | None, int]]:
    rows = [ln.split() for ln in lines if re.match(r"[0-9a-f]{4}:", ln)]
    values = [int(v, 16) for ln in maps for v in ln.split()]
    out: dict[tuple[BDF, BDF], tuple[str | None, int]] = {}
    aligned = len(values) == len(rows)
    for i, row in enumerate(rows):
        key = (BDF.parse(row[0]), BDF.parse(row[1]))
        kmap = MAP_VALUES.get(values[i]) if aligned else None
        out[key] = (kmap, int(row[2]))
    return out


def _parse_dio(lines: Sequence[str]) -> dict[tuple[BDF, BDF], tuple[str, str | None]]:
    out: dict[tuple[BDF, BDF], tuple[str, str | None]] = {}
    for line in lines:
        m = re.match(r"(\S+) (\S+) \S+ dio read=(\S+) write=(\S+) maps=(.*)", line)
        if not m:
            continue
        read, write = m[3], m[4]
        outcome = "ok" if read == write == "ok" else (read if read != "ok" else write)
        vals = m[5].split()
        kmap = MAP_VALUES.get(int(vals[0], 16)) if vals else None
        out[(BDF.parse(m[1]), BDF.parse(m[2]))] = (outcome, kmap)
    return out


def compare(name: str, machine: Machine, console: str) -> VerifyResult:
    """Turn the guest's console into a :class:`VerifyResult`."""
    result = VerifyResult(name, machine.cpu, console=console)
    sec = sections(console)
    for line in sec.get("info", []):
        key, _, value = line.partition(" ")
        if key == "release":
            result.release = value
        elif key == "cmdline":
            result.cmdline = value
        elif key == "kretprobe" and value != "on":
            result.notes.append("the kretprobe on calc_map_type_and_dist could not be set")
    if "capture" not in sec:
        raise VerifyError(f"{name}: the guest printed no capture (console: {console[-300:]!r})")
    try:
        blob = base64.b64decode("".join(sec["capture"]), validate=False)
    except (binascii.Error, ValueError):
        raise VerifyError(f"{name}: the guest's capture is not valid base64") from None
    with tempfile.TemporaryDirectory(prefix="p2pview-cap-") as tmp:
        path = Path(tmp) / f"{name}.tar.gz"
        path.write_bytes(blob)
        loaded = load_source(str(path))
        session = session_for(loaded, kernel=result.release or None)
    state = session.state
    pred_state = prepare(machine.guest, KernelTarget.parse(result.release or ORACLE_KERNEL))
    module = _parse_module(sec.get("module", []), sec.get("maps", []))
    dio = _parse_dio(sec.get("dio", []))
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
        outcome, dmap = dio.get((p, c), (None, None))
        result.pairs.append(PairResult(p, c, kmap or dmap, kdist, outcome, engine, predicted))
    return result


@dataclass(frozen=True)
class Job:
    """One topology with one CPU model to boot."""

    source: str
    cpu: str | None = None


def run_job(
    job: Job,
    kernel_image: Path,
    initrd: Path,
    qemu: str,
    timeout: float,
    kernel_cmdline: str = "",
    dsp_acs: bool = False,
) -> VerifyResult:
    """Build the machine for ``job``, boot it and compare."""
    loaded = load_source(job.source)
    machine = build_machine(
        loaded.topology,
        cpu=job.cpu,
        kernel=KernelTarget.parse(ORACLE_KERNEL),
        extra_cmdline=kernel_cmdline,
        dsp_acs=dsp_acs,
    )
    console, seconds = boot(machine, kernel_image, initrd, qemu, timeout)
    result = compare(Path(job.source).name.split(".")[0], machine, console)
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
        except (VerifyError, MachineError, SourceError) as exc:
            return VerifyError(f"{job.source} -cpu {job.cpu or 'default'}: {exc}")

    with ThreadPoolExecutor(max_workers=max(1, parallel)) as pool:
        return list(pool.map(one, jobs))
