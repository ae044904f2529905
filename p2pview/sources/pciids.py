"""Vendor, device, subsystem and class names from the pci.ids database.

The names come from the system's ``pci.ids`` (``/usr/share/misc/pci.ids`` or
``/usr/share/hwdata/pci.ids``, what ``lspci`` reads) when it is installed, and
otherwise from a small subset bundled with p2pview (``p2pview/data/
pci.ids.subset``: the vendors and devices of the bundled topologies and test
data, plus the names of the common GPU, NIC, NVMe and switch vendors). Nothing
is ever fetched from the network.

The environment variable ``P2PVIEW_PCI_IDS`` overrides the search: a path to
a pci.ids file, or ``bundled`` for the bundled subset (tests and snapshots use
it so that their output does not depend on the host's pci.ids version).

Parsing is lazy: loading reads the file and indexes its vendor lines with one
regular expression (about 10 ms for the full 1.4 MB file); a vendor's devices
are parsed the first time one of them is asked for.

Running ``python -m p2pview.sources.pciids PCI_IDS SOURCE...`` writes a subset
of ``PCI_IDS`` that keeps the IDs found in the SOURCEs (how the bundled subset
is made).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

from p2pview.model import PciDevice
from p2pview.sources.packaged import package_file

#: The environment variable that chooses the pci.ids file (a path, or ``bundled``).
ENV_VAR = "P2PVIEW_PCI_IDS"
#: Where distributions install pci.ids, in the order ``lspci`` looks.
SYSTEM_PATHS = (
    Path("/usr/share/misc/pci.ids"),
    Path("/usr/share/hwdata/pci.ids"),
    Path("/usr/share/pci.ids"),
)
#: The name of the bundled subset inside the ``p2pview.data`` directory.
BUNDLED_NAME = "pci.ids.subset"
#: What :attr:`PciNames.origin` says for the bundled subset.
BUNDLED_ORIGIN = "bundled pci.ids subset"
#: The value an unknown vendor or device ID keeps (config space reads ``ffff``
#: where there is no function; pci.ids calls vendor ffff "Illegal Vendor ID").
UNKNOWN_ID = 0xFFFF

_VENDOR_LINE = re.compile(r"^([0-9a-fA-F]{4})  (.*)$", re.MULTILINE)
_DEVICE_LINE = re.compile(r"^\t([0-9a-fA-F]{4})  (.*)$")
_SUBSYSTEM_LINE = re.compile(r"^\t\t([0-9a-fA-F]{4}) ([0-9a-fA-F]{4})  (.*)$")
_CLASS_LINE = re.compile(r"^C ([0-9a-fA-F]{2})  (.*)$")
_SUBCLASS_LINE = re.compile(r"^\t([0-9a-fA-F]{2})  (.*)$")
_PROGIF_LINE = re.compile(r"^\t\t([0-9a-fA-F]{2})  (.*)$")
# Company-form words that make vendor names long without telling devices apart.
_VENDOR_SUFFIX = re.compile(
    r"(?:,|\s)+(?:Corporation|Corp\.?|Incorporated|Inc\.?|Co\.?|Ltd\.?|Limited|LLC|PLC|"
    r"GmbH|AG|and subsidiaries|Technologies|Technology|Electronics|Semiconductor|Group|"
    r"Communications|Systems)\s*$",
    re.IGNORECASE,
)
_BRACKETED = re.compile(r"\[([^\]]+)\]\s*$")


@dataclass
class _Device:
    name: str
    subsystems: dict[tuple[int, int], str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _VendorBlock:
    name: str
    start: int  # offset just after the vendor line
    end: int  # offset of the next vendor line (or of the class section)


class PciNames:
    """Names from one pci.ids text, looked up lazily.

    Use :meth:`load` to get the system's (or the bundled) database, cached;
    :meth:`from_text` and :meth:`from_path` build one from given text.
    """

    def __init__(self, text: str, origin: str) -> None:
        self.origin = origin
        self._text = text
        self._vendors: dict[int, _VendorBlock] | None = None
        self._devices: dict[int, dict[int, _Device]] = {}
        self._classes: dict[tuple[int, ...], str] | None = None
        self._vendors_by_name: dict[str, tuple[int, ...]] | None = None
        self._devices_by_name: dict[int, dict[str, tuple[int, ...]]] = {}

    # -- building -------------------------------------------------------------

    @classmethod
    def from_text(cls, text: str, origin: str = "<text>") -> PciNames:
        """A database over ``text`` in pci.ids format."""
        return cls(text, origin)

    @classmethod
    def from_path(cls, path: Path) -> PciNames:
        """A database read from ``path`` (bytes that are not UTF-8 are replaced)."""
        return cls(path.read_bytes().decode("utf-8", errors="replace"), str(path))

    @classmethod
    def empty(cls) -> PciNames:
        """A database that knows no names (when no pci.ids can be read at all)."""
        return cls("", "no pci.ids")

    @classmethod
    def load(cls, path: Path | str | None = None) -> PciNames:
        """The database at ``path``, else the one :func:`find_pci_ids` picks; cached.

        A file that cannot be read falls back to the bundled subset.
        """
        if path is None:
            chosen = find_pci_ids()
            return _load_cached(None if chosen is None else str(chosen))
        return _load_cached(str(path))

    # -- lookups ----------------------------------------------------------------

    def vendor(self, vendor: int) -> str | None:
        """The vendor's name, e.g. ``Intel Corporation``."""
        block = self._vendor_index().get(vendor)
        return None if block is None else block.name

    def device(self, vendor: int, device: int) -> str | None:
        """The device's name, e.g. ``GA100 [A100 PCIe 80GB]``."""
        found = self._devices_of(vendor).get(device)
        return None if found is None else found.name

    def vendors_named(self, name: str) -> tuple[int, ...]:
        """The vendor IDs whose name is exactly ``name`` (a few names are listed twice)."""
        if self._vendors_by_name is None:
            index: dict[str, list[int]] = {}
            for vendor, block in self._vendor_index().items():
                index.setdefault(block.name, []).append(vendor)
            self._vendors_by_name = {k: tuple(sorted(v)) for k, v in index.items()}
        return self._vendors_by_name.get(name, ())

    def devices_named(self, vendor: int, name: str) -> tuple[int, ...]:
        """The device IDs of ``vendor`` whose name is exactly ``name``.

        Names repeat within a vendor (``High Definition Audio Controller``
        under NVIDIA names dozens of IDs), so this is a tuple.
        """
        index = self._devices_by_name.get(vendor)
        if index is None:
            found: dict[str, list[int]] = {}
            for device, entry in self._devices_of(vendor).items():
                found.setdefault(entry.name, []).append(device)
            index = {k: tuple(sorted(v)) for k, v in found.items()}
            self._devices_by_name[vendor] = index
        return index.get(name, ())

    def subsystem(
        self, vendor: int, device: int, subsystem_vendor: int, subsystem_device: int
    ) -> str | None:
        """The subsystem's name as listed under the device, e.g. ``PCIe 80GB``."""
        found = self._devices_of(vendor).get(device)
        if found is None:
            return None
        return found.subsystems.get((subsystem_vendor, subsystem_device))

    def class_name(self, class_code: int) -> str | None:
        """The class name ``lspci`` prints: the subclass's, else the base class's.

        ``0x010802`` gives ``Non-Volatile memory controller``, ``0x060400``
        gives ``PCI bridge``; :meth:`class_names` has the prog-if's too.
        """
        base, sub, _ = self.class_names(class_code)
        return sub if sub is not None else base

    def class_names(self, class_code: int) -> tuple[str | None, str | None, str | None]:
        """Names of the base class, subclass and programming interface of a class code."""
        classes = self._class_index()
        base, sub, prog_if = (class_code >> 16) & 0xFF, (class_code >> 8) & 0xFF, class_code & 0xFF
        return (
            classes.get((base,)),
            classes.get((base, sub)),
            classes.get((base, sub, prog_if)),
        )

    def short_vendor(self, vendor: int) -> str | None:
        """A short vendor name for narrow places: ``AMD``, ``Intel``, ``Mellanox``."""
        name = self.vendor(vendor)
        return None if name is None else shorten_vendor(name)

    def describe(self, dev: PciDevice) -> str:
        """``vendor device`` as ``lspci`` prints it, with the IDs where a name is missing.

        IDs the source did not give (:func:`known_ids`) are never looked up:
        ``IDs unknown``, or ``NVIDIA Corporation, device ID unknown``.
        """
        known_vendor, known_device = known_ids(dev)
        vendor = None if known_vendor is None else self.vendor(known_vendor)
        if known_device is None:
            return _device_id_unknown(vendor, known_vendor)
        device = None if known_vendor is None else self.device(known_vendor, known_device)
        if vendor is None:
            v = "????" if known_vendor is None else f"{known_vendor:04x}"
            return f"Device {v}:{known_device:04x}"
        return f"{vendor} {device if device is not None else f'Device {known_device:04x}'}"

    def short(self, dev: PciDevice) -> str | None:
        """A short name for a tree row (``NVIDIA GA100 [A100 PCIe 80GB]``); ``None`` if unknown.

        IDs the source did not give say so: ``IDs unknown``, ``NVIDIA, device ID unknown``.
        """
        known_vendor, known_device = known_ids(dev)
        vendor = None if known_vendor is None else self.short_vendor(known_vendor)
        if known_device is None:
            return _device_id_unknown(vendor, known_vendor)
        device = None if known_vendor is None else self.device(known_vendor, known_device)
        if vendor is None:
            return None
        return vendor if device is None else f"{vendor} {device}"

    def subsystem_text(self, dev: PciDevice) -> str | None:
        """The subsystem as a phrase: its name if listed, else the subsystem vendor's name."""
        sv, sd = dev.subsystem_vendor, dev.subsystem_device
        if sv is None or sd is None:
            return None
        named = self.subsystem(dev.vendor, dev.device, sv, sd)
        if named is not None:
            return named
        vendor = self.vendor(sv)
        return None if vendor is None else f"{vendor} Device {sd:04x}"

    # -- parsing ----------------------------------------------------------------

    def _class_section_start(self) -> int:
        text = self._text
        if text.startswith("C "):
            return 0
        found = text.find("\nC ")
        return len(text) if found < 0 else found + 1

    def _vendor_index(self) -> dict[int, _VendorBlock]:
        if self._vendors is None:
            text = self._text
            limit = self._class_section_start()
            found = [m for m in _VENDOR_LINE.finditer(text, 0, limit)]
            index: dict[int, _VendorBlock] = {}
            for i, m in enumerate(found):
                end = found[i + 1].start() if i + 1 < len(found) else limit
                vendor = int(m.group(1), 16)
                # pci.ids lists each vendor once; keep the first if a file repeats one
                index.setdefault(vendor, _VendorBlock(m.group(2).strip(), m.end(), end))
            self._vendors = index
        return self._vendors

    def _devices_of(self, vendor: int) -> dict[int, _Device]:
        cached = self._devices.get(vendor)
        if cached is not None:
            return cached
        block = self._vendor_index().get(vendor)
        devices: dict[int, _Device] = {}
        if block is not None:
            current: _Device | None = None
            for line in self._text[block.start : block.end].splitlines():
                dm = _DEVICE_LINE.match(line)
                if dm is not None:
                    current = devices.setdefault(int(dm.group(1), 16), _Device(dm.group(2).strip()))
                    continue
                sm = _SUBSYSTEM_LINE.match(line)
                if sm is not None and current is not None:
                    key = (int(sm.group(1), 16), int(sm.group(2), 16))
                    current.subsystems.setdefault(key, sm.group(3).strip())
        self._devices[vendor] = devices
        return devices

    def _class_index(self) -> dict[tuple[int, ...], str]:
        """Class names keyed by (class,), (class, subclass) and (class, subclass, prog-if)."""
        if self._classes is None:
            classes: dict[tuple[int, ...], str] = {}
            base: int | None = None
            sub: int | None = None
            for line in self._text[self._class_section_start() :].splitlines():
                cm = _CLASS_LINE.match(line)
                if cm is not None:
                    base, sub = int(cm.group(1), 16), None
                    classes[(base,)] = cm.group(2).strip()
                    continue
                if base is None:
                    continue
                pm = _PROGIF_LINE.match(line)
                if pm is not None:
                    if sub is not None:
                        classes[(base, sub, int(pm.group(1), 16))] = pm.group(2).strip()
                    continue
                sm = _SUBCLASS_LINE.match(line)
                if sm is not None:
                    sub = int(sm.group(1), 16)
                    classes[(base, sub)] = sm.group(2).strip()
            self._classes = classes
        return self._classes


