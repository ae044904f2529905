"""A q35 QEMU machine that reproduces a topology as far as QEMU can.

:func:`build_machine` maps every function of SOURCE onto a QEMU device:

* root ports -> ``pcie-root-port`` (1b36:000c; ACS capability 0x005f, Control 0);
* switch upstream / downstream ports -> ``x3130-upstream`` / ``xio3130-downstream``
  (104c:8232 / 104c:8233; no ACS capability in QEMU 7.2 or 10.0). With
  ``dsp_acs`` (``--dsp-acs``: a QEMU built by tools/qemu-acs/build.sh, whose
  downstream ports get the root port's ACS capability) the downstream ports have
  ACS 0x005f too, ``disable-acs=off`` on their ``-device`` (an unpatched QEMU
  refuses the property, so a wrong binary fails loudly) and their ACS Control
  joins ``pci=config_acs=``;
* extra host bridges -> ``pxb-pcie`` with ``bus_nr`` (the pxb shows up as
  1b36:000b on bus 0);
* every endpoint -> an ``nvme`` controller, with a CMB (``cmb_size_mb``) when the
  source function is a p2pmem provider, without one otherwise (so each chain keeps
  its shape); on a root bus it becomes a root-complex integrated endpoint;
* the ACS Control of root ports -> ``pci=config_acs=`` on the kernel command line
  (v6.11+); a release without that parameter (before v6.11: 5.10, 6.1) gets
  ``p2pview_acs=BDF=CTRL,...`` instead, which the ``p2pview verify`` initramfs
  writes into each port's ACS Control through sysfs before anything evaluates a
  pair (the kernel caches a pair's map type at its first evaluation).

It then builds the topology the guest will have (guest BDFs, QEMU IDs, the q35
built-ins) as a p2pview :class:`~p2pview.model.Topology`, runs the engine on both
and lists every difference and every verdict it changes. All of this is
recorded in ``shared/spec/qemu-kernel-oracle.md`` [read] unless tagged.

Bus numbers are predicted by emulating SeaBIOS ``pci_bios_init_bus()``
(src/fw/pciinit.c: a depth-first walk of bus 0 in devfn order giving each bridge
the next free secondary bus, then every extra root bus in ascending ``bus_nr``)
[recalled; checked against the q35 captures in tests/data/qemu-guest-captures].
Linux on x86 keeps the firmware's numbering [inferred: no ``pci=assign-busses``].
"""

from __future__ import annotations

import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from p2pview.kernel import KernelTarget, MapType, prepare
from p2pview.kernel.decision import KernelState, whitelist_check
from p2pview.kernel.profiles import AcsParamForm
from p2pview.model import (
    BDF,
    Acs,
    AcsPresence,
    IommuMode,
    P2pMem,
    PciDevice,
    PcieType,
    Platform,
    RootBus,
    Topology,
)
from p2pview.model.errors import InputError
from p2pview.model.topology import HostBridge

#: QEMU ``-cpu`` models -> (``vendor_id``, family) as the guest's /proc/cpuinfo shows
#: them (target/i386/cpu.c builtin_x86_defs) [recalled; qemu64 and EPYC read in the notes].
CPU_MODELS: dict[str, tuple[str, int]] = {
    "qemu64": ("AuthenticAMD", 15),
    "kvm64": ("GenuineIntel", 15),
    "qemu32": ("GenuineIntel", 6),
    "max": ("AuthenticAMD", 15),
    "Opteron_G1": ("AuthenticAMD", 15),
    "Opteron_G2": ("AuthenticAMD", 15),
    "Opteron_G3": ("AuthenticAMD", 16),
    "Opteron_G4": ("AuthenticAMD", 21),
    "Opteron_G5": ("AuthenticAMD", 21),
    "EPYC": ("AuthenticAMD", 0x17),
    "EPYC-IBPB": ("AuthenticAMD", 0x17),
    "EPYC-Rome": ("AuthenticAMD", 0x17),
    "EPYC-Milan": ("AuthenticAMD", 0x19),
    "EPYC-Genoa": ("AuthenticAMD", 0x19),
    "Dhyana": ("HygonGenuine", 0x18),
    "Skylake-Server-v1": ("GenuineIntel", 6),
    "Skylake-Server": ("GenuineIntel", 6),
    "Skylake-Client": ("GenuineIntel", 6),
    "Cascadelake-Server": ("GenuineIntel", 6),
    "Icelake-Server": ("GenuineIntel", 6),
    "SapphireRapids": ("GenuineIntel", 6),
    "Haswell": ("GenuineIntel", 6),
    "Broadwell": ("GenuineIntel", 6),
}

