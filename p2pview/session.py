"""One loaded source with the kernel chosen for it: what every face works on.

Chooses the kernel release (``--kernel``, else the source's own, else
:data:`~p2pview.kernel.profiles.DEFAULT_KERNEL`), applies command-line
overrides of the platform, boots the engine, and collects the notes a user
should see once (unknown ACS, a kernel that predates P2PDMA ...).
"""

from __future__ import annotations

import re
from collections.abc import Collection
from dataclasses import dataclass, field
from typing import Literal, cast

from p2pview.kernel import DEFAULT_KERNEL, KernelState, KernelTarget, VersionError, prepare
from p2pview.kernel.acs import with_iommu_acs, without_iommu_acs
from p2pview.model import BDF, AcsPresence, Fact, IommuMode, Platform, Topology
from p2pview.model.errors import InputError
from p2pview.model.platform import cpu_vendor_id
from p2pview.sources import Loaded, load_source

_ARCHES = {
    "arm64": "aarch64",
    "aarch64": "aarch64",
    "ppc64le": "ppc64le",
    "riscv64": "riscv64",
    "s390x": "s390x",
    "x86_64": "x86_64",
}


class UsageError(InputError):
    """A command-line value that cannot be used."""


@dataclass(frozen=True, slots=True)
class CpuChoice:
    """A ``--cpu`` value, parsed: an architecture, or an x86 vendor and family."""

    text: str
    arch: str
    vendor: str | None = None
    family: int | None = None

    @classmethod
    def parse(cls, spec: str) -> CpuChoice:
        """``VENDOR:FAMILY`` (``amd:0x19``, ``intel:6``) or an arch (``arm64``)."""
        text = spec.strip()
        if text.lower() in _ARCHES:
            return cls(spec, _ARCHES[text.lower()])
        m = re.fullmatch(r"([A-Za-z]+):((?:0x)?[0-9a-fA-F]+)", text)
        if m is None:
            raise UsageError(
                f"--cpu {spec!r}: expected VENDOR:FAMILY (amd:0x19, intel:6, hygon:0x18) or an"
                " architecture (arm64, ppc64le, riscv64)"
            )
        family = int(m[2], 0) if m[2].startswith("0x") else int(m[2], 10)
        return cls(spec, "x86_64", cpu_vendor_id(m[1]), family)

    def apply(self, base: Platform) -> Platform:
        """``base`` with this CPU (an architecture alone keeps an x86 host's vendor)."""
        if self.vendor is not None and self.family is not None:
            return base.replace(
                arch="x86_64", cpu_vendor=self.vendor, cpu_family=self.family, cpu_model_name=None
            )
        if self.arch == "x86_64":
            return base.replace(arch=self.arch)
        return base.replace(
            arch=self.arch, cpu_vendor=f"({self.arch})", cpu_family=0, cpu_model_name=None
        )


#: ``--iommu``: ``on`` (ACS as an IOMMU driver enables it) or ``off`` (firmware ACS).
IommuChoice = Literal["on", "off"]


@dataclass(frozen=True, slots=True)
class EngineConfig:
    """The engine's settings, parsed once where the user gives them.

    Built at the boundary (the CLI's ``--kernel/--cpu/--cmdline/--iommu``, the
    what-if screen's fields, a demo step, a scenario file's keys) by
    :meth:`parse`, which refuses a bad value with a one-line error; everything
    after works on typed values. ``None`` keeps the source's own fact (for the
    kernel: the source's release, else :data:`~p2pview.kernel.DEFAULT_KERNEL`).
    """

    kernel: KernelTarget | None = None
    cpu: CpuChoice | None = None
    cmdline: str | None = None
    iommu: IommuChoice | None = None

    @classmethod
    def parse(
        cls,
        *,
        kernel: str | None = None,
        cpu: str | None = None,
        cmdline: str | None = None,
        iommu: str | None = None,
    ) -> EngineConfig:
        """The settings from the strings a user typed.

        Raises:
            VersionError: ``kernel`` is not a release p2pview can model.
            UsageError: ``cpu`` or ``iommu`` cannot be understood.
        """
        if iommu not in (None, "on", "off"):
            raise UsageError(f"--iommu {iommu!r}: expected on or off")
        return cls(
            kernel=None if kernel is None else KernelTarget.parse(kernel),
            cpu=None if cpu is None else CpuChoice.parse(cpu),
            cmdline=cmdline,
            iommu=cast("IommuChoice | None", iommu),
        )


@dataclass
class Session:
    """A source, the kernel it is judged by, and the booted engine state."""

    loaded: Loaded
    topology: Topology
    target: KernelTarget
    state: KernelState
    notes: list[str] = field(default_factory=list)

    @property
    def unknown_acs(self) -> list[str]:
        """Functions whose ACS could not be read."""
        return [str(d.bdf) for d in self.topology.devices if d.acs.presence is AcsPresence.UNKNOWN]


