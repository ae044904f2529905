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

The scenarios come from :mod:`p2pview.qemu.ioscenarios`, the comparison from
:mod:`p2pview.qemu.iocompare`; this module boots the machines and puts them together.
"""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from p2pview.model import Topology
from p2pview.qemu.iocompare import (
    IoResult,
    check_scenario,
    parse_io,
    parse_limits,
)
from p2pview.qemu.ioscenarios import (
    NAME,
    QEMU_MDTS,
    IoCheckError,
    IoScenario,
    NotRun,
    bundled_io,
    generated_scenarios,
    guest_bdf,
    sentinels,
)
from p2pview.qemu.machine import Machine, MachineError, QemuDevice, build_machine
from p2pview.qemu.nvmetrace import TRACE_EVENTS, TraceError, read_trace
from p2pview.qemu.nvmetrace import scenario_commands as commands_between
from p2pview.qemu.verify import capture_session, image_target, run_guest, sections
from p2pview.session import Session
from p2pview.sources import SourceError, load_source

#: Each namespace's backing file (sparse): room for 8 MiB scenarios and the sentinels.
DISK_BYTES = 80 << 20

__all__ = [
    "DISK_BYTES",
    "QEMU_MDTS",
    "IoBoot",
    "IoCheckError",
    "IoResult",
    "IoScenario",
    "NotRun",
    "compare_boot",
    "io_machine",
    "run_all",
    "run_boot",
    "traced_args",
]


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
        proc, elapsed = run_guest(args, qemu, timeout, IoCheckError)
    console = proc.stdout.decode(errors="replace")
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip().splitlines()
        raise IoCheckError(f"{qemu} exited with {proc.returncode}: {err[-1] if err else ''}")
    return console, elapsed


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
    #: With the IOMMU: how many functions' IOMMU groups were compared with what
    #: ``pci_device_group()`` forms in p2pview, and the groups that differ.
    groups_checked: int = 0
    groups_differing: list[str] = field(default_factory=list)

    @property
    def disagreements(self) -> list[IoResult]:
        """Scenarios where the kernel and p2pview differ."""
        return [r for r in self.results if not r.agrees]


def _load_capture(name: str, console_sections: dict[str, list[str]], release: str) -> Session:
    if "capture" not in console_sections:
        raise IoCheckError(f"{name}: the guest printed no capture")
    return capture_session(name, console_sections["capture"], release, IoCheckError)


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
        if not NAME.match(io.name):
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
            " CONFIG_INTEL_IOMMU? tools/oracle-kernel/build.sh builds one)"
        )
    if iommu:
        _check_groups(boot, session)
    ns_of, limits = parse_limits(sec.get("limits", []))
    boot.limits = limits
    ns_by_ctrl = {ctrl: ns for ns, ctrl in ns_of.items()}
    runs = parse_io(sec["io"], [io.name for io in scenarios])
    for i, io in enumerate(scenarios):
        before, after = sentinels(i)
        seen = commands_between(commands, before, after)
        ns = ns_by_ctrl.get(str(guest_bdf(machine, io.client)))
        boot.results.append(
            check_scenario(
                io, machine, session, release, mdts, runs[io.name], seen,
                limits.get(ns) if ns else None, iommu,
            )
        )  # fmt: skip
    return boot


def _check_groups(boot: IoBoot, session: Any) -> None:
    """The guest's IOMMU groups (its capture's ``iommu_group`` links) against p2pview's."""
    from p2pview.kernel.iommu_group import check_groups, pci_device_groups

    groups = pci_device_groups(session.state)
    check = check_groups(session.topology, groups)
    boot.groups_checked = check.checked
    for number, members, mine in check.differing:
        theirs = " ".join(b.short() for b in members)
        ours = "unknown" if mine is None else " ".join(b.short() for b in mine)
        boot.groups_differing.append(f"group {number}: {theirs}; p2pview: {ours}")
    boot.groups_differing.extend(
        f"{bdf.short()}: p2pview cannot tell ({why})" for bdf, why in groups.unknown.items()
    )


def plan(
    sources: Sequence[str], iommu: bool = False
) -> dict[str, tuple[list[IoScenario], list[NotRun]]]:
    """Group SOURCEs by topology: a topology brings its generated scenarios, a scenario itself.

    Raises:
        InputError: a SOURCE is neither a topology nor a scenario, or a topology has
            no p2pmem provider (one line).
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
            topology, item = bundled_io(scenario_path, iommu)
            runs, skipped = out.setdefault(topology, ([], []))
            (skipped if isinstance(item, NotRun) else runs).append(item)  # type: ignore[arg-type]
            continue
        topo = load_source(source).topology
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
        InputError: a SOURCE is neither a topology nor a scenario (as :func:`plan`).
        ImageError: no kernel release in ``kernel_image``.
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
        # What fails one boot (QEMU, the guest, SOURCE's machine or the guest's
        # capture) is reported in its place; anything else stops the run.
        except (IoCheckError, MachineError, SourceError) as exc:
            return IoBoot(name, release, m, not_run=skipped, error=str(exc), iommu=iommu)

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, work))