# QEMU device IDs (hw/pci-host/q35.c, hw/isa/lpc_ich9.c, hw/ide/ich.c, hw/i2c/smbus_ich9.c,
# hw/pci-bridge/*.c, hw/nvme/ctrl.c) [recalled; 29c0/000b/000c/0010 read in the notes].
MCH = (0x8086, 0x29C0, 0x060000)
ICH9 = {0: (0x8086, 0x2918, 0x060100), 2: (0x8086, 0x2922, 0x010601), 3: (0x8086, 0x2930, 0x0C0500)}
PXB = (0x1B36, 0x000B, 0x060000)
ROOT_PORT = (0x1B36, 0x000C, 0x060400)
USP = (0x104C, 0x8232, 0x060400)
DSP = (0x104C, 0x8233, 0x060400)
NVME = (0x1B36, 0x0010, 0x010802)
#: ACS Capability of ``pcie-root-port`` (hw/pci/pcie.c pcie_acs_init: SV TB RR CR UF DT) [read].
ROOT_PORT_ACS_CAP = 0x005F
#: ACS Capability of ``xio3130-downstream`` patched by tools/qemu-acs (the same
#: pcie_acs_init, so the same bits for any downstream port) [read].
DSP_ACS_CAP = ROOT_PORT_ACS_CAP
#: The last bus-0 slot q35 keeps for the ICH9 functions (1f.0 LPC, 1f.2 AHCI, 1f.3 SMBus).
ICH9_SLOT = 0x1F
#: The QEMU ``-device`` driver of each role.
DRIVERS = {
    "pxb": "pxb-pcie",
    "rp": "pcie-root-port",
    "usp": "x3130-upstream",
    "dsp": "xio3130-downstream",
    "nvme": "nvme",
}
#: Kernel command line every guest gets.
BASE_CMDLINE = "console=ttyS0 panic=-1"
#: The parameter /init of ``p2pview verify`` reads for the ACS Control values to
#: write through sysfs (``BDF=CTRL,...``): Linux passes ``name=value`` words it
#: does not know to init's environment.
ACS_WRITE_PARAM = "p2pview_acs"
#: The release ``p2pview qemu`` judges both sides by unless told (tools/oracle-kernel/build.sh
#: builds it by default; ``p2pview verify`` reads the release from the image instead).
ORACLE_KERNEL = "6.12.117"
#: The BAR of QEMU's NVMe CMB (hw/nvme/ctrl.c ``NVME_CMB_BIR``) [recalled; the guest's
#: ``resource2`` is the CMB-sized 64-bit prefetchable BAR].
CMB_BAR = 2
#: Size of each NVMe namespace's backing file.
DISK_BYTES = 4 << 20


class MachineError(InputError):
    """SOURCE (or an option) cannot be expressed as a QEMU machine; the message is one line."""


@dataclass(frozen=True)
class QemuDevice:
    """One ``-device`` of the machine and the guest function it becomes.

    ``source`` is the SOURCE function it stands for (``None`` for the pxb
    devices, which SOURCE does not have). ``drive`` names the ``-drive`` an NVMe
    uses.
    """

    driver: str
    qid: str
    bus: str
    guest: BDF
    source: BDF | None
    props: tuple[tuple[str, str], ...] = ()
    drive: str | None = None

    def arg(self) -> str:
        """The ``-device`` value."""
        parts = [self.driver, f"id={self.qid}", f"bus={self.bus}"]
        parts.append(f"addr={self.guest.dev:02x}.{self.guest.fn:x}")
        parts.extend(f"{k}={v}" for k, v in self.props)
        return ",".join(parts)


@dataclass(frozen=True)
class Difference:
    """One way the QEMU machine differs from SOURCE; ``kind`` groups them."""

    kind: str
    text: str


@dataclass(frozen=True)
class VerdictChange:
    """A (provider, client) pair whose verdict differs between SOURCE and the guest."""

    provider: BDF
    client: BDF
    guest_provider: BDF
    guest_client: BDF
    source: tuple[str, int]
    guest: tuple[str, int]