def _device_id_unknown(vendor: str | None, known_vendor: int | None) -> str:
    """How a function without a device ID is named: ``IDs unknown``, or its vendor's name and so."""
    if known_vendor is None:
        return "IDs unknown"
    return f"{vendor or f'vendor {known_vendor:04x}'}, device ID unknown"


def known_ids(dev: PciDevice) -> tuple[int | None, int | None]:
    """``(vendor, device)`` with ``None`` for an ID the source did not give.

    Only a function whose ``ids`` fact is assumed has unknown IDs; in it
    :data:`UNKNOWN_ID` stands for "not known" (see :mod:`p2pview.sources.names`).
    """
    if not dev.fact("ids").is_assumed:
        return dev.vendor, dev.device
    vendor = None if dev.vendor == UNKNOWN_ID else dev.vendor
    device = None if dev.device == UNKNOWN_ID else dev.device
    return vendor, device


def ids_text(dev: PciDevice) -> str:
    """``8086:2f00``; ``10de:????`` when only the vendor is known; ``IDs unknown``."""
    return dev.shown_ids


def shorten_vendor(name: str) -> str:
    """Drop the company form from a vendor name; prefer a bracketed short name.

    ``Advanced Micro Devices, Inc. [AMD/ATI]`` gives ``AMD/ATI``, ``Intel
    Corporation`` gives ``Intel``, ``Samsung Electronics Co Ltd`` gives ``Samsung``.
    """
    bracketed = _BRACKETED.search(name)
    if bracketed is not None:
        return bracketed.group(1).strip()
    short = name.strip()
    while True:
        cut = _VENDOR_SUFFIX.sub("", short).rstrip(" ,")
        if cut == short or not cut:
            return short
        short = cut


