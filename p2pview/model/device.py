"""One PCI function as the kernel's P2PDMA code and its users see it.

Field meanings follow config space and sysfs; the spec sections named are in
``kernel-p2pdma.md`` (the project's kernel reference).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from enum import IntEnum, IntFlag, StrEnum

from p2pview.model.bdf import BDF
from p2pview.model.provenance import Basis, DeviceFacts, Fact


class PcieType(IntEnum):
    """Device/Port type from ``PCI_EXP_FLAGS`` bits 7:4 (spec section 6.3)."""

    ENDPOINT = 0x0
    LEG_END = 0x1
    ROOT_PORT = 0x4
    UPSTREAM = 0x5
    DOWNSTREAM = 0x6
    PCI_BRIDGE = 0x7
    PCIE_BRIDGE = 0x8
    RC_END = 0x9
    RC_EC = 0xA

    @property
    def token(self) -> str:
        """The lower-case name used in topology files and JSON."""
        return _PCIE_TOKENS[self]

    @property
    def kernel_name(self) -> str:
        """The kernel macro, e.g. ``PCI_EXP_TYPE_ROOT_PORT``."""
        return f"PCI_EXP_TYPE_{self.name}"

    @property
    def is_port(self) -> bool:
        """Root, switch upstream or switch downstream port."""
        return self in (PcieType.ROOT_PORT, PcieType.UPSTREAM, PcieType.DOWNSTREAM)

    @classmethod
    def from_token(cls, token: str) -> PcieType:
        """Look a type up by file token or by kernel name (any case)."""
        key = token.strip().lower().removeprefix("pci_exp_type_")
        for member, name in _PCIE_TOKENS.items():
            if key in (name, member.name.lower()):
                return member
        raise ValueError(
            f"unknown PCIe port type {token!r} (one of: {', '.join(_PCIE_TOKENS.values())})"
        )


_PCIE_TOKENS = {
    PcieType.ENDPOINT: "endpoint",
    PcieType.LEG_END: "legacy_endpoint",
    PcieType.ROOT_PORT: "root_port",
    PcieType.UPSTREAM: "upstream_port",
    PcieType.DOWNSTREAM: "downstream_port",
    PcieType.PCI_BRIDGE: "pcie_to_pci_bridge",
    PcieType.PCIE_BRIDGE: "pci_to_pcie_bridge",
    PcieType.RC_END: "rc_integrated_endpoint",
    PcieType.RC_EC: "rc_event_collector",
}


class AcsBits(IntFlag):
    """ACS Capability/Control bits (spec section 6.5); same layout in both registers."""

    SV = 0x0001
    TB = 0x0002
    RR = 0x0004
    CR = 0x0008
    UF = 0x0010
    EC = 0x0020
    DT = 0x0040


#: The bits ``pci_bridge_has_acs_redir()`` tests: RR | CR | EC (spec section 2.3).
ACS_REDIRECT_MASK = AcsBits.RR | AcsBits.CR | AcsBits.EC


def acs_bit_names(value: int) -> list[str]:
    """Names of the known ACS bits set in ``value``, lowest first."""
    return [bit.name or "" for bit in AcsBits if value & bit]


class AcsPresence(StrEnum):
    """Whether a function has the ACS extended capability."""

    PRESENT = "present"
    ABSENT = "absent"
    #: Config space beyond the first 64 bytes could not be read (non-root sysfs).
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class Acs:
    """The ACS capability: presence, Capability and Control registers.

    ``ctrl`` is the Control register before the kernel applies the ACS
    command-line parameters. For a running host that is the value read back:
    the parameters set bits to fixed values, so applying them again changes
    nothing. ``fw_ctrl`` is what firmware left before the kernel's default
    enabling (``pci_std_enable_acs()`` when an IOMMU asked for ACS); the
    v6.11+ parameter code restores bits from it. ``None`` means "same as
    ``ctrl``".
    """

    presence: AcsPresence
    cap: int | None = None
    ctrl: int | None = None
    fw_ctrl: int | None = None

    @classmethod
    def absent(cls) -> Acs:
        """No ACS capability on this function."""
        return cls(AcsPresence.ABSENT)

    @classmethod
    def unknown(cls) -> Acs:
        """ACS could not be read."""
        return cls(AcsPresence.UNKNOWN)

    @classmethod
    def present(cls, cap: int, ctrl: int, fw_ctrl: int | None = None) -> Acs:
        """An ACS capability with these register values."""
        fw = None if fw_ctrl is None else fw_ctrl & 0xFFFF
        return cls(AcsPresence.PRESENT, cap & 0xFFFF, ctrl & 0xFFFF, fw)

    @property
    def firmware_ctrl(self) -> int | None:
        """``fw_ctrl``, defaulting to ``ctrl``."""
        return self.ctrl if self.fw_ctrl is None else self.fw_ctrl

    @property
    def known(self) -> bool:
        """False when the capability list could not be read."""
        return self.presence is not AcsPresence.UNKNOWN

    @property
    def redirect_bits(self) -> int:
        """``ctrl & (RR|CR|EC)``; 0 when absent or unknown."""
        if self.presence is AcsPresence.PRESENT and self.ctrl is not None:
            return self.ctrl & ACS_REDIRECT_MASK
        return 0


class BarKind(StrEnum):
    """What a resource decodes."""

    MEM = "mem"
    IO = "io"


@dataclass(frozen=True, slots=True)
class Bar:
    """One memory or I/O resource of a function.

    ``index`` is the sysfs ``resource`` line number: 0-5 are BARs, 6 the ROM,
    7-12 the SR-IOV VF BARs, 13-16 bridge windows. ``start`` is the CPU
    physical address (``pci_resource_start``); ``bus_address`` is
    ``pci_bus_address`` when it differs from the host bridge's translation.
    """

    index: int
    start: int
    size: int
    kind: BarKind = BarKind.MEM
    prefetchable: bool = False
    is_64bit: bool = False
    bus_address: int | None = None

    @property
    def end(self) -> int:
        """Last byte, inclusive, as sysfs ``resource`` prints it."""
        return self.start + self.size - 1


@dataclass(frozen=True, slots=True)
class Link:
    """PCIe link state as sysfs prints it (speed strings kept verbatim)."""

    speed: str | None = None
    width: int | None = None
    max_speed: str | None = None
    max_width: int | None = None


@dataclass(frozen=True, slots=True)
class P2pMem:
    """The ``p2pmem/`` sysfs group of a provider (spec section 5).

    ``bar`` is the BAR the memory lives in when known (sysfs never says);
    ``bar_inferred`` marks a guess.
    """

    size: int
    available: int
    published: bool
    bar: int | None = None
    bar_inferred: bool = False


@dataclass(frozen=True, slots=True)
class PciDevice:
    """A PCI function.

    ``parent`` is the kernel's ``pci_upstream_bridge()`` (spec section 2.1):
    the bridge whose secondary bus the function sits on, ``None`` on a root
    bus; for a VF it is the PF's upstream bridge. ``physfn`` is set on SR-IOV
    virtual functions. ``notes`` records what could not be read. ``facts``
    says how each fact the decision uses is known (read, inferred, assumed);
    ``placeholder`` marks a function the source does not list at all.
    """

    bdf: BDF
    vendor: int
    device: int
    class_code: int = 0
    revision: int = 0
    header_type: int | None = 0
    multifunction: bool = False
    subsystem_vendor: int | None = None
    subsystem_device: int | None = None
    pcie_type: PcieType | None = None
    acs: Acs = field(default_factory=Acs.absent)
    parent: BDF | None = None
    physfn: BDF | None = None
    driver: str | None = None
    numa_node: int | None = None
    iommu_group: int | None = None
    link: Link = field(default_factory=Link)
    bars: tuple[Bar, ...] = ()
    p2pmem: P2pMem | None = None
    label: str | None = None
    notes: tuple[str, ...] = ()
    facts: DeviceFacts = field(default_factory=DeviceFacts)
    #: Not in the source: stands for a function the source leaves out (a bridge
    #: NCCL or lstopo skips, the host-bridge function hwloc drops); its address
    #: may be made up, and ``notes`` says what it stands for.
    placeholder: bool = False

    @property
    def ids(self) -> str:
        """``vvvv:dddd``."""
        return f"{self.vendor:04x}:{self.device:04x}"

    @property
    def shown_ids(self) -> str:
        """``vvvv:dddd`` for the faces: ``????`` for an ID the source did not give.

        Only a function whose ``ids`` fact is assumed can have unknown IDs; 0xffff
        (what a read of absent config space returns) stands for "not known" there.
        """
        if not self.fact("ids").is_assumed:
            return self.ids
        if self.vendor == 0xFFFF and self.device == 0xFFFF:
            return "IDs unknown"
        vendor = "????" if self.vendor == 0xFFFF else f"{self.vendor:04x}"
        device = "????" if self.device == 0xFFFF else f"{self.device:04x}"
        return f"{vendor}:{device}"

    @property
    def pcie_type_inferred(self) -> bool:
        """The port type was worked out from class and position, not read."""
        return self.facts.pcie_type.is_inferred

    def fact(self, name: str) -> Fact:
        """How the fact ``name`` (see :data:`~p2pview.model.provenance.DEVICE_FACTS`) is known.

        ACS that could not be read is always an assumption (no redirect), whatever
        the reader recorded: ``facts.acs.how`` only says why it is unknown.
        """
        fact = self.facts.get(name)
        unknown_acs = name == "acs" and self.acs.presence is AcsPresence.UNKNOWN
        if unknown_acs and fact.basis is not Basis.ASSUMED:
            return Fact.assumed(fact.how or "ACS was not read")
        return fact

    def with_fact(self, name: str, fact: Fact) -> PciDevice:
        """A copy with the provenance of one fact replaced."""
        return replace(self, facts=self.facts.with_fact(name, fact))

    @property
    def is_bridge(self) -> bool:
        """A type 1 (PCI-PCI) or type 2 (CardBus) header."""
        return self.header_type in (1, 2)

    @property
    def is_virtfn(self) -> bool:
        """An SR-IOV virtual function."""
        return self.physfn is not None

    @property
    def is_provider(self) -> bool:
        """Has a ``p2pmem/`` group (published or not)."""
        return self.p2pmem is not None

    @property
    def base_class(self) -> int:
        """Class code bits 23:16."""
        return (self.class_code >> 16) & 0xFF

    def replace(self, **changes: object) -> PciDevice:
        """A copy with some fields changed."""
        return replace(self, **changes)  # type: ignore[arg-type]