@dataclass
class Machine:
    """The machine: devices, the guest topology, the BDF mapping and the differences."""

    source: Topology
    guest: Topology
    devices: list[QemuDevice]
    bdf_map: dict[BDF, BDF]
    cpu: str
    cmdline: str
    cmb_mb: int
    kernel: KernelTarget
    differences: list[Difference] = field(default_factory=list)
    changes: list[VerdictChange] = field(default_factory=list)
    pairs_compared: int = 0
    dsp_acs: bool = False

    @property
    def drives(self) -> list[str]:
        """Backing-file names, one per NVMe, in ``-device`` order."""
        return [f"{d.drive}.img" for d in self.devices if d.drive is not None]

    def qemu_args(
        self,
        kernel: str = "bzImage",
        initrd: str | None = None,
        disk_dir: str = ".",
        qemu: str = "qemu-system-x86_64",
        memory_mb: int = 512,
        extra_cmdline: str = "",
    ) -> list[str]:
        """The full argument vector (``qemu`` first)."""
        args = [qemu, "-machine", "q35", "-accel", "tcg", "-cpu", self.cpu]
        args += ["-m", str(memory_mb), "-smp", "1", "-nodefaults", "-no-reboot"]
        args += ["-nographic", "-serial", "mon:stdio", "-kernel", kernel]
        if initrd is not None:
            args += ["-initrd", initrd]
        line = self.cmdline if not extra_cmdline else f"{self.cmdline} {extra_cmdline}"
        args += ["-append", line]
        for dev in self.devices:
            if dev.drive is not None:
                path = f"{disk_dir.rstrip('/')}/{dev.drive}.img"
                args += ["-drive", f"if=none,id={dev.drive},file={path},format=raw"]
            args += ["-device", dev.arg()]
        return args

    def command_line(self, **kwargs: str) -> str:
        """:meth:`qemu_args` as one shell-quoted line."""
        return " ".join(shlex.quote(a) for a in self.qemu_args(**kwargs))  # type: ignore[arg-type]

    def guest_bdf(self, source: BDF) -> BDF | None:
        """Where a SOURCE function ends up in the guest (``None``: not reproduced)."""
        return self.bdf_map.get(source)


# -- classification -------------------------------------------------------------------


@dataclass
class _Node:
    """A guest function before its bus number is known."""

    role: str  # mch ich9 pxb rp usp dsp nvme
    source: BDF | None
    slot: int
    function: int
    children: list[_Node] = field(default_factory=list)
    cmb: bool = False
    multifunction: bool = False
    guest: BDF | None = None
    ich9_fn: int = 0


@dataclass
class _Root:
    source: RootBus | None
    bus_nr: int
    nodes: list[_Node]
    pxb: _Node | None = None


def _role(topo: Topology, dev: PciDevice, parent_role: str | None) -> str:
    """The QEMU device a SOURCE function becomes (raises for what QEMU cannot model)."""
    if dev.physfn is not None:
        raise MachineError(
            f"{dev.bdf} is an SR-IOV virtual function: QEMU 7.2 cannot create VFs for"
            " arbitrary devices, so the PF->VF pairs cannot be reproduced"
        )
    if dev.is_bridge:
        kind = dev.pcie_type
        if kind in (PcieType.PCI_BRIDGE, PcieType.PCIE_BRIDGE):
            raise MachineError(
                f"{dev.bdf} is a PCI/PCI-X bridge ({kind.token}): conventional PCI buses"
                " are not reproduced"
            )
        if kind is None:
            kind = {
                None: PcieType.ROOT_PORT,
                "rp": PcieType.UPSTREAM,
                "dsp": PcieType.UPSTREAM,
                "usp": PcieType.DOWNSTREAM,
            }.get(parent_role, PcieType.UPSTREAM)
        wanted = {
            PcieType.ROOT_PORT: (None,),
            PcieType.UPSTREAM: ("rp", "dsp"),
            PcieType.DOWNSTREAM: ("usp",),
        }
        if kind not in wanted or parent_role not in wanted[kind]:
            where = "a root bus" if parent_role is None else f"a {parent_role}"
            raise MachineError(
                f"{dev.bdf}: a {kind.token if kind else 'bridge'} on {where} has no QEMU"
                " equivalent (QEMU builds root ports on root buses, switch upstream ports"
                " below ports, downstream ports below upstream ports)"
            )
        return {PcieType.ROOT_PORT: "rp", PcieType.UPSTREAM: "usp", PcieType.DOWNSTREAM: "dsp"}[
            kind
        ]
    if parent_role is None and dev.class_code >> 8 == 0x0600:
        return "host"
    return "nvme"


def _group_slots(devs: Iterable[PciDevice]) -> dict[int, list[PciDevice]]:
    slots: dict[int, list[PciDevice]] = {}
    for dev in sorted(devs, key=lambda d: d.bdf):
        slots.setdefault(dev.bdf.dev, []).append(dev)
    return slots


def _functions(group: Sequence[PciDevice]) -> list[int]:
    """Guest function numbers for one slot: kept, or packed from 0 when .0 is missing.

    Linux scans functions 1-7 only when function 0 exists and says it is
    multi-function (drivers/pci/probe.c pci_scan_slot) [read].
    """
    numbers = [d.bdf.fn for d in group]
    if 0 in numbers and max(numbers) < 8:
        return numbers
    return list(range(len(group)))