def bundled_path() -> Path | None:
    """The bundled subset's path, if it is installed."""
    candidate = package_file("data", BUNDLED_NAME)
    return candidate if candidate.is_file() else None


def find_pci_ids() -> Path | None:
    """The pci.ids to use: ``$P2PVIEW_PCI_IDS``, else the system's, else the bundled subset."""
    chosen = os.environ.get(ENV_VAR, "").strip()
    if chosen == "bundled":
        return bundled_path()
    if chosen:
        return Path(chosen)
    for path in SYSTEM_PATHS:
        if path.is_file():
            return path
    return bundled_path()


@lru_cache(maxsize=8)
def _load_cached(path: str | None) -> PciNames:
    if path is not None:
        try:
            names = PciNames.from_path(Path(path))
        except OSError:
            pass
        else:
            bundled = bundled_path()
            if bundled is not None and Path(path) == bundled:
                names.origin = BUNDLED_ORIGIN
            return names
    bundled = bundled_path()
    if bundled is None or (path is not None and Path(path) == bundled):
        return PciNames.empty()
    names = PciNames.from_path(bundled)
    names.origin = BUNDLED_ORIGIN
    return names


def clear_cache() -> None:
    """Forget loaded databases (after changing ``$P2PVIEW_PCI_IDS`` in tests)."""
    _load_cached.cache_clear()


