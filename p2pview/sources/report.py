"""What a scan of a sysfs tree could not read (apart from its reader, which ``Loaded`` needs)."""

from __future__ import annotations

from dataclasses import dataclass, field

from p2pview.model import BDF


@dataclass
class ScanReport:
    """What the scan could not read, for the faces to say once."""

    unreadable_config: list[BDF] = field(default_factory=list)
    vanished: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