class _Builder:
    def __init__(self, topo: Topology, cmb_mb: int) -> None:
        self.topo = topo
        self.cmb_mb = cmb_mb
        self.diffs: list[Difference] = []
        self.dropped: list[BDF] = []

    def note(self, kind: str, text: str) -> None:
        self.diffs.append(Difference(kind, text))

    def subtree(self, parent: PciDevice, parent_role: str) -> list[_Node]:
        kids = [self.topo[b] for b in self.topo.children(parent.bdf)]
        slots = _group_slots(kids)
        if parent_role in ("rp", "dsp") and any(s != 0 for s in slots):
            bad = next(b for s, g in slots.items() if s != 0 for b in [g[0].bdf])
            raise MachineError(
                f"{bad}: below the port {parent.bdf} only device 0 exists on a PCIe link"
                " (ARI functions beyond .7 are not reproduced)"
            )
        nodes: list[_Node] = []
        for slot, group in slots.items():
            if len(group) > 8:
                raise MachineError(f"{group[0].bdf}: more than 8 functions in one slot")
            nodes.extend(self.slot_nodes(slot, group, parent_role))
        return nodes

    def slot_nodes(
        self, slot: int, group: Sequence[PciDevice], parent_role: str | None
    ) -> list[_Node]:
        fns = _functions(group)
        if fns != [d.bdf.fn for d in group]:
            self.note(
                "bdf",
                f"slot {group[0].bdf} has no function 0: its functions become"
                f" .{', .'.join(str(f) for f in fns)} (Linux scans .1-.7 only after .0)",
            )
        nodes = []
        for dev, fn in zip(group, fns, strict=True):
            role = _role(self.topo, dev, parent_role)
            node = _Node(role, dev.bdf, slot, fn)
            if role == "nvme":
                node.cmb = dev.p2pmem is not None
                self.describe_endpoint(dev, node.cmb)
            elif role != "host":
                node.children = self.subtree(dev, role)
            nodes.append(node)
        if len(nodes) > 1 or any(f != 0 for f in fns):
            nodes[0].multifunction = True
        return nodes

    def describe_endpoint(self, dev: PciDevice, cmb: bool) -> None:
        if (dev.vendor, dev.device, dev.class_code) == NVME and dev.p2pmem is not None:
            return
        what = "an NVMe with a CMB" if cmb else "an NVMe without CMB"
        self.note(
            "device",
            f"{dev.bdf} {dev.ids} (class {dev.class_code:06x}) becomes {what} (1b36:0010)",
        )
        if dev.p2pmem is not None and not dev.p2pmem.published:
            self.note(
                "device", f"{dev.bdf}: its p2pmem is unpublished in SOURCE; QEMU's is published"
            )


def _place_root0(builder: _Builder, devs: list[PciDevice]) -> list[_Node]:
    """Bus 0 of q35: 00:00.0 is the MCH and slot 1f the ICH9; the rest keeps its slot."""
    nodes: list[_Node] = [_Node("mch", None, 0, 0)]
    nodes += [_Node("ich9", None, ICH9_SLOT, fn, ich9_fn=fn) for fn in (0, 2, 3)]
    nodes[1].multifunction = True
    taken = {0, ICH9_SLOT}
    pending: list[list[PciDevice]] = []
    for slot, group in _group_slots(devs).items():
        rest = []
        for dev in group:
            if slot == 0 and dev.bdf.fn == 0 and dev.class_code >> 8 == 0x0600:
                nodes[0].source = dev.bdf  # the host bridge function itself
                builder.note(
                    "host-bridge",
                    f"{dev.bdf} {dev.ids} is the q35 MCH 8086:29c0 in the guest",
                )
                continue
            fn = dev.bdf.fn
            if slot == ICH9_SLOT and fn in ICH9 and dev.class_code >> 8 == ICH9[fn][2] >> 8:
                ich = next(n for n in nodes if n.role == "ich9" and n.ich9_fn == fn)
                ich.source = dev.bdf
                if (dev.vendor, dev.device) != ICH9[fn][:2]:
                    builder.note(
                        "device",
                        f"{dev.bdf} {dev.ids} is q35's built-in ICH9 function"
                        f" {ICH9[fn][0]:04x}:{ICH9[fn][1]:04x}",
                    )
                continue
            rest.append(dev)
        if not rest:
            continue
        if slot in taken:
            pending.append(rest)
        else:
            taken.add(slot)
            nodes += builder.slot_nodes(slot, rest, None)
    for group in pending:
        slot = _free_slot(taken)
        taken.add(slot)
        builder.note(
            "bdf",
            f"{group[0].bdf.short()}.. moves to slot 00:{slot:02x} (q35 keeps 00:00 and 00:1f)",
        )
        nodes += builder.slot_nodes(slot, group, None)
    return nodes