# -- making the bundled subset ---------------------------------------------------------

#: Vendors whose names the subset keeps even when no bundled topology uses them:
#: GPU and accelerator, NIC, NVMe, PCIe switch, CPU/host-bridge and virtual-device makers.
COMMON_VENDORS = frozenset(
    {
        # GPUs and accelerators
        0x10DE, 0x1002, 0x1022, 0x8086, 0x1DA3, 0x1D94, 0x1ED5, 0x10EE,
        # NICs
        0x15B3, 0x14E4, 0x1425, 0x1924, 0x19EE, 0x177D, 0x1077, 0x10DF, 0x1DD8,
        0x8088, 0x1D6A, 0x11AB, 0x10EC, 0x19E5, 0x1137, 0x1DAD, 0x1FC9,
        # NVMe
        0x144D, 0x1344, 0x15B7, 0x1B96, 0x1BB1, 0x1E0F, 0x1179, 0x1C5C, 0x025E,
        0x1DE5, 0x1987, 0x126F, 0x1CC4, 0x1E4B, 0x1C58, 0x1DBE, 0x1E3B, 0x1E49,
        0x1DC5, 0xC0A9,
        # PCIe switches
        0x1000, 0x10B5, 0x11F8, 0x111D, 0x12D8, 0x1B21,
        # CPUs and host bridges, clouds and virtual devices
        0x1DEF, 0x17CB, 0x1DB7, 0x1D17, 0x1AE0, 0x1D0F, 0x1AF4, 0x1B36, 0x1414, 0x15AD,
    }
)  # fmt: skip


