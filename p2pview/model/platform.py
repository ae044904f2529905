"""The machine around the PCIe tree: CPU, kernel release, IOMMU and command line."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from enum import StrEnum

from p2pview.model.provenance import Fact, PlatformFacts

#: Short and long CPU vendor names -> ``/proc/cpuinfo``'s ``vendor_id``.
CPU_VENDOR_IDS = {
    "amd": "AuthenticAMD",
    "authenticamd": "AuthenticAMD",
    "intel": "GenuineIntel",
    "genuineintel": "GenuineIntel",
    "hygon": "HygonGenuine",
    "hygongenuine": "HygonGenuine",
    "zhaoxin": "CentaurHauls",
    "centaurhauls": "CentaurHauls",
}


def cpu_vendor_id(name: str) -> str:
    """``vendor_id`` for a vendor name (``amd``, ``Intel`` ...); unknown names unchanged."""
    return CPU_VENDOR_IDS.get(name.strip().lower(), name)


class IommuMode(StrEnum):
    """How DMA from devices is translated."""

    OFF = "off"
    #: DMA remapping on (dma-iommu); the IOMMU driver also asks for ACS.
    TRANSLATED = "translated"
    #: IOMMU present but in pass-through (identity) mode, e.g. ``iommu=pt``.
    PASSTHROUGH = "passthrough"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Platform:
    """CPU, kernel and boot parameters.

    ``cpu_vendor`` is ``/proc/cpuinfo``'s ``vendor_id`` (``AuthenticAMD``,
    ``GenuineIntel``, ``HygonGenuine``...), ``cpu_family`` its decimal
    ``cpu family``. ``arch`` is ``uname -m``. ``kernel`` is the release string
    (``uname -r``) or ``None`` when the source does not say. ``facts`` says
    how the CPU, kernel, IOMMU and command line are known.
    """

    arch: str = "x86_64"
    cpu_vendor: str = "GenuineIntel"
    cpu_family: int = 6
    cpu_model_name: str | None = None
    kernel: str | None = None
    iommu: IommuMode = IommuMode.UNKNOWN
    cmdline: str = ""
    hostname: str | None = None
    facts: PlatformFacts = field(default_factory=PlatformFacts)

    @property
    def is_x86(self) -> bool:
        """x86 (32 or 64 bit), where ``cpu_supports_p2pdma()`` can be true."""
        return self.arch in ("x86_64", "i386", "i486", "i586", "i686", "x86", "amd64")

    def cmdline_params(self) -> list[str]:
        """The command line split as the kernel splits it (quotes honoured)."""
        try:
            return shlex.split(self.cmdline)
        except ValueError:
            return self.cmdline.split()

    def pci_options(self) -> list[str]:
        """Every option of every ``pci=`` parameter, in order.

        The kernel's ``pci_setup()`` splits the value of ``pci=`` on commas;
        each ``pci=`` on the line is handled in turn.
        """
        options: list[str] = []
        for param in self.cmdline_params():
            if param == "--":
                break  # what follows goes to init, not the kernel
            if param.startswith("pci="):
                options.extend(opt for opt in param[4:].split(",") if opt)
        return options

    @classmethod
    def unknown(cls, where: str, **known: object) -> Platform:
        """The default platform for a source that does not record it.

        ``where`` completes "... has no CPU" ("an lspci -tv dump"); the CPU,
        IOMMU and command line are marked assumed, the kernel release left
        for the session to choose (and mark). ``known`` sets fields the source
        does record (``hostname``, ``kernel``...).
        """
        facts = PlatformFacts(
            cpu=Fact.assumed(
                f"{where} has no CPU; GenuineIntel family 6 (not AMD Zen), p2pview's default"
            ),
            iommu=Fact.assumed(f"{where} does not say whether an IOMMU translates DMA"),
            cmdline=Fact.assumed(f"{where} has no kernel command line; taken as empty"),
        )
        return cls(**known).replace(facts=facts)  # type: ignore[arg-type]

    def replace(self, **changes: object) -> Platform:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