def _free_slot(taken: set[int]) -> int:
    for slot in range(1, ICH9_SLOT):
        if slot not in taken:
            return slot
    raise MachineError("bus 0 has no free slot left (q35 has 30 usable slots on its root bus)")


def _count_bridges(nodes: Iterable[_Node]) -> int:
    return sum(1 + _count_bridges(n.children) for n in nodes if n.role in ("rp", "usp", "dsp"))


def _number(roots: list[_Root]) -> None:
    """Give every node its guest BDF the way SeaBIOS ``pci_bios_init_bus()`` does."""
    pci_bus = 0

    def rec(bus: int, nodes: list[_Node]) -> None:
        nonlocal pci_bus
        ordered = sorted(nodes, key=lambda n: (n.slot, n.function))
        for node in ordered:
            node.guest = BDF(0, bus, node.slot, node.function)
        for node in ordered:
            if node.role in ("rp", "usp", "dsp"):
                pci_bus += 1
                if pci_bus > 0xFF:
                    raise MachineError("more than 256 buses needed")
                rec(pci_bus, node.children)

    for root in sorted(roots, key=lambda r: r.bus_nr):
        if root.bus_nr and root.bus_nr <= pci_bus:
            raise MachineError(f"bus_nr {root.bus_nr:#x} collides with a bus already in use")
        pci_bus = max(pci_bus, root.bus_nr)
        rec(root.bus_nr, root.nodes)


def _walk(nodes: Iterable[_Node]) -> Iterable[tuple[_Node, _Node | None]]:
    for node in nodes:
        yield node, None
        yield from _walk_under(node)


def _walk_under(parent: _Node) -> Iterable[tuple[_Node, _Node | None]]:
    for kid in parent.children:
        yield kid, parent
        yield from _walk_under(kid)


# -- the guest topology ---------------------------------------------------------------


def cpu_platform(cpu: str) -> tuple[str, int]:
    """(vendor_id, family) of a QEMU CPU model; raises :class:`MachineError` for unknown ones."""
    base = cpu.split(",")[0]
    if base not in CPU_MODELS:
        raise MachineError(
            f"--cpu {cpu!r}: unknown QEMU CPU model (known: {', '.join(sorted(CPU_MODELS))})"
        )
    return CPU_MODELS[base]


def _guest_device(
    node: _Node,
    parent: _Node | None,
    on_root: bool,
    cmb_mb: int,
    dsp_acs: bool = False,
    acs_ctrl: int = 0,
) -> PciDevice:
    assert node.guest is not None
    ids = {
        "mch": MCH,
        "pxb": PXB,
        "rp": ROOT_PORT,
        "usp": USP,
        "dsp": DSP,
        "nvme": NVME,
    }.get(node.role) or ICH9[node.ich9_fn]
    bridge = node.role in ("rp", "usp", "dsp")
    kind = {
        "rp": PcieType.ROOT_PORT,
        "usp": PcieType.UPSTREAM,
        "dsp": PcieType.DOWNSTREAM,
        # hw/pci/pcie.c pcie_endpoint_cap_init: RC_END on a PCIe root bus [recalled]
        "nvme": PcieType.RC_END if on_root else PcieType.ENDPOINT,
    }.get(node.role)
    # ``acs_ctrl``: what /init writes before the capture (releases without config_acs).
    if node.role == "rp":
        acs = Acs.present(ROOT_PORT_ACS_CAP, acs_ctrl, acs_ctrl)
    elif node.role == "dsp" and dsp_acs:
        acs = Acs.present(DSP_ACS_CAP, acs_ctrl, acs_ctrl)
    else:
        acs = Acs.absent()
    p2pmem = None
    if node.cmb:
        size = cmb_mb << 20
        p2pmem = P2pMem(size=size, available=size, published=True, bar=CMB_BAR)
    driver = {"rp": "pcieport", "usp": "pcieport", "dsp": "pcieport", "nvme": "nvme"}.get(node.role)
    return PciDevice(
        bdf=node.guest,
        vendor=ids[0],
        device=ids[1],
        class_code=ids[2],
        header_type=1 if bridge else 0,
        multifunction=node.multifunction,
        pcie_type=kind,
        acs=acs,
        parent=None if parent is None else parent.guest,
        driver=driver,
        p2pmem=p2pmem,
    )


# -- ACS through config_acs -----------------------------------------------------------


def _config_acs_flags(ctrl: int, cap: int) -> str:
    """``config_acs`` flags forcing ``ctrl`` on the bits of ``cap`` (rightmost = SV, bit 0).

    Starts at the highest bit set in ``ctrl``: the guest has no IOMMU, so QEMU's
    reset value 0 is what an 'x' (unchanged) leaves on the higher bits.
    """
    chars = []
    for bit in range(ctrl.bit_length() - 1, -1, -1):
        if not cap & (1 << bit):
            chars.append("x")
        else:
            chars.append("1" if ctrl & (1 << bit) else "0")
    return "".join(chars)


