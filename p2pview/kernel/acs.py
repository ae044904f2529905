"""ACS Control as the kernel leaves it after boot, command-line parameters included.

Models ``pci_enable_acs()``, ``pci_std_enable_acs()``, ``pci_disable_acs_redir()``
(v4.20-v6.10), ``__pci_config_acs()`` (v6.11+, before and after the fix
9cf8a952d57b) and ``pci_dev_str_match()`` from ``drivers/pci/pci.c``, as read
in 6952350/linux-6.18.y ``drivers/pci/pci.c`` @ 929249a1 and a pre-6.11 copy
(the project's kernel notes, items 1-2; spec section 6.6).

What p2pview cannot see, and so does not model: the Intel PCH ACS quirks
(``pci_dev_specific_enable_acs()`` / ``pci_dev_specific_disable_acs_redir()``),
which act on ports whose ACS is non-standard.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from p2pview.kernel.messages import KernelMessage
from p2pview.kernel.profiles import AcsParamForm, KernelTarget
from p2pview.model import ACS_REDIRECT_MASK, BDF, Acs, AcsBits, AcsPresence, PciDevice, Topology

#: ``pci_std_enable_acs()`` sets ``cap & (SV | RR | CR | UF)`` (TB only for
#: external-facing/untrusted ports or with ``pci=noats``, not modelled).
STD_ENABLE_BITS = AcsBits.SV | AcsBits.RR | AcsBits.CR | AcsBits.UF
_ALL_ACS_BITS = 0x7F  # SV..DT: what __pci_config_acs() accepts in a mask


@dataclass(frozen=True, slots=True)
class AcsEffect:
    """One function's ACS after boot, as ``pci_bridge_has_acs_redir()`` will read it.

    Attributes:
        redirect: the RR|CR|EC bits that are set (0 when absent).
        known: False when the capability could not be read and the command
            line did not settle the redirect bits either.
        ctrl: the Control register after boot, ``None`` when absent/unknown.
        params: which command-line parameters matched this function.
    """

    bdf: BDF
    presence: AcsPresence
    ctrl: int | None
    redirect: int
    known: bool
    params: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Entry:
    """A parsed match of one parameter against one function."""

    matched: bool
    mask: int = 0
    flags: int = 0


# -- pci_dev_str_match() ---------------------------------------------------------

_HEX = re.compile(r"[0-9a-fA-F]+")


def _scan_hex_fields(text: str, count: int) -> tuple[list[int], int] | None:
    """``sscanf("%hx:%hx...%n")``: ``count`` colon-separated hex fields and the length read."""
    values: list[int] = []
    pos = 0
    for i in range(count):
        if i:
            if pos >= len(text) or text[pos] != ":":
                return None
            pos += 1
        m = _HEX.match(text, pos)
        if m is None:
            return None
        values.append(int(m.group(), 16) & 0xFFFF)
        pos = m.end()
    return values, pos


_PATH_TOP4 = re.compile(r"^([0-9a-fA-F]+):([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-9a-fA-F]+)$")
_PATH_TOP3 = re.compile(r"^([0-9a-fA-F]+):([0-9a-fA-F]+)\.([0-9a-fA-F]+)$")
_PATH_HOP = re.compile(r"^/([0-9a-fA-F]+)\.([0-9a-fA-F]+)$")


def _match_path(topo: Topology, dev: PciDevice, path: str) -> int:
    """``pci_dev_str_match_path()``: 1 match, 0 no match, -1 parse error.

    ``/DD.F`` hops are checked right to left against the function and its
    upstream bridges by devfn only; the first element also by domain and bus.
    """
    node: PciDevice | None = dev
    work = path
    while "/" in work:
        cut = work.rindex("/")
        hop = _PATH_HOP.match(work[cut:])
        if hop is None:
            return -1
        assert node is not None
        if (
            node.bdf.devfn != ((int(hop[1], 16) << 3) | (int(hop[2], 16) & 7))
            or int(hop[2], 16) > 7
        ):
            return 0
        parent = topo.upstream_bridge(node.bdf)
        if parent is None:
            return 0
        node = topo[parent]
        work = work[:cut]
    top4 = _PATH_TOP4.match(work)
    if top4 is not None:
        seg, bus, slot, fn = (int(g, 16) for g in top4.groups())
    else:
        top3 = _PATH_TOP3.match(work)
        if top3 is None:
            return -1
        seg = 0
        bus, slot, fn = (int(g, 16) for g in top3.groups())
    assert node is not None
    b = node.bdf
    return int(seg == b.domain and bus == b.bus and b.devfn == (((slot << 3) | fn) & 0xFF))


def pci_dev_str_match(topo: Topology, dev: PciDevice, text: str) -> tuple[int, str]:
    """``pci_dev_str_match()``: (1 match / 0 no match / -1 parse error, rest of text).

    Forms: ``[<domain>:]<bus>:<dev>.<func>[/<dev>.<func>]*`` (up to the next
    ``;``) and ``pci:<vendor>:<device>[:<subvendor>:<subdevice>]`` where 0 in
    any field matches anything.
    """
    if text.startswith("pci:"):
        body = text[4:]
        parsed = _scan_hex_fields(body, 4) or _scan_hex_fields(body, 2)
        if parsed is None:
            return -1, text
        values, used = parsed
        vendor, device = values[0], values[1]
        sub_v, sub_d = (values[2], values[3]) if len(values) == 4 else (0, 0)
        rest = body[used:]
        ok = (
            (not vendor or vendor == dev.vendor)
            and (not device or device == dev.device)
            and (not sub_v or sub_v == dev.subsystem_vendor)
            and (not sub_d or sub_d == dev.subsystem_device)
        )
        return int(ok), rest
    end = text.find(";")
    path, rest = (text, "") if end < 0 else (text[:end], text[end:])
    ret = _match_path(topo, dev, path)
    return ret, rest if ret >= 0 else text


# -- the parameters ----------------------------------------------------------------


def last_pci_option(options: list[str], name: str) -> str | None:
    """The value of the last ``pci=NAME=value`` option (``pci_setup()`` overwrites)."""
    value = None
    for opt in options:
        if opt.startswith(name + "="):
            value = opt[len(name) + 1 :]
    return value


def _parse_flags(text: str) -> tuple[int, int] | None:
    """ACS flags such as ``10x``: rightmost character is bit 0 (SV). (mask, flags)."""
    mask = flags = 0
    for shift, ch in enumerate(reversed(text)):
        if ch == "0":
            mask |= 1 << shift
        elif ch == "1":
            mask |= 1 << shift
            flags |= 1 << shift
        elif ch not in "xX":
            return None
    return mask, flags


class _Log:
    """Boot messages, with ``pr_info_once`` lines kept once."""

    def __init__(self) -> None:
        self.lines: list[KernelMessage] = []
        self._once: set[str] = set()

    def once(self, level: str, text: str) -> None:
        if text not in self._once:
            self._once.add(text)
            self.lines.append(KernelMessage(level, None, None, text))

    def dev(self, level: str, dev: PciDevice, text: str) -> None:
        # Printed from pci_acs_init() while the device is enumerated, before any
        # driver binds, so dev_driver_string() gives the bus name, "pci".
        self.lines.append(KernelMessage(level, dev.bdf, None, text))


def _scan_disable(topo: Topology, dev: PciDevice, param: str, log: _Log, legacy: bool) -> bool:
    """The device loop of ``pci_disable_acs_redir()`` / ``__pci_config_acs(mask!=0)``."""
    p = param
    while p:
        ret, p = pci_dev_str_match(topo, dev, p)
        if ret < 0:
            if legacy:
                log.once("info", f"PCI: Can't parse disable_acs_redir parameter: {param}")
            else:
                log.once("info", "PCI: Can't parse ACS command line parameter")
            return False
        if ret == 1:
            return True
        if not p or p[0] not in ";,":
            return False
        p = p[1:]
    return False


def _scan_config(
    topo: Topology, dev: PciDevice, param: str, log: _Log, form: AcsParamForm
) -> _Entry:
    """The device loop of ``__pci_config_acs(mask == 0)`` (``pci=config_acs=``)."""
    p = param
    mask = flags = 0
    caps_word = "acs" if form is AcsParamForm.CONFIG_ACS_V1 else "ACS"
    while p:
        # v6.11 as merged did not reset the mask, so only the first entry's
        # flags were stripped; the fix parses flags for every entry.
        if not mask or form is AcsParamForm.CONFIG_ACS_FIXED:
            at = p.find("@")
            if at < 0:
                log.dev("err", dev, "ACS Flags missing")
                return _Entry(False)
            parsed = _parse_flags(p[:at])
            if parsed is None:
                log.dev("err", dev, "Invalid ACS flags... Ignoring")
                return _Entry(False)
            mask, flags = parsed
            p = p[at + 1 :]
        if mask & ~_ALL_ACS_BITS:
            log.dev("err", dev, "Invalid ACS flags specified")
            return _Entry(False)
        ret, p = pci_dev_str_match(topo, dev, p)
        if ret < 0:
            log.once("info", f"PCI: Can't parse {caps_word} command line parameter")
            return _Entry(False)
        if ret == 1:
            return _Entry(True, mask, flags)
        if not p or p[0] not in ";,":
            return _Entry(False)
        p = p[1:]
    return _Entry(False)


def _hardware(written: int, cap: int) -> int:
    """What reads back: ACS Control bits are writable only where the capability has them."""
    return written & cap & _ALL_ACS_BITS | (written & 0xFF80 if cap & 0x80 else 0)


def _apply(form: AcsParamForm, ctrl: int, fw: int, mask: int, flags: int) -> int:
    if form is AcsParamForm.CONFIG_ACS_V1:
        return ((ctrl & ~mask) | (fw & mask) | flags) & 0xFFFF
    return ((fw & ~mask) | (flags & mask)) & 0xFFFF


def effective_acs(
    topo: Topology, target: KernelTarget
) -> tuple[Mapping[BDF, AcsEffect], tuple[KernelMessage, ...]]:
    """Every function's ACS after boot, and the boot messages the parameters cause.

    The device's ``acs.ctrl`` is taken as the register before the parameters
    (see :class:`p2pview.model.Acs`); the parameters are applied in the
    kernel's order, ``disable_acs_redir`` then ``config_acs``, per function in
    enumeration (BDF) order.
    """
    options = topo.platform.pci_options()
    form = target.acs_params
    disable = last_pci_option(options, "disable_acs_redir")
    config = last_pci_option(options, "config_acs")
    log = _Log()
    if config is not None and form is AcsParamForm.LEGACY:
        log.once("err", f"PCI: Unknown option `config_acs={config}'")
        config = None
    out: dict[BDF, AcsEffect] = {}
    for dev in topo.devices:
        out[dev.bdf] = _one(topo, dev, form, disable, config, log)
    return out, tuple(log.lines)


def _one(
    topo: Topology,
    dev: PciDevice,
    form: AcsParamForm,
    disable: str | None,
    config: str | None,
    log: _Log,
) -> AcsEffect:
    acs = dev.acs
    present = acs.presence is AcsPresence.PRESENT
    known = acs.presence is not AcsPresence.UNKNOWN
    legacy = form is AcsParamForm.LEGACY
    # v6.11+ returns before parsing anything when there is no ACS capability.
    if not legacy and acs.presence is AcsPresence.ABSENT:
        return AcsEffect(dev.bdf, acs.presence, None, 0, True)

    ctrl = acs.ctrl if present and acs.ctrl is not None else 0
    fw = acs.firmware_ctrl if present and acs.firmware_ctrl is not None else ctrl
    cap = acs.cap if present and acs.cap is not None else 0
    params: list[str] = []
    # What the parameters force the redirect bits to, when the device's own
    # state is unknown: None = they do not settle it.
    forced_redirect: int | None = None

    if disable is not None and _scan_disable(topo, dev, disable, log, legacy):
        params.append("disable_acs_redir")
        if legacy:
            if present:
                ctrl = _hardware(ctrl & ~ACS_REDIRECT_MASK, cap)
                log.dev("info", dev, "disabled ACS redirect")
            elif known:
                log.dev(
                    "warn",
                    dev,
                    "cannot disable ACS redirect for this hardware as it does not have ACS"
                    " capabilities",
                )
            forced_redirect = 0
        else:
            mask, flags = int(ACS_REDIRECT_MASK), ~int(ACS_REDIRECT_MASK) & 0xFFFF
            written = _apply(form, ctrl, fw, mask, flags)
            if present:
                ctrl = _hardware(written, cap)
                log.dev("info", dev, _configured(form, written))
            forced_redirect = 0 if form is AcsParamForm.CONFIG_ACS_FIXED else None
    if config is not None:
        entry = _scan_config(topo, dev, config, log, form)
        if entry.matched:
            params.append("config_acs")
            written = _apply(form, ctrl, fw, entry.mask, entry.flags)
            if present:
                ctrl = _hardware(written, cap)
                log.dev("info", dev, _configured(form, written))
            covers = (entry.mask & ACS_REDIRECT_MASK) == ACS_REDIRECT_MASK
            if (
                form is AcsParamForm.CONFIG_ACS_FIXED
                and covers
                and not entry.flags & ACS_REDIRECT_MASK
            ):
                forced_redirect = 0
            elif form is AcsParamForm.CONFIG_ACS_FIXED or entry.flags & ACS_REDIRECT_MASK:
                forced_redirect = None

    if present:
        return AcsEffect(dev.bdf, acs.presence, ctrl, ctrl & ACS_REDIRECT_MASK, True, tuple(params))
    if known:  # absent, legacy form
        return AcsEffect(dev.bdf, acs.presence, None, 0, True, tuple(params))
    settled = forced_redirect is not None
    return AcsEffect(dev.bdf, acs.presence, None, forced_redirect or 0, settled, tuple(params))


def _configured(form: AcsParamForm, written: int) -> str:
    # 47c8846a49ba printed "0x%x"; a follow-up changed it to "%#06x". Tying the
    # change to the fix is [inferred].
    if form is AcsParamForm.CONFIG_ACS_V1:
        return f"Configured ACS to {written:#x}"
    return f"Configured ACS to {written:#06x}"


def std_enable_acs(acs: Acs) -> Acs:
    """``pci_std_enable_acs()``: what an active IOMMU driver makes of one function's ACS.

    ``ctrl |= cap & (SV | RR | CR | UF)``, starting from the firmware value;
    the firmware value is kept so that v6.11+ parameters can restore it.
    """
    if acs.presence is not AcsPresence.PRESENT or acs.cap is None:
        return acs
    fw = acs.firmware_ctrl or 0
    return Acs.present(acs.cap, fw | (acs.cap & STD_ENABLE_BITS), fw)


def with_iommu_acs(topo: Topology) -> Topology:
    """The topology as an IOMMU-enabled boot leaves ACS: every capable function gets RR|CR.

    ``pci_request_acs()`` from the IOMMU driver makes ``pci_enable_acs()``
    call ``pci_std_enable_acs()`` on every function with an ACS capability,
    endpoints included (kernel notes, item 2).
    """
    return topo.with_devices(d.replace(acs=std_enable_acs(d.acs)) for d in topo.devices)


def without_iommu_acs(topo: Topology) -> Topology:
    """Undo :func:`with_iommu_acs`: every function's ACS back to its firmware value."""
    edited = []
    for d in topo.devices:
        acs = d.acs
        if acs.presence is AcsPresence.PRESENT and acs.cap is not None and acs.fw_ctrl is not None:
            acs = Acs.present(acs.cap, acs.fw_ctrl, acs.fw_ctrl)
        edited.append(d.replace(acs=acs))
    return topo.with_devices(edited)