def make_subset(
    text: str,
    devices: Iterable[tuple[int, int]],
    subsystems: Iterable[tuple[int, int]] = (),
    vendors: Iterable[int] = COMMON_VENDORS,
    header: str = "",
) -> str:
    """A pci.ids text with only some entries of ``text``, in its order.

    Keeps the vendor line of every vendor in ``vendors`` or ``devices``, the
    device lines of ``devices``, the subsystem lines (under kept devices)
    whose ``(subsystem vendor, subsystem device)`` is in ``subsystems``, the
    vendor lines of subsystem vendors, and the whole class section.

    So that a name looked up in the subset (:mod:`p2pview.sources.names`)
    matches once only where it matches once in ``text``, it also keeps every
    device whose ``vendor device`` name is that of a kept device, and every
    vendor whose name equals a kept vendor's, or is a prefix of it, or has it
    as a prefix (``Broadcom`` and ``Broadcom / LSI``).
    """
    lines = text.splitlines()
    class_start = next((i for i, line in enumerate(lines) if line.startswith("C ")), len(lines))
    wanted_devices = _same_names(lines[:class_start], set(devices))
    wanted_subsystems = set(subsystems)
    wanted_vendors = {*vendors, *(v for v, _ in wanted_devices), *(v for v, _ in wanted_subsystems)}
    wanted_vendors = _prefix_vendors(lines[:class_start], wanted_vendors)
    out = [header.rstrip("\n") + "\n\n"] if header else []
    vendor: int | None = None
    keep_device = False
    for line in lines[:class_start]:
        vm = _VENDOR_LINE.match(line)
        if vm is not None:
            vendor = int(vm.group(1), 16)
            keep_device = False
            if vendor in wanted_vendors:
                out.append(line + "\n")
            continue
        dm = _DEVICE_LINE.match(line)
        if dm is not None:
            keep_device = vendor is not None and (vendor, int(dm.group(1), 16)) in wanted_devices
            if keep_device:
                out.append(line + "\n")
            continue
        sm = _SUBSYSTEM_LINE.match(line)
        if sm is not None and keep_device:
            subsystem = (int(sm.group(1), 16), int(sm.group(2), 16))
            if subsystem in wanted_subsystems:
                out.append(line + "\n")
    if class_start < len(lines):
        out.append("\n# List of known device classes, subclasses and programming interfaces\n\n")
        out.extend(line + "\n" for line in lines[class_start:] if not line.startswith("#"))
    return "".join(out)