# -- the whole machine ----------------------------------------------------------------


def default_cpu(source: Topology) -> str:
    """The CPU model keeping SOURCE's ``cpu_supports_p2pdma()``: EPYC for AMD Zen, else qemu64."""
    plat = source.platform
    zen = plat.is_x86 and plat.cpu_vendor == "AuthenticAMD" and plat.cpu_family >= 0x17
    return "EPYC" if zen else "qemu64"


def build_machine(
    source: Topology,
    *,
    cpu: str | None = None,
    cmb_mb: int = 16,
    kernel: KernelTarget,
    extra_cmdline: str = "",
    dsp_acs: bool = False,
) -> Machine:
    """The q35 machine closest to ``source``, its guest topology and what differs.

    ``dsp_acs``: the QEMU has ACS on ``xio3130-downstream`` (tools/qemu-acs).

    Raises:
        MachineError: SOURCE holds something QEMU cannot express (one line).
    """
    if not 1 <= cmb_mb <= 4096:
        raise MachineError(f"--cmb-mb {cmb_mb}: expected 1 to 4096 MiB")
    cpu = cpu or default_cpu(source)
    vendor, family = cpu_platform(cpu)
    builder = _Builder(source, cmb_mb)
    src_state = prepare(source, kernel)

    # One guest root per SOURCE root bus: 0000:00 is q35's bus 0, the others pxb-pcie.
    by_root: dict[RootBus, list[PciDevice]] = {}
    for dev in source.devices:
        if dev.parent is None:  # the rest comes with its bridge
            by_root.setdefault(source.root_bus_of(dev.bdf), []).append(dev)
    roots: list[_Root] = []
    zero = RootBus(0, 0)
    roots.append(
        _Root(zero if zero in by_root else None, 0, _place_root0(builder, by_root.pop(zero, [])))
    )
    used = _count_bridges(roots[0].nodes)
    taken = {n.slot for n in roots[0].nodes}
    for root in sorted(by_root):
        top = by_root[root]
        nodes: list[_Node] = []
        for slot, group in _group_slots(top).items():
            keep = []
            for dev in group:
                if not dev.is_bridge and dev.class_code >> 8 == 0x0600:
                    builder.dropped.append(dev.bdf)
                    builder.note(
                        "host-bridge",
                        f"{dev.bdf} {dev.ids} (host bridge function) has no QEMU equivalent"
                        " on a pxb-pcie root bus and is left out",
                    )
                else:
                    keep.append(dev)
            if not keep:
                continue
            placed = builder.slot_nodes(slot, keep, None)
            ends = [n for n in placed if n.role == "nvme"]
            if ends:
                # QEMU: "Only PCI/PCIe bridges can be plugged into pxb-pcie"
                # (hw/pci-bridge/pci_expander_bridge.c) [read in its error message].
                # A root port of our own carries them, one link deeper.
                taken_fns = {n.function for n in placed if n.role != "nvme"}
                fn = next(f for f in range(8) if f not in taken_fns)
                port = _Node("rp", None, slot, fn, children=ends)
                for n in ends:
                    n.slot = 0
                    n.multifunction = False
                ends[0].multifunction = len(ends) > 1 or any(n.function for n in ends)
                placed = [n for n in placed if n.role != "nvme"] + [port]
                port.multifunction = len(placed) > 1 and fn == 0
                if len(placed) > 1:
                    first = min(placed, key=lambda n: n.function)
                    first.multifunction = True
                builder.note(
                    "device",
                    f"{', '.join(str(n.source) for n in ends)}: on a pxb-pcie root bus only"
                    " bridges are allowed, so QEMU gets an extra root port above"
                    " (one more link in each chain)",
                )
            nodes += placed
        bus_nr = max(root.bus, used + 1)
        if root.domain != 0:
            builder.note("bdf", f"{root}: domain {root.domain:04x} becomes domain 0000 (pxb-pcie)")
        if bus_nr != root.bus:
            builder.note("bdf", f"{root}: root bus {root.bus:02x} becomes bus {bus_nr:02x}")
        slot = _free_slot(taken)
        taken.add(slot)
        pxb = _Node("pxb", None, slot, 0)
        roots[0].nodes.append(pxb)
        roots.append(_Root(root, bus_nr, nodes, pxb))
        used = bus_nr + _count_bridges(nodes)
        if used > 0xFF:
            raise MachineError("more than 256 buses needed")
    _number(roots)

    # Devices, the guest topology and the BDF map.
    devices: list[QemuDevice] = []
    guest_devs: list[PciDevice] = []
    bdf_map: dict[BDF, BDF] = {}
    acs_params: list[str] = []
    acs_writes: list[str] = []
    # Releases before v6.11 have no pci=config_acs=: /init sets ACS Control instead.
    by_param = kernel.acs_params is not AcsParamForm.LEGACY
    qid = {"rp": 0, "usp": 0, "dsp": 0, "nvme": 0, "pxb": 0}
    chassis_slot = 0
    names: dict[int, str] = {}
    for groot in roots:
        bus_name = "pcie.0" if groot.pxb is None else names[id(groot.pxb)]
        for node, parent in _walk(groot.nodes):
            assert node.guest is not None
            cap = {"rp": ROOT_PORT_ACS_CAP, "dsp": DSP_ACS_CAP if dsp_acs else 0}.get(node.role, 0)
            want = 0
            if cap and node.source is not None:
                want = (src_state.acs[node.source].ctrl or 0) & cap
            if want and by_param:
                acs_params.append(f"{_config_acs_flags(want, cap)}@{node.guest}")
            elif want:
                acs_writes.append(f"{node.guest}={want:#06x}")
            written = 0 if by_param else want
            guest_devs.append(_guest_device(node, parent, parent is None, cmb_mb, dsp_acs, written))
            if node.source is not None:
                bdf_map[node.source] = node.guest
            if node.role in ("mch", "ich9"):
                continue
            name = f"{node.role}{qid[node.role]}"
            qid[node.role] += 1
            names[id(node)] = name
            props: list[tuple[str, str]] = []
            drive = None
            if node.role == "pxb":
                bus_nr = next(r.bus_nr for r in roots if r.pxb is node)
                props.append(("bus_nr", str(bus_nr)))
            elif node.role in ("rp", "dsp"):
                chassis_slot += 1
                props += [("chassis", "1"), ("slot", str(chassis_slot))]
                if node.role == "dsp" and dsp_acs:
                    props.append(("disable-acs", "off"))
            elif node.role == "nvme":
                drive = f"disk{qid['nvme'] - 1}"
                props += [("serial", f"p2pv{qid['nvme'] - 1:04d}"), ("drive", drive)]
                if node.cmb:
                    props.append(("cmb_size_mb", str(cmb_mb)))
            if node.multifunction:
                props.append(("multifunction", "on"))
            on = bus_name if parent is None else names[id(parent)]
            devices.append(
                QemuDevice(
                    DRIVERS[node.role], name, on, node.guest, node.source, tuple(props), drive
                )
            )
    cmdline = BASE_CMDLINE
    if acs_params:
        cmdline += " pci=config_acs=" + ";".join(acs_params)
    if acs_writes:
        cmdline += f" {ACS_WRITE_PARAM}=" + ",".join(acs_writes)
        builder.note(
            "acs",
            f"Linux {kernel.version} has no pci=config_acs= (v6.11): the ACS Control of"
            f" {', '.join(w.split('=')[0] for w in acs_writes)} is written from inside the"
            f" guest through sysfs before any pair is evaluated ({ACS_WRITE_PARAM}=)",
        )
    if extra_cmdline:
        cmdline += " " + extra_cmdline
    guest_platform = Platform(
        arch="x86_64",
        cpu_vendor=vendor,
        cpu_family=family,
        cpu_model_name=f"QEMU -cpu {cpu}",
        kernel=str(kernel.version),
        iommu=IommuMode.OFF,
        cmdline=cmdline,
        hostname="p2pview-guest",
    )
    hbs = [HostBridge(RootBus(0, r.bus_nr)) for r in roots]
    guest = Topology(
        guest_devs,
        hbs,
        guest_platform,
        name=f"{source.name or 'source'}-qemu",
        description=f"QEMU q35 machine reproducing {source.name or 'SOURCE'} (-cpu {cpu})",
        source="p2pview qemu",
    )
    machine = Machine(source, guest, devices, bdf_map, cpu, cmdline, cmb_mb, kernel)
    machine.dsp_acs = dsp_acs
    machine.differences = builder.diffs
    _compare(machine, src_state, prepare(guest, kernel))
    return machine


