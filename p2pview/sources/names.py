"""IDs and class of a function from the names a dump prints instead of numbers.

``lspci -tv``, ``lspci -vvv`` without ``-nn`` and some ``lstopo`` output name
a function (``Intel Corporation Xeon E7 v3/Xeon E5 v3/Core i7 DMI2``) but give
no vendor or device ID, and ``lspci -t`` gives no class at all. The kernel's
host-bridge whitelist compares IDs, and ``p2pview compare`` looks for GPUs by
class, so a reader with names only calls :func:`with_names` for every
function. It:

* looks the name up in pci.ids (:mod:`p2pview.sources.pciids`, the same
  database lspci printed the name from): a vendor name and a device name that
  together match exactly one ``vvvv:dddd`` give both IDs, recorded as
  *inferred* ("the names ... through pci.ids"). lspci prints
  ``VENDOR Device dddd`` for a device its pci.ids does not list: the device ID
  is then read from the text and the vendor looked up by name. Anything that
  does not match exactly once stays unknown: the IDs keep the value
  :data:`UNKNOWN_ID` (``ffff``, what config space reads for "no function") and
  the fact is *assumed*, so no face shows or compares them as real IDs
  (:func:`known_ids`, :func:`ids_text`);
* infers the class from the words of the name when the dump prints none
  (:func:`class_from_name`): ``High Definition Audio`` is an audio device,
  ``GA100 [A100 PCIe 80GB]`` under NVIDIA is a GPU code name. The words are
  a short list of names pci.ids uses; the fact says which word decided.

pci.ids lists each device under one vendor; names repeat (dozens of NVIDIA
``High Definition Audio Controller`` IDs), and a few vendor names are
prefixes of others (``Broadcom`` and ``Broadcom / LSI``), which is why a
match must be unique over every way of splitting the text into vendor and
device.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from p2pview.model import Fact, PciDevice
from p2pview.sources.pciids import BUNDLED_ORIGIN, UNKNOWN_ID, PciNames, ids_text, known_ids

__all__ = [
    "UNKNOWN_ID",
    "NamedClass",
    "NamedIds",
    "class_from_name",
    "ids_from_name",
    "ids_text",
    "known_ids",
    "with_names",
]

_DEVICE_NUMBER_RE = re.compile(r"^(?P<vendor>.+) Device (?P<device>[0-9a-fA-F]{4})$")
_NUMBERS_RE = re.compile(r"^Device (?P<vendor>[0-9a-fA-F]{4}):(?P<device>[0-9a-fA-F]{4})$")
#: pci.ids names are short; a longer "name" is not one (and is not searched).
_LONGEST_NAME = 300


@dataclass(frozen=True, slots=True)
class NamedIds:
    """What a function's name says about its IDs.

    ``vendor``/``device`` are ``None`` when the name does not pin them;
    ``fact`` is the provenance to record on the function's ``ids``.
    """

    vendor: int | None
    device: int | None
    fact: Fact

    @property
    def complete(self) -> bool:
        """Both IDs are known."""
        return self.vendor is not None and self.device is not None


def _database(names: PciNames) -> str:
    return "the bundled pci.ids subset" if names.origin == BUNDLED_ORIGIN else "pci.ids"


def _split_points(text: str) -> list[tuple[str, str]]:
    """Every ``(vendor part, device part)`` split of ``text`` at a space."""
    return [(text[:i], text[i + 1 :]) for i, ch in enumerate(text) if ch == " " and i > 0]


def ids_from_name(
    text: str | None,
    source: str,
    *,
    vendor_name: str | None = None,
    device_name: str | None = None,
    names: PciNames | None = None,
) -> NamedIds:
    """The IDs a function's name pins through pci.ids.

    Args:
        text: the name as lspci prints it, vendor and device joined by a
            space (``NVIDIA Corporation GA100 [A100 PCIe 80GB]``).
        source: what the dump is and why it has no IDs, for the fact
            (``"lspci -tv without -nn prints names only"``).
        vendor_name: the vendor's name, when the format gives it apart
            (hwloc's ``PCIVendor``); then ``device_name`` is the device's.
        device_name: the device's name given apart (hwloc's ``PCIDevice``).
        names: the pci.ids database; the one :meth:`PciNames.load` picks by default.
    """
    db = PciNames.load() if names is None else names
    where = _database(db)
    if vendor_name is not None:
        shown = f"{vendor_name} {device_name}" if device_name else vendor_name
        splits = [(vendor_name, device_name or "")]
    else:
        shown = " ".join((text or "").split())
        splits = _split_points(shown)
    if not shown:
        return NamedIds(None, None, Fact.assumed(f"{source}; this function has no name either"))
    if len(shown) > _LONGEST_NAME:
        return NamedIds(None, None, Fact.assumed(f"{source}; the name is too long for pci.ids"))
    if m := _NUMBERS_RE.match(shown):
        # lspci's own form for a vendor its pci.ids does not list: the numbers are in the text.
        ids = int(m["vendor"], 16), int(m["device"], 16)
        return NamedIds(*ids, Fact.read(f"'{shown}'"))
    if vendor_name is None and (m := _DEVICE_NUMBER_RE.match(shown)):
        device = int(m["device"], 16)
        vendors = db.vendors_named(m["vendor"])
        if len(vendors) == 1:
            return NamedIds(
                vendors[0],
                device,
                Fact.inferred(
                    f"the vendor name '{m['vendor']}' through {where}; device ID"
                    f" {device:04x} as printed"
                ),
            )
        return NamedIds(
            None,
            device,
            Fact.assumed(
                f"{source}; the vendor name '{m['vendor']}' has"
                f" {'no' if not vendors else 'more than one'} entry in {where}, vendor ID unknown"
            ),
        )
    pairs: set[tuple[int, int]] = set()
    vendors_seen: set[int] = set()
    vendor_words: dict[int, str] = {}
    for vendor_part, device_part in splits:
        for vendor in db.vendors_named(vendor_part):
            vendors_seen.add(vendor)
            vendor_words.setdefault(vendor, vendor_part)
            for device in db.devices_named(vendor, device_part):
                pairs.add((vendor, device))
    if len(pairs) == 1:
        vendor, device = next(iter(pairs))
        vendor_part = vendor_words[vendor]
        device_part = shown[len(vendor_part) + 1 :] if vendor_name is None else device_name or ""
        return NamedIds(
            vendor,
            device,
            Fact.inferred(f"the names '{vendor_part}' / '{device_part}' through {where}"),
        )
    owners = {v for v, _ in pairs} or vendors_seen
    if len(owners) == 1:
        vendor = next(iter(owners))
        why = (
            f"{len(pairs)} devices of that vendor have this name"
            if pairs
            else "the device name is not in it"
        )
        return NamedIds(
            vendor,
            None,
            Fact.assumed(
                f"{source}; vendor {vendor:04x} from the name '{vendor_words[vendor]}' through"
                f" {where}, device ID unknown: {why}"
            ),
        )
    return NamedIds(None, None, Fact.assumed(f"{source}; no unique {where} match for '{shown}'"))


# -- class from the words of a name -------------------------------------------------------

#: (words, class code, what it is). Tried in order: the words of a GPU's
#: audio, USB and UCSI functions come before the GPU words, a bridge's
#: before the device words it may carry.
_CLASS_WORDS: tuple[tuple[re.Pattern[str], int, str], ...] = tuple(
    (re.compile(pattern, re.IGNORECASE), code, what)
    for pattern, code, what in (
        (r"\bUCSI\b", 0x0C8000, "a USB Type-C UCSI controller"),
        (r"\bxHCI\b|\bUSB ?3", 0x0C0330, "a USB xHCI controller"),
        (r"\bEHCI\b", 0x0C0320, "a USB EHCI controller"),
        (r"\bOHCI\b", 0x0C0310, "a USB OHCI controller"),
        (r"\bUHCI\b", 0x0C0300, "a USB UHCI controller"),
        (r"\bUSB\b", 0x0C0300, "a USB controller"),
        (r"\bAudio\b|\bAzalia\b", 0x040300, "an audio device"),
        (r"\bSMBus\b", 0x0C0500, "an SMBus controller"),
        (r"\bNVMe\b|\bNVM Express\b|Non-Volatile memory", 0x010802, "an NVMe controller"),
        (r"\bAHCI\b", 0x010601, "a SATA AHCI controller"),
        (r"\bSATA\b", 0x010600, "a SATA controller"),
        (r"\bRAID\b|\bMegaRAID\b", 0x010400, "a RAID controller"),
        (r"\bSAS\b|\bSAS-?[0-9]\b|Fusion-MPT", 0x010700, "a SAS controller"),
        (r"\bInfiniBand\b", 0x020700, "an InfiniBand controller"),
        (r"\bWireless\b|\bWi-?Fi\b|\b802\.11", 0x028000, "a wireless network controller"),
        (
            r"\bEthernet\b|\bGigabit\b|\b[0-9.]+ ?GbE\b|\bNetwork Connection\b|\bNIC\b",
            0x020000,
            "an Ethernet controller",
        ),
        (r"\bConnectX\b|\bNetwork\b", 0x028000, "a network controller"),
        (r"\bCardBus\b", 0x060700, "a CardBus bridge"),
        (r"\bLPC\b|\bISA Bridge\b|\beSPI\b", 0x060100, "an ISA/LPC bridge"),
        (
            r"\bHost Bridge\b|\bRoot Complex\b|\bDMI[23]?\b|\bto ESI Port\b|\bData Fabric\b",
            0x060000,
            "a host bridge",
        ),
        (
            r"\bRoot Port\b|\bUpstream Port\b|\bDownstream Port\b|\bPCI[e -]*(?:to-PCI )?Bridge\b"
            r"|\bPCI Express Switch\b|\bPCIe Switch\b",
            0x060400,
            "a PCI bridge",
        ),
        (r"\bNVSwitch\b|\bNon-Transparent\b|\bNTB\b", 0x068000, "a bridge device"),
        (r"\bVGA\b", 0x030000, "a VGA controller"),
        (r"\b3D controller\b", 0x030200, "a 3D controller"),
        (
            r"\bGPU\b|\bGraphics\b|\bGeForce\b|\bQuadro\b|\bTesla\b|\bTITAN\b|\bRadeon\b"
            r"|\bInstinct\b|\bFirePro\b|\bNavi\b|\bVega\b|\bArcturus\b|\bAldebaran\b",
            0x038000,
            "a display controller (GPU)",
        ),
        (r"\bGaudi\b|\bAccelerator\b|\bAI accelerator\b", 0x120000, "a processing accelerator"),
    )
)
#: NVIDIA GPU code names: G80, GK210GL, GP108, GV100, TU104GL, GA100, AD102GL, GH100, GB202 ...
_NVIDIA_GPU_RE = re.compile(r"\b(?:G[A-Z]{0,2}[0-9]{2,3}|TU[0-9]{3}|AD[0-9]{3})[A-Z]{0,3}\b")
NVIDIA = 0x10DE


@dataclass(frozen=True, slots=True)
class NamedClass:
    """What a function's name says about its class (``None``: nothing)."""

    class_code: int | None
    fact: Fact