def _entries(lines: list[str]) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    """Vendor names and device names of the vendor section's lines."""
    vendor_names: dict[int, str] = {}
    device_names: dict[tuple[int, int], str] = {}
    vendor: int | None = None
    for line in lines:
        if vm := _VENDOR_LINE.match(line):
            vendor = int(vm.group(1), 16)
            vendor_names.setdefault(vendor, vm.group(2).strip())
        elif (dm := _DEVICE_LINE.match(line)) and vendor is not None:
            device_names.setdefault((vendor, int(dm.group(1), 16)), dm.group(2).strip())
    return vendor_names, device_names


def _same_names(lines: list[str], devices: set[tuple[int, int]]) -> set[tuple[int, int]]:
    """``devices`` and every device whose ``vendor device`` name is one of theirs."""
    vendor_names, device_names = _entries(lines)

    def full(key: tuple[int, int]) -> str:
        return f"{vendor_names.get(key[0], '')} {device_names[key]}"

    wanted = {full(key) for key in devices if key in device_names}
    return devices | {key for key in device_names if full(key) in wanted}


def _space_prefixes(name: str) -> set[str]:
    """``name`` cut before each space, and ``name`` itself."""
    return {name[:i] for i, ch in enumerate(name) if ch == " "} | {name}


def _prefix_vendors(lines: list[str], vendors: set[int]) -> set[int]:
    """``vendors`` and every vendor whose name is, or starts, or is started by, one of theirs."""
    vendor_names, _ = _entries(lines)
    kept = {vendor_names[v] for v in vendors if v in vendor_names}
    starts: set[str] = set().union(*(_space_prefixes(n) for n in kept))
    return vendors | {
        v for v, name in vendor_names.items() if name in starts or _space_prefixes(name) & kept
    }


def _header_of(text: str) -> str:
    """The comment block at the top of a pci.ids (version, date, licence)."""
    head: list[str] = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            head.append(line)
            continue
        break
    while head and not head[-1].strip():
        head.pop()
    return "\n".join(head)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m p2pview.sources.pciids PCI_IDS SOURCE...``: print a subset to stdout."""
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) < 2:
        print("usage: python -m p2pview.sources.pciids PCI_IDS SOURCE...", file=sys.stderr)
        return 2
    from p2pview.sources import SourceError, load_source  # the readers, only when run

    text = Path(args[0]).read_text(encoding="utf-8", errors="replace")
    devices: set[tuple[int, int]] = set()
    subsystems: set[tuple[int, int]] = set()
    for spec in args[1:]:
        try:
            topology = load_source(spec).topology
        except (SourceError, ValueError, OSError) as exc:
            print(f"skipped {spec}: {exc}", file=sys.stderr)
            continue
        for dev in topology.devices:
            devices.add((dev.vendor, dev.device))
            if dev.subsystem_vendor is not None and dev.subsystem_device is not None:
                subsystems.add((dev.subsystem_vendor, dev.subsystem_device))
    header = (
        "# A subset of pci.ids, bundled with p2pview for hosts without one.\n"
        "# It keeps the vendors, devices and subsystems of p2pview's bundled topologies\n"
        "# and test data, the names of common GPU, NIC, NVMe and switch vendors, and\n"
        "# the device classes. Made with:\n"
        "#   python -m p2pview.sources.pciids /usr/share/misc/pci.ids \\\n"
        "#       topologies/*.toml generated:2000 <the files under tests/data>\n"
        "# from the pci.ids whose header follows. Like the original, this file can\n"
        "# be distributed under either the GNU General Public License (version 2 or\n"
        "# higher) or the 3-clause BSD License.\n"
        "#\n" + _header_of(text)
    )
    sys.stdout.write(make_subset(text, devices, subsystems, COMMON_VENDORS, header))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
