"""How every face writes a size: one vocabulary, binary units.

``size_text`` is exact (a size in a message, a cap, an I/O length: a kernel
developer compares it with their own numbers), ``size_approx`` rounds to one
decimal (a BAR or pool in a tree row), ``size_badge`` is the short form of a
badge, and ``bytes_and_size`` gives the byte count with the exact unit.
"""

from __future__ import annotations

_EXACT = ((40, "TiB"), (30, "GiB"), (20, "MiB"), (10, "KiB"))
_UNITS = ("B", "KiB", "MiB", "GiB", "TiB", "PiB", "EiB")


def size_text(size: int) -> str:
    """``128 KiB``, ``1 GiB``, or ``8,704 bytes`` when no binary unit divides it."""
    for shift, unit in _EXACT:
        if size >= 1 << shift and size % (1 << shift) == 0:
            return f"{size >> shift} {unit}"
    return f"{size:,} bytes"


def size_approx(size: int) -> str:
    """``256 MiB``, ``16 KiB``, ``1.5 GiB``: binary units, at most one decimal."""
    value = float(size)
    unit = 0
    while value >= 1024 and unit < len(_UNITS) - 1:
        value /= 1024
        unit += 1
    if value == int(value):
        return f"{int(value)} {_UNITS[unit]}"
    return f"{value:.1f} {_UNITS[unit]}"


def size_badge(size: int) -> str:
    """``256M``, ``16K``, ``2G``: :func:`size_approx` for a badge."""
    return size_approx(size).replace(" ", "").replace("iB", "").replace("B", "")


def bytes_and_size(size: int) -> str:
    """``268,435,456 bytes (256 MiB)``; the unit only when it is exact."""
    exact = size_text(size)
    return f"{size:,} bytes" if exact.endswith("bytes") else f"{size:,} bytes ({exact})"
