"""PCI addresses: a function's BDF and a host bridge's root bus.

The text forms follow the kernel: ``pci_name()`` prints ``%04x:%02x:%02x.%d``
(so a 32-bit VMD domain prints as ``10000:00:04.0``) and a host bridge's sysfs
directory is ``pci%04x:%02x``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pview.model.errors import InputError

_BDF_RE = re.compile(
    r"^(?:(?P<domain>[0-9a-fA-F]{1,8}):)?(?P<bus>[0-9a-fA-F]{1,2}):"
    r"(?P<dev>[0-9a-fA-F]{1,2})\.(?P<fn>[0-7])$"
)
_ROOT_RE = re.compile(r"^(?:pci)?(?P<domain>[0-9a-fA-F]{1,8}):(?P<bus>[0-9a-fA-F]{1,2})$")


class AddressError(InputError):
    """A PCI address that does not parse or is out of range."""


@dataclass(frozen=True, order=True, slots=True)
class BDF:
    """A PCI function address: domain, bus, device and function.

    Ordering is numeric (domain, bus, device, function), which is the order
    ``lspci`` and the kernel's bus scan list functions in.
    """

    domain: int
    bus: int
    dev: int
    fn: int

    def __post_init__(self) -> None:
        if not (0 <= self.domain <= 0xFFFFFFFF):
            raise AddressError(f"PCI domain {self.domain:#x} out of range")
        if not (0 <= self.bus <= 0xFF):
            raise AddressError(f"PCI bus {self.bus:#x} out of range (0-ff)")
        if not (0 <= self.dev <= 0x1F):
            raise AddressError(f"PCI device {self.dev:#x} out of range (0-1f)")
        if not (0 <= self.fn <= 7):
            raise AddressError(f"PCI function {self.fn} out of range (0-7)")

    @classmethod
    def parse(cls, text: str) -> BDF:
        """Parse ``[DDDD:]BB:DD.F`` (hex; the domain defaults to 0)."""
        m = _BDF_RE.match(text.strip())
        if m is None:
            raise AddressError(f"not a PCI address: {text!r} (expected [DDDD:]BB:DD.F)")
        return cls(
            int(m["domain"] or "0", 16), int(m["bus"], 16), int(m["dev"], 16), int(m["fn"], 16)
        )

    @property
    def devfn(self) -> int:
        """The kernel's ``devfn``: ``PCI_DEVFN(dev, fn)``."""
        return (self.dev << 3) | self.fn

    @property
    def root_bus(self) -> RootBus:
        """The bus this function sits on, as a (domain, bus) pair."""
        return RootBus(self.domain, self.bus)

    def short(self) -> str:
        """``BB:DD.F`` when the domain is 0, else the full name."""
        return str(self)[5:] if self.domain == 0 else str(self)

    def __str__(self) -> str:
        return f"{self.domain:04x}:{self.bus:02x}:{self.dev:02x}.{self.fn:x}"

    def __repr__(self) -> str:
        return f"BDF('{self}')"


@dataclass(frozen=True, order=True, slots=True)
class RootBus:
    """A bus number within a domain; for host bridges, the root bus they own."""

    domain: int
    bus: int

    @classmethod
    def parse(cls, text: str) -> RootBus:
        """Parse ``pciDDDD:BB`` or ``DDDD:BB``."""
        m = _ROOT_RE.match(text.strip())
        if m is None:
            raise AddressError(f"not a root bus: {text!r} (expected pciDDDD:BB or DDDD:BB)")
        bus = int(m["bus"], 16)
        return cls(int(m["domain"], 16), bus)

    def __str__(self) -> str:
        return f"pci{self.domain:04x}:{self.bus:02x}"

    def __repr__(self) -> str:
        return f"RootBus('{self}')"