def _compare(machine: Machine, src: KernelState, gst: KernelState) -> None:
    """Add the platform-level differences and every pair whose verdict changes."""
    diffs = machine.differences
    # CPU
    if src.cpu_supports != gst.cpu_supports:
        plat = machine.source.platform
        diffs.append(
            Difference(
                "cpu",
                f"-cpu {machine.cpu} ({gst.topology.platform.cpu_vendor} family"
                f" {gst.topology.platform.cpu_family:#x}): cpu_supports_p2pdma() is"
                f" {str(gst.cpu_supports).lower()}; SOURCE's {plat.cpu_vendor} family"
                f" {plat.cpu_family:#x} ({plat.arch}) gives {str(src.cpu_supports).lower()}",
            )
        )
    if not machine.source.platform.is_x86:
        diffs.append(
            Difference("cpu", f"SOURCE is {machine.source.platform.arch}; the guest is x86_64")
        )
    if machine.source.platform.iommu in (IommuMode.TRANSLATED, IommuMode.PASSTHROUGH):
        diffs.append(
            Difference(
                "iommu",
                "SOURCE has an IOMMU; the guest has none (its ACS settings are reproduced"
                " through config_acs where QEMU has ACS)",
            )
        )
    # Host bridges
    inverse = {v: k for k, v in machine.bdf_map.items()}
    for hb in machine.guest.host_bridges:
        g = whitelist_check(gst, hb.root, True)
        first = next((d for d in machine.guest.root_bus_devices(hb.root)), None)
        src_root = machine.source.root_bus_of(inverse[first]) if first in inverse else None
        if src_root is None and hb.root.bus == 0:
            src_root = RootBus(0, 0) if RootBus(0, 0) in src.host_bridge_devs else None
        s = whitelist_check(src, src_root, True) if src_root is not None else None
        g_ids = f"{g.vendor:04x}:{g.device_id:04x}" if g.vendor is not None else "none"
        s_ids = "none" if s is None or s.vendor is None else f"{s.vendor:04x}:{s.device_id:04x}"
        if s is None or s.passed != g.passed or s_ids != g_ids:
            where = f"SOURCE {src_root}: {s_ids}" if s is not None else "not in SOURCE"
            diffs.append(
                Difference(
                    "host-bridge",
                    f"guest {hb.root}: whitelist device {g_ids}"
                    f" ({'whitelisted' if g.passed else 'not whitelisted'}); {where}"
                    + (
                        ""
                        if s is None
                        else f" ({'whitelisted' if s.passed else 'not whitelisted'})"
                    ),
                )
            )
    # ACS
    for src_bdf, g_bdf in sorted(machine.bdf_map.items()):
        s_acs, g_acs = src.acs.get(src_bdf), gst.acs.get(g_bdf)
        if s_acs is None or g_acs is None:
            continue
        if s_acs.redirect != g_acs.redirect:
            diffs.append(
                Difference(
                    "acs",
                    f"{src_bdf} -> {g_bdf}: ACS redirect bits {s_acs.redirect:#06x} in SOURCE,"
                    f" {g_acs.redirect:#06x} in the guest"
                    + (
                        (
                            " (QEMU's switch upstream ports and endpoints have no ACS capability)"
                            if machine.dsp_acs
                            else " (QEMU's switch ports and endpoints have no ACS capability;"
                            " --dsp-acs with tools/qemu-acs/build.sh's QEMU adds it on"
                            " downstream ports)"
                        )
                        if g_acs.presence is AcsPresence.ABSENT
                        else ""
                    ),
                )
            )
    # BDF renumbering
    moved = [(s, g) for s, g in sorted(machine.bdf_map.items()) if s != g]
    if moved:
        diffs.append(
            Difference(
                "bdf",
                f"{len(moved)} of {len(machine.bdf_map)} functions get another BDF (see the map)",
            )
        )
    added = [d.bdf for d in machine.guest.devices if d.bdf not in inverse]
    if added:
        diffs.append(
            Difference(
                "device",
                "the guest also has "
                + ", ".join(f"{b.short()} {machine.guest[b].ids}" for b in added)
                + " (q35 built-ins and pxb-pcie devices; they count as clients)",
            )
        )
    # Verdicts
    s_prov = [
        d.bdf for d in machine.source.devices if d.p2pmem is not None and d.bdf in machine.bdf_map
    ]
    s_cli = [d.bdf for d in machine.source.devices if d.bdf in machine.bdf_map]
    if not s_prov:
        return
    from p2pview.kernel.matrix import pair_matrix  # numpy: not on 'p2pview --help's path

    sm = pair_matrix(src, s_prov, s_cli)
    gm = pair_matrix(gst, [machine.bdf_map[b] for b in s_prov], [machine.bdf_map[b] for b in s_cli])
    for i, p in enumerate(s_prov):
        for j, c in enumerate(s_cli):
            a = (_name(sm.map_type(i, j)), int(sm.distance[i, j]))
            b = (_name(gm.map_type(i, j)), int(gm.distance[i, j]))
            machine.pairs_compared += 1
            if a != b:
                machine.changes.append(
                    VerdictChange(p, c, machine.bdf_map[p], machine.bdf_map[c], a, b)
                )


def _name(m: MapType | None) -> str:
    return "?" if m is None else m.value