#: How a user gives p2pview a platform fact the source lacks.
_HOW_TO_GIVE = {
    "cpu": "give it with --cpu VENDOR:FAMILY (e.g. amd:0x19, intel:6)",
    "kernel": "give it with --kernel X.Y",
    "iommu": "give it with --iommu on|off",
    "cmdline": "give it with --cmdline STRING",
}


def assumption_notes(topo: Topology) -> list[str]:
    """One note per assumed platform fact, and one for host bridges whose function may be missing.

    The IOMMU and the command line only matter through ACS, which such
    sources do not record either; they are mentioned only when ACS is known.
    """
    plat = topo.platform
    notes = []
    acs_known = all(d.acs.known for d in topo.devices)
    for name in ("cpu", "kernel", "iommu", "cmdline"):
        fact = plat.facts.get(name)
        if not fact.is_assumed or (name in ("iommu", "cmdline") and not acs_known):
            continue
        notes.append(f"{name} assumed: {fact.how}; {_HOW_TO_GIVE[name]}.")
    unsure = [hb for hb in topo.host_bridges if hb.root_functions.is_assumed]
    if unsure:
        names = ", ".join(str(hb.root) for hb in unsure[:4])
        more = f" and {len(unsure) - 4} more" if len(unsure) > 4 else ""
        notes.append(
            f"host-bridge function assumed on {names}{more}: {unsure[0].root_functions.how}."
        )
    return notes


def choose_target(loaded: Loaded, kernel: KernelTarget | None) -> tuple[KernelTarget, Fact]:
    """The release to model and how it is known.

    ``kernel`` (given by the user), else the source's own release (if it has
    P2PDMA), else :data:`DEFAULT_KERNEL`, which is then an assumption.
    """
    if kernel is not None:
        return kernel, Fact.read("--kernel")
    plat = loaded.topology.platform
    own = plat.kernel
    if own:
        try:
            return KernelTarget.parse(own), plat.facts.kernel
        except VersionError as exc:
            why = f"the source's release cannot be modelled ({exc})"
    else:
        why = "the source does not name a kernel release"
    return KernelTarget.parse(DEFAULT_KERNEL), Fact.assumed(
        f"{why}; {DEFAULT_KERNEL}, p2pview's default"
    )


def open_session(
    source: str | None,
    config: EngineConfig | None = None,
    *,
    fmt: str | None = None,
    only: Collection[BDF] | None = None,
) -> Session:
    """Load ``source`` and boot the engine on it with ``config``.

    ``only``: the functions the command asks about, for sources that can be
    read in part (see :func:`~p2pview.sources.load_source`).

    Raises:
        SourceError: one-line problems for the user.
    """
    loaded = load_source(source, fmt, only=only)
    return session_for(loaded, config)


def session_for(loaded: Loaded, config: EngineConfig | None = None) -> Session:
    """Boot the engine on an already loaded source with ``config``.

    ``iommu`` ``"on"`` applies ``pci_std_enable_acs()`` to every function (what
    an IOMMU driver's ``pci_request_acs()`` leads to); ``"off"`` puts ACS
    Control back to the firmware values where the source records them.
    """
    config = config or EngineConfig()
    notes: list[str] = []
    topo = loaded.topology
    target, kernel_fact = choose_target(loaded, config.kernel)
    platform = topo.platform
    facts = platform.facts.with_fact("kernel", kernel_fact)
    if config.cpu is not None:
        platform = config.cpu.apply(platform)
        facts = facts.with_fact("cpu", Fact.read("--cpu"))
    if config.cmdline is not None:
        platform = platform.replace(cmdline=config.cmdline)
        facts = facts.with_fact("cmdline", Fact.read("--cmdline"))
    if config.iommu == "on":
        topo = with_iommu_acs(topo)
        platform = platform.replace(iommu=IommuMode.TRANSLATED)
        facts = facts.with_fact("iommu", Fact.read("--iommu"))
    elif config.iommu == "off":
        topo = without_iommu_acs(topo)
        platform = platform.replace(iommu=IommuMode.OFF)
        facts = facts.with_fact("iommu", Fact.read("--iommu"))
    platform = platform.replace(facts=facts)
    if platform != topo.platform:
        topo = topo.with_platform(**{f: getattr(platform, f) for f in Platform.__slots__})
    session = Session(loaded, topo, target, prepare(topo, target), notes)
    notes.extend(assumption_notes(topo))
    unknown = session.unknown_acs
    if unknown:
        if loaded.kind in ("live", "sysfs"):
            why = "config space read without root gives 64 bytes"
            fix = "Run as root, or load a capture made as root."
        else:
            why = "this format does not record ACS"
            fix = "Load a sysfs capture made as root ('sudo p2pview capture') for exact answers."
        notes.append(
            f"ACS unknown on {len(unknown)} function(s) ({why}): p2pview assumes no ACS"
            f" redirect there and marks the verdicts that depend on it with '*'. {fix}"
        )
    if loaded.report.vanished:
        notes.append(
            f"{len(loaded.report.vanished)} function(s) vanished during the scan: "
            + ", ".join(loaded.report.vanished[:5])
        )
    notes.extend(loaded.report.problems[:5])
    return session