def class_from_name(
    name: str | None, source: str, *, vendor: int | None = None, bridge: bool = False
) -> NamedClass:
    """The class the words of a name stand for, for a dump that prints no class.

    Args:
        name: the function's name (vendor and device, or the device's alone).
        source: what the dump is and why it has no class, for the fact.
        vendor: the vendor ID, when known (NVIDIA's GPU code names are read
            only under NVIDIA).
        bridge: the dump draws the function as a bridge (``lspci -t`` gives
            it a bus range): a PCI bridge unless its name says another bridge.
    """
    text = " ".join((name or "").split())
    for pattern, code, what in _CLASS_WORDS:
        m = pattern.search(text)
        if m is None or (bridge and code >> 16 != 0x06):
            continue
        return NamedClass(code, Fact.inferred(f"the word '{m.group(0)}' in the name: {what}"))
    if bridge:
        return NamedClass(0x060400, Fact.inferred("the dump shows it as a bridge: a PCI bridge"))
    if vendor == NVIDIA:
        m = _NVIDIA_GPU_RE.search(text)
        if m is not None:
            return NamedClass(
                0x038000,
                Fact.inferred(f"the NVIDIA GPU code name '{m.group(0)}': a display controller"),
            )
    if not text:
        return NamedClass(None, Fact.assumed(f"{source}; no name either: class unknown"))
    return NamedClass(
        None, Fact.assumed(f"{source}; no class word in the name '{text}': class unknown")
    )


