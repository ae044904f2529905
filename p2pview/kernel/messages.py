"""Kernel log lines, printed the way ``dev_printk()`` prints them."""

from __future__ import annotations

from dataclasses import dataclass

from p2pview.model import BDF


@dataclass(frozen=True, slots=True)
class KernelMessage:
    """One line the kernel prints.

    ``device`` is the function the line is printed on (``pci_warn(dev, ...)``),
    ``None`` for plain ``pr_*`` lines. ``driver`` is the bound driver's name:
    ``dev_driver_string()`` falls back to the bus name, ``pci``.
    """

    level: str
    device: BDF | None
    driver: str | None
    text: str

    def dmesg(self) -> str:
        """The line as ``dmesg`` shows it, without the timestamp."""
        if self.device is None:
            return self.text
        return f"{self.driver or 'pci'} {self.device}: {self.text}"

    def to_dict(self) -> dict[str, str | None]:
        """JSON form."""
        return {
            "level": self.level,
            "device": None if self.device is None else str(self.device),
            "text": self.text,
            "dmesg": self.dmesg(),
        }
