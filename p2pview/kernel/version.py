"""Kernel release strings and the ordering of releases."""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pview.model.errors import InputError

_RELEASE_RE = re.compile(r"^v?(?P<major>\d+)\.(?P<minor>\d+)(?:\.(?P<patch>\d+))?(?P<rest>.*)$")

#: Names accepted for the newest tree modelled (the PCI maintainer tree).
NEXT_NAMES = ("next", "newest", "pci-next", "pci.git")


class VersionError(InputError):
    """A kernel version that cannot be understood."""


@dataclass(frozen=True, order=True, slots=True)
class KernelVersion:
    """A release as (major, minor, patch); ``next`` sorts after every release."""

    major: int
    minor: int
    patch: int = 0
    is_next: bool = False

    @classmethod
    def parse(cls, text: str) -> KernelVersion:
        """Parse ``6.12``, ``6.12.117``, ``5.15.0-91-generic``, ``7.2-rc3`` or ``next``."""
        cleaned = text.strip()
        if cleaned.lower() in NEXT_NAMES:
            return cls(999, 0, 0, True)
        m = _RELEASE_RE.match(cleaned)
        if m is None:
            raise VersionError(
                f"not a kernel version: {text!r} (expected X.Y, X.Y.Z, a uname -r string or 'next')"
            )
        return cls(int(m["major"]), int(m["minor"]), int(m["patch"] or 0))

    def __str__(self) -> str:
        if self.is_next:
            return "next"
        return f"{self.major}.{self.minor}" + (f".{self.patch}" if self.patch else "")

    @property
    def series(self) -> tuple[int, int]:
        """``(major, minor)``."""
        return (self.major, self.minor)