def with_names(
    dev: PciDevice,
    source: str,
    *,
    ids_given: bool,
    class_given: bool,
    vendor_name: str | None = None,
    device_name: str | None = None,
    names: PciNames | None = None,
) -> PciDevice:
    """``dev`` with the IDs and class its name pins, and their provenance.

    Readers of formats that may print names instead of numbers call this for
    every function they build: with ``ids_given`` the IDs were read and are
    kept; otherwise they are looked up from ``dev.label`` (or
    ``vendor_name``/``device_name``). Likewise the class with ``class_given``.
    An unknown class stays 0 (unclassified).

    Args:
        dev: the function as read, ``vendor``/``device`` :data:`UNKNOWN_ID` when not given.
        source: what the dump is and why it lacks IDs or class, e.g.
            ``"lspci -tv without -nn prints names only"``.
        ids_given: the dump gave the IDs as numbers.
        class_given: the dump gave the class.
        vendor_name: the vendor's name, when the format gives it apart.
        device_name: the device's name, when the format gives it apart.
        names: the pci.ids database (default: :meth:`PciNames.load`).
    """
    db = PciNames.load() if names is None else names
    out = dev
    vendor: int | None = dev.vendor
    if not ids_given:
        found = ids_from_name(
            dev.label, source, vendor_name=vendor_name, device_name=device_name, names=db
        )
        vendor = found.vendor
        out = out.replace(
            vendor=UNKNOWN_ID if found.vendor is None else found.vendor,
            device=UNKNOWN_ID if found.device is None else found.device,
        ).with_fact("ids", found.fact)
    if not class_given:
        words = [f"{vendor_name} {device_name or ''}" if vendor_name is not None else dev.label]
        if not out.fact("ids").is_assumed:
            # IDs read or pinned: pci.ids' own names add words (lspci -tvn prints none)
            words.append(db.device(out.vendor, out.device))
        name = " ".join(w for w in words if w) or None
        found_class = class_from_name(name, source, vendor=vendor, bridge=dev.is_bridge)
        if found_class.class_code is not None:
            out = out.replace(class_code=found_class.class_code)
        out = out.with_fact("class_code", found_class.fact)
    return out
