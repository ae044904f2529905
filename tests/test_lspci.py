"""lspci readers: hex dumps, -t trees and -vvv text, checked against lspci's own readings.

The dumps come from the pciutils test suite (tests/data/pciutils/SOURCES.md);
golden/ holds what lspci 3.9.0 prints for them, so only
test_live_lspci_agrees needs the binary.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest
from builders import B

from p2pview.kernel import KernelTarget, MapType, calc_map_type_and_dist, prepare
from p2pview.model import AcsPresence, BarKind, PciDevice, PcieType, RootBus, Topology
from p2pview.sources.busranges import BridgeBuses, assign_parents
from p2pview.sources.checks import SourceError
from p2pview.sources.lspci import (
    parse_lspci_hex,
    parse_lspci_tree,
    parse_lspci_verbose,
    sniff_lspci,
    sniff_lspci_hex,
    sniff_lspci_tree,
    sniff_lspci_verbose,
)

DATA = Path(__file__).parent / "data" / "pciutils"
GOLDEN = DATA / "golden"
DUMPS = sorted(
    p.name for p in DATA.iterdir() if p.is_file() and p.name not in ("SOURCES.md", "COMMIT")
)
#: The -vv dumps, whose device blocks carry lspci's decoded text as well as the hex.
VERBOSE_DUMPS = ["cap-aer-root", "cap-dpc", "cap-dvsec-cxl", "cap-exp-lnkcap2", "cap-pcie-1"]
#: lspci prints the seven defined ACS bits only.
ACS_PRINTED = 0x007F


def text(name: str) -> str:
    return (DATA / name).read_text()


def golden(name: str, option: str) -> str:
    return (GOLDEN / f"{name}.{option}").read_text()


def hex_topo(name: str) -> Topology:
    return parse_lspci_hex(text(name), name)


def links(topo: Topology) -> dict[str, str | None]:
    """Parent links of the listed functions, as lspci draws them: placeholders for bridges
    a dump leaves out (p2pview's, not lspci's) are skipped."""
    out: dict[str, str | None] = {}
    for d in topo:
        if d.placeholder:
            continue
        parent = d.parent
        while parent is not None and topo[parent].placeholder:
            parent = topo[parent].parent
        out[str(d.bdf)] = None if parent is None else str(parent)
    return out


def acs_view(topo: Topology) -> dict[str, tuple[AcsPresence, int | None, int | None]]:
    def masked(v: int | None) -> int | None:
        return None if v is None else v & ACS_PRINTED

    return {str(d.bdf): (d.acs.presence, masked(d.acs.cap), masked(d.acs.ctrl)) for d in topo}


# -- acceptance: the tree and ACS equal what lspci reads from each dump --------------------


def test_every_dump_is_tested() -> None:
    assert len(DUMPS) == 9
    assert all((GOLDEN / f"{d}.{o}").is_file() for d in DUMPS for o in ("t", "tv", "tvnn", "vvv"))


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("option", ["tv", "t", "tvnn"])
def test_hex_tree_equals_lspci_tree(dump: str, option: str) -> None:
    from_hex = hex_topo(dump)
    drawn = parse_lspci_tree(golden(dump, option), f"{dump}.{option}")
    assert links(from_hex) == links(drawn)
    assert {str(d.bdf) for d in from_hex if d.is_bridge} >= {
        str(d.bdf) for d in drawn if d.is_bridge
    }


@pytest.mark.parametrize("dump", DUMPS)
@pytest.mark.parametrize("option", ["vvv", "vvvnn"])
def test_hex_acs_equals_lspci_vvv(dump: str, option: str) -> None:
    from_hex = hex_topo(dump)
    decoded = parse_lspci_verbose(golden(dump, option), f"{dump}.{option}")
    assert acs_view(from_hex) == acs_view(decoded)
    assert links(from_hex) == links(decoded)
    assert {str(d.bdf): d.pcie_type for d in from_hex} == {str(d.bdf): d.pcie_type for d in decoded}


@pytest.mark.parametrize("dump", VERBOSE_DUMPS)
def test_own_verbose_text_of_vv_dumps(dump: str) -> None:
    from_hex = hex_topo(dump)
    own = parse_lspci_verbose(text(dump), dump)
    assert links(own) == links(from_hex)
    for dev in own:
        if dev.placeholder:
            continue  # a bridge the dump leaves out, above a downstream port or endpoint
        if dev.acs.presence is AcsPresence.UNKNOWN:
            # cap-dvsec-cxl's 7f:00.0 has a device line and hex but no decoded text.
            assert dump == "cap-dvsec-cxl" and str(dev.bdf) == "0000:7f:00.0"
            continue
        if dump == "cap-dpc":
            continue  # see test_cap_dpc_text_shows_acs_the_256_byte_hex_does_not
        assert acs_view(own)[str(dev.bdf)] == acs_view(from_hex)[str(dev.bdf)]
        assert dev.pcie_type == from_hex[dev.bdf].pcie_type


def test_cap_dpc_text_shows_acs_the_256_byte_hex_does_not() -> None:
    own = parse_lspci_verbose(text("cap-dpc"), "cap-dpc")[B("05:01.0")]
    assert own.acs.presence is AcsPresence.PRESENT
    assert (own.acs.cap, own.acs.ctrl) == (0x007F, 0x0000)
    assert own.pcie_type is PcieType.DOWNSTREAM
    dumped = hex_topo("cap-dpc")[B("05:01.0")]
    assert dumped.acs.presence is AcsPresence.ABSENT
    assert any("256-byte dump" in n for n in dumped.notes)


def _lspci_or_skip() -> str:
    """The lspci binary; skip without it unless P2PVIEW_REQUIRE_LSPCI=1 makes that a failure."""
    path = shutil.which("lspci")
    if path is None:
        if os.environ.get("P2PVIEW_REQUIRE_LSPCI") == "1":
            pytest.fail("P2PVIEW_REQUIRE_LSPCI=1 but lspci (pciutils) is not installed")
        pytest.skip(
            "lspci (pciutils) is not installed; the golden files cover this"
            " (set P2PVIEW_REQUIRE_LSPCI=1 to make a missing lspci fail)"
        )
    return path


def _run_lspci(lspci: str, dump: str, option: str) -> str:
    proc = subprocess.run(
        [lspci, "-F", str(DATA / dump), f"-{option}"],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def test_live_lspci_agrees() -> None:
    lspci = _lspci_or_skip()
    for dump in DUMPS:
        from_hex = hex_topo(dump)
        for option in ("tv", "t", "tvnn"):
            drawn = parse_lspci_tree(_run_lspci(lspci, dump, option), f"lspci -{option} {dump}")
            assert links(drawn) == links(from_hex), (dump, option)
        for option in ("vvv", "vvvnn"):
            decoded = parse_lspci_verbose(
                _run_lspci(lspci, dump, option), f"lspci -{option} {dump}"
            )
            assert acs_view(decoded) == acs_view(from_hex), (dump, option)
            assert links(decoded) == links(from_hex), (dump, option)
        # The structure of the golden files is what this lspci prints too.
        assert links(parse_lspci_tree(golden(dump, "t"), "golden")) == links(from_hex)


# -- the engine on the whole machine -------------------------------------------------------


@pytest.mark.parametrize("kernel", ["6.12", "5.15", "5.4"])
def test_asus_nf200_pairs_are_bus_addr(kernel: str) -> None:
    topo = hex_topo("tree-asus-p6t6")
    state = prepare(topo, KernelTarget.parse(kernel))
    for provider, client in (("03:00.0", "03:02.0"), ("04:00.0", "03:02.0")):
        v = calc_map_type_and_dist(state, B(provider), B(client))
        assert v.map_type is MapType.BUS_ADDR
        assert v.common == B("02:00.0")
        assert topo[B("02:00.0")].pcie_type is PcieType.UPSTREAM
        assert v.acs_redirect == () and v.assumed == ()
    # The root port above the switch has ACS, but its Control register is 0.
    rp = topo[B("00:03.0")]
    assert (rp.acs.presence, rp.acs.cap, rp.acs.ctrl) == (AcsPresence.PRESENT, 0x001F, 0)
    # Two root ports of the X58, which no whitelist names: no P2P.
    v = calc_map_type_and_dist(state, B("04:00.0"), B("06:00.0"))
    assert v.map_type is MapType.NOT_SUPPORTED


def test_asus_whole_machine() -> None:
    topo = hex_topo("tree-asus-p6t6")
    assert len(topo) == 53
    assert [hb.root for hb in topo.host_bridges] == [RootBus(0, 0), RootBus(0, 0xFF)]
    assert topo.upstream_chain(B("04:00.0")) == (
        B("04:00.0"),
        B("03:00.0"),
        B("02:00.0"),
        B("00:03.0"),
    )
    assert {str(d.bdf) for d in topo if d.pcie_type is PcieType.DOWNSTREAM} == {
        "0000:03:00.0",
        "0000:03:02.0",
    }
    usp = topo[B("02:00.0")]
    assert (usp.ids, usp.label) == ("10de:05b1", "NVIDIA Corporation NF200 PCIe 2.0 switch")
    assert usp.class_code == 0x060400 and usp.header_type == 1 and usp.revision == 0xA3
    gpu = topo[B("06:00.0")]
    assert gpu.multifunction and gpu.link.speed == "2.5 GT/s PCIe" and gpu.link.width == 16
    assert topo[B("00:1f.3")].subsystem_vendor == 0x1043
    acs = {str(d.bdf) for d in topo if d.acs.presence is AcsPresence.PRESENT}
    assert acs == {"0000:00:00.0", "0000:00:01.0", "0000:00:03.0", "0000:00:07.0"}


def test_acs_enabled_root_port() -> None:
    rp = hex_topo("cap-aer-root")[B("00:02.0")]
    assert (rp.acs.cap, rp.acs.ctrl) == (0x001F, 0x001F)
    assert rp.acs.redirect_bits == 0x000C
    lp = hex_topo("cap-exp-lnkcap2")[B("00:1c.0")]
    assert (lp.acs.cap, lp.acs.ctrl) == (0x000F, 0)


def test_domains_and_cardbus() -> None:
    fsl = hex_topo("tree-fsl-p2020")
    assert [str(hb.root) for hb in fsl.host_bridges] == ["pci0000:04", "pci0001:02", "pci0002:00"]
    assert fsl[B("0001:03:00.0")].parent == B("0001:02:00.0")
    pcix = hex_topo("PCI-X-bridges-and-domains")
    assert {hb.root.domain for hb in pcix.host_bridges} == {0, 1, 2, 3, 4}
    assert pcix[B("0001:62:00.0")].parent == B("0001:61:01.0")
    assert all(d.acs.presence is AcsPresence.ABSENT and not d.notes for d in pcix)
    fujitsu = hex_topo("tree-fujitsu-p8010")
    cardbus = fujitsu[B("1c:03.0")]
    assert cardbus.header_type == 2 and cardbus.is_bridge
    assert fujitsu[B("1d:00.0")].parent == B("1c:03.0")
    assert fujitsu.upstream_chain(B("1d:00.0"))[-1] == B("00:1e.0")


# -- hex dumps: sizes, SR-IOV, errors ------------------------------------------------------


def _cfg(
    vendor: int,
    device: int,
    class_code: int,
    *,
    header: int = 0,
    buses: tuple[int, int, int] | None = None,
    pcie: PcieType | None = None,
    size: int = 4096,
) -> bytearray:
    cfg = bytearray(size)
    cfg[0:4] = vendor.to_bytes(2, "little") + device.to_bytes(2, "little")
    cfg[9:12] = class_code.to_bytes(3, "little")
    cfg[0x0E] = header
    if buses:
        cfg[0x18:0x1B] = bytes(buses)
    if pcie is not None:
        cfg[0x06] = 0x10  # capability list
        cfg[0x34] = 0x40
        cfg[0x40:0x44] = bytes([0x10, 0x00, 0x02 | pcie << 4, 0x00])
        cfg[0x4C:0x50] = (0x43).to_bytes(4, "little")  # LnkCap: 8 GT/s x4
        cfg[0x52:0x54] = (0x43).to_bytes(2, "little")  # LnkSta: 8 GT/s x4
    return cfg


def _sriov(cfg: bytearray, num_vfs: int, offset: int, stride: int, vf_device: int) -> None:
    cfg[0x100:0x104] = (0x0010 | 1 << 16).to_bytes(4, "little")
    cfg[0x108:0x10A] = (1).to_bytes(2, "little")  # VF Enable
    cfg[0x10E:0x110] = num_vfs.to_bytes(2, "little")
    cfg[0x110:0x112] = num_vfs.to_bytes(2, "little")
    cfg[0x114:0x116] = offset.to_bytes(2, "little")
    cfg[0x116:0x118] = stride.to_bytes(2, "little")
    cfg[0x11A:0x11C] = vf_device.to_bytes(2, "little")


def _dump(bdf: str, name: str, cfg: bytes | bytearray) -> str:
    lines = [f"{bdf} {name}"]
    for off in range(0, len(cfg), 16):
        lines.append(f"{off:02x}: " + " ".join(f"{b:02x}" for b in cfg[off : off + 16]))
    return "\n".join(lines) + "\n\n"


def test_sriov_vfs_follow_their_pf() -> None:
    rp = _cfg(0x8086, 0x1234, 0x060400, header=1, buses=(0, 3, 4), pcie=PcieType.ROOT_PORT)
    pf = _cfg(0x15B3, 0x1017, 0x020000, header=0x80, pcie=PcieType.ENDPOINT)
    _sriov(pf, num_vfs=2, offset=0x100, stride=1, vf_device=0x1018)
    vf = b"\xff" * 4 + bytes(_cfg(0, 0, 0x020000, size=256))[4:]
    dump = (
        _dump("00:01.0", "PCI bridge: RP", rp)
        + _dump("03:00.0", "Ethernet controller: PF", pf)
        + _dump("04:00.0", "Ethernet controller: VF", vf)
        + _dump("04:00.1", "Ethernet controller: VF", vf)
    )
    topo = parse_lspci_hex(dump, "vfs.txt")
    for name in ("04:00.0", "04:00.1"):
        dev = topo[B(name)]
        assert dev.physfn == B("03:00.0") and dev.parent == B("00:01.0")
        assert dev.ids == "15b3:1018"
        assert not any("root bus" in n for n in dev.notes)
    assert topo[B("03:00.0")].link.speed == "8.0 GT/s PCIe"
    assert topo[B("03:00.0")].link.max_width == 4


def test_config_space_sizes_follow_decode() -> None:
    rp = _cfg(0x8086, 0x1234, 0x060400, header=1, buses=(0, 1, 1), pcie=PcieType.ROOT_PORT)
    rp[0x100:0x104] = (0x000D | 1 << 16).to_bytes(4, "little")
    rp[0x104:0x108] = bytes([0x5F, 0x00, 0x1D, 0x00])
    full = parse_lspci_hex(_dump("00:01.0", "PCI bridge: RP", rp), "full")[B("00:01.0")]
    assert (full.acs.cap, full.acs.ctrl, full.pcie_type) == (0x5F, 0x1D, PcieType.ROOT_PORT)
    short = parse_lspci_hex(_dump("00:01.0", "PCI bridge: RP", rp[:64]), "x")[B("00:01.0")]
    assert short.acs.presence is AcsPresence.UNKNOWN and short.pcie_type is None
    assert any("only 64 bytes" in n for n in short.notes)
    std = parse_lspci_hex(_dump("00:01.0", "PCI bridge: RP", rp[:256]), "x")[B("00:01.0")]
    assert std.acs.presence is AcsPresence.ABSENT and std.pcie_type is PcieType.ROOT_PORT
    cut = parse_lspci_hex(_dump("00:01.0", "PCI bridge: RP", rp[:0x104]), "x")[B("00:01.0")]
    assert cut.acs.presence is AcsPresence.UNKNOWN
    assert any("stops at 260 bytes" in n for n in cut.notes)


def test_hex_details_and_variants() -> None:
    cfg = _cfg(0x144D, 0xA808, 0x010802, pcie=PcieType.ENDPOINT, size=64)
    body = _dump("10000:e1:00.0", "Non-Volatile memory controller [0108]: Samsung [144d:a808]", cfg)
    body = body.replace("\n00:", "\n\tKernel driver in use: nvme\n\tNUMA node: 1\n00:", 1)
    topo = parse_lspci_hex("lspci: Unable to load libkmod resources\r\n" + body, "vmd.txt")
    dev = topo[B("10000:e1:00.0")]
    assert (dev.driver, dev.numa_node, dev.label) == ("nvme", 1, "Samsung")
    # An Endpoint is never on a root bus: the bridge to bus e1 (a VMD root port)
    # is not in the dump, and a placeholder stands for it.
    assert dev.parent is not None and topo[dev.parent].placeholder
    assert topo.root_bus_of(dev.bdf).domain == 0x10000
    # Gaps read as 0xff, as lspci -F fills them.
    gappy = "00:02.0 VGA compatible controller: X\n00: 86 80 02 2a\n30:" + " 00" * 16 + "\n"
    assert parse_lspci_hex(gappy, "g")[B("00:02.0")].class_code == 0xFFFFFF


@pytest.mark.parametrize(
    ("dump", "where"),
    [
        ("", "line 1:"),
        ("00:00.0 Host bridge: X\n", "line 1: no config-space hex lines"),
        ("00: 86 80\n", "line 1: config-space hex line without a device"),
        ("00:00.0 X\n00: 86 80 zz 00\n", "line 2: offset 0x2: 'zz'"),
        ("00:00.0 X\nff0: " + " ".join(["00"] * 17) + "\n", "line 2: offset 0x1000: beyond"),
        ("00:00.0 X\n00: 86 80 00 00\n", "line 1: function 0000:00:00.0: only 4 bytes"),
        ("00:20.0 X\n00: 86 80\n", "line 1: bad PCI address '00:20.0'"),
        ("00:00.0 X\n00:\n", "line 2: offset 0x0: hex line without bytes"),
    ],
)
def test_hex_errors_name_the_line(dump: str, where: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_lspci_hex(dump, "bad.txt")
    assert str(err.value).startswith(f"bad.txt: {where}")


def test_hex_duplicate_function() -> None:
    block = _dump("00:00.0", "Host bridge: X", bytes(64))
    with pytest.raises(SourceError, match=r"^dup: line 7: function 0000:00:00.0 appears twice"):
        parse_lspci_hex(block + block, "dup")


# -- busranges -----------------------------------------------------------------------------


def test_busranges_kernel_rule_and_oddities() -> None:
    funcs = [B(x) for x in ("00:01.0", "00:02.0", "02:00.0", "04:00.0", "05:00.0", "06:00.0")]
    bridges = [
        BridgeBuses(B("00:01.0"), 2, 4),  # leads to 02; bus 04 lies in its range
        BridgeBuses(B("00:02.0"), 2, 2),  # claims 02 as well, with a narrower range
        BridgeBuses(B("05:00.0"), 6, 6),  # 05 <-> 06 loop with 06:00.0
        BridgeBuses(B("06:00.0"), 5, 5),
    ]
    got = assign_parents(funcs, bridges)
    assert got.parents[B("02:00.0")] == B("00:02.0")
    assert any("also the secondary bus" in n for n in got.notes[B("00:01.0")])
    assert got.parents[B("04:00.0")] is None
    assert any("lspci -t draws it below 0000:00:01.0" in n for n in got.notes[B("04:00.0")])
    assert got.parents[B("05:00.0")] is None and got.parents[B("06:00.0")] == B("05:00.0")
    assert any("loop" in n for n in got.notes[B("06:00.0")])
    # The result is a valid kernel tree.
    bridge_set = {b.bdf for b in bridges}
    devices = [
        PciDevice(bdf, 0x8086, 0x1234, header_type=1 if bdf in bridge_set else 0, parent=parent)
        for bdf, parent in got.parents.items()
    ]
    assert len(Topology(devices)) == len(funcs)
    self_loop = assign_parents([B("03:00.0")], [BridgeBuses(B("03:00.0"), 3, 3)])
    assert self_loop.parents[B("03:00.0")] is None
    assert "the bus the bridge itself sits on" in self_loop.notes[B("03:00.0")][0]


def test_busranges_vf_below_its_pf_is_ignored() -> None:
    # A "VF" that is the bridge above its PF cannot take the PF's parent.
    got = assign_parents(
        [B("00:01.0"), B("01:00.0")],
        [BridgeBuses(B("00:01.0"), 1, 1)],
        physfn={B("00:01.0"): B("01:00.0")},
    )
    assert got.parents == {B("00:01.0"): None, B("01:00.0"): B("00:01.0")}
    assert got.physfn == {}
    assert "sits below it" in got.notes[B("00:01.0")][0]


def test_busranges_domains_are_separate() -> None:
    got = assign_parents(
        [B("0001:00:00.0"), B("0001:01:00.0"), B("0002:01:00.0")],
        [BridgeBuses(B("0001:00:00.0"), 1, 1)],
    )
    assert got.parents[B("0001:01:00.0")] == B("0001:00:00.0")
    assert got.parents[B("0002:01:00.0")] is None
    assert got.root_buses == (RootBus(1, 0), RootBus(2, 1))


# -- trees ---------------------------------------------------------------------------------


def test_tree_names_and_ids() -> None:
    nn = parse_lspci_tree(golden("tree-asus-p6t6", "tvnn"), "tvnn")
    sas = nn[B("04:00.0")]
    assert sas.ids == "1000:0072"
    assert sas.label == "Broadcom / LSI SAS2008 PCI-Express Fusion-MPT SAS-2 [Falcon]"
    assert sas.acs.presence is AcsPresence.UNKNOWN and sas.pcie_type is None
    assert nn[B("03:02.0")].header_type == 1 and sas.header_type == 0
    named = parse_lspci_tree(golden("tree-asus-p6t6", "tv"), "tv")[B("04:00.0")]
    # without -nn the IDs come from the name through pci.ids, marked inferred
    assert (named.ids, named.label) == ("1000:0072", sas.label)
    assert named.fact("ids").is_inferred and sas.fact("ids").is_read
    bare = parse_lspci_tree(golden("tree-asus-p6t6", "t"), "t")[B("04:00.0")]
    assert bare.label is None
    numeric = "-[0000:00]-+-00.0  8086:3405\n           \\-01.0-[01]----00.0  10de:0a65\n"
    topo = parse_lspci_tree(numeric, "tvn")
    assert topo[B("01:00.0")].ids == "10de:0a65" and topo[B("01:00.0")].label is None
    assert topo[B("00:01.0")].is_bridge


def test_tree_empty_root_bus_is_not_a_host_bridge() -> None:
    topo = parse_lspci_tree(golden("tree-fsl-p2020", "tv"), "tv")
    assert [str(hb.root) for hb in topo.host_bridges] == ["pci0000:04", "pci0001:02", "pci0002:00"]


def test_tree_bus_inside_a_range_differs_from_the_kernel_rule() -> None:
    # lspci -F of a dump holding 00:01.0 [02-05], 02:00.0 and 04:00.0 (pciutils 3.9.0).
    drawn = (
        "-[0000:00]---01.0-[02-05]--+-[0000:02]---00.0  Intel Corporation 82574L\n"
        "                           \\-[0000:04]---00.0  Intel Corporation 82574L\n"
    )
    tree = parse_lspci_tree(drawn, "inrange.tv")
    assert tree[B("04:00.0")].parent == B("00:01.0")
    assert "bridges between are not in the listing" in tree[B("04:00.0")].notes[0]
    bridge = _cfg(0x8086, 0x1234, 0x060400, header=1, buses=(0, 2, 5), size=64)
    nic = _cfg(0x8086, 0x10D3, 0x020000, size=64)
    dump = _dump("00:01.0", "X", bridge) + _dump("02:00.0", "Y", nic) + _dump("04:00.0", "Z", nic)
    kernel = parse_lspci_hex(dump, "inrange")
    assert kernel[B("02:00.0")].parent == B("00:01.0")
    assert kernel[B("04:00.0")].parent is None


def test_tree_filtered_and_newer_forms() -> None:
    # pciutils 3.9.0: lspci -t -s 03:00.0 keeps the '+-' of filtered-out siblings.
    filtered = "-+-[0000:00]-+-03.0-[02-05]----00.0-[03-05]--+-00.0-[04]--\n"
    topo = parse_lspci_tree(filtered, "s.tv")
    assert links(topo) == {
        "0000:00:03.0": None,
        "0000:02:00.0": "0000:00:03.0",
        "0000:03:00.0": "0000:02:00.0",
    }
    # Newer pciutils: a filtered sub-tree starts with the bridge's full address,
    # and -tvv adds base-address lines.
    newer = (
        "0000:00:03.0-[02-05]----00.0-[03-05]--+-00.0-[04]----00.0  LSI SAS2008\n"
        "                                      |                    Memory at f9ff0000\n"
        "                                      \\-02.0-[05]--\n"
        "0000:02:00.0-[03-05]--+-00.0-[04]----00.0  LSI SAS2008\n"
        "                      \\-02.0-[05]--\n"
    )
    topo = parse_lspci_tree(newer, "new.tv")
    assert topo[B("03:02.0")].parent == B("02:00.0")
    assert topo[B("02:00.0")].parent == B("00:03.0")
    assert topo[B("00:03.0")].parent is None
    assert "not shown" in topo[B("00:03.0")].notes[0]


@pytest.mark.parametrize(
    ("drawing", "where"),
    [
        ("hello\n", "line 1: column 1: not an lspci -t tree line"),
        ("-[0000:00]-+-00.0\n    \\-01.0\n", "line 2: column 5: no open branch"),
        ("-[0000:00]---zz.0\n", "line 1: column 14: expected a function"),
        ("-[0000:00]---00.0 junk\n", "line 1: column 18: unexpected text"),
        ("-[0000:00]---01.0-[01]--+-[0001:01]---00.0\n", "line 1: column 27: bus [0001:01]"),
        ("-[0000:00]---01.0-[01]-+-[0001:01]---00.0\n", "line 1: column 24: expected '-'"),
        ("-[0000:00]-+-00.0\n           \\-00.0-[01]--\n", "line 2: column 14: function"),
        ("", "line 1: no lspci -t tree"),
    ],
)
def test_tree_errors_name_the_line(drawing: str, where: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_lspci_tree(drawing, "t.txt")
    assert str(err.value).startswith(f"t.txt: {where}")


# -- verbose text --------------------------------------------------------------------------

NON_ROOT = """\
00:01.0 PCI bridge: Intel Corporation Device 1234 (rev 01) (prog-if 00 [Normal decode])
\tFlags: bus master, fast devsel, latency 0, IRQ 24, NUMA node 0, IOMMU group 3
\tBus: primary=00, secondary=01, subordinate=01, sec-latency=0
\tCapabilities: <access denied>
\tKernel driver in use: pcieport

01:00.0 Non-Volatile memory controller: Samsung Electronics Co Ltd NVMe SSD Controller \
PM9A1/PM9A3/980PRO (prog-if 02 [NVM Express])
\tSubsystem: Samsung Electronics Co Ltd SSD 980 PRO
\tFlags: bus master, fast devsel, latency 0, IRQ 16, NUMA node 0, IOMMU group 14
\tMemory at fcc00000 (64-bit, non-prefetchable) [size=16K]
\tCapabilities: <access denied>
\tKernel driver in use: nvme
\tKernel modules: nvme

01:00.1 Audio device: Samsung Electronics Co Ltd Device 0001
\tStatus: Cap- 66MHz- UDF- FastB2B- ParErr- DEVSEL=fast >TAbort- <TAbort- <MAbort- >SERR- \
<PERR- INTx-
"""


def test_verbose_without_root() -> None:
    topo = parse_lspci_verbose(NON_ROOT, "nonroot.txt")
    rp, nvme, audio = topo[B("00:01.0")], topo[B("01:00.0")], topo[B("01:00.1")]
    assert rp.acs.presence is AcsPresence.UNKNOWN and rp.pcie_type is None
    assert any("access denied" in n for n in rp.notes)
    assert (rp.header_type, rp.class_code, rp.driver, rp.iommu_group) == (
        1,
        0x060400,
        "pcieport",
        3,
    )
    assert nvme.parent == B("00:01.0") and nvme.class_code == 0x010802
    # lspci without -nn: the IDs come from the names (pci.ids), or the "Device dddd" it prints
    assert (nvme.ids, nvme.label) == (
        "144d:a80a",
        "Samsung Electronics Co Ltd NVMe SSD Controller PM9A1/PM9A3/980PRO",
    )
    assert nvme.fact("ids").is_inferred and rp.ids == "8086:1234"
    assert (nvme.numa_node, nvme.iommu_group, nvme.driver) == (0, 14, "nvme")
    assert nvme.bars == ()  # lspci -v gives no region index
    assert audio.acs.presence is AcsPresence.ABSENT  # Status: Cap-: no capability list
    assert nvme.multifunction and audio.multifunction


def test_verbose_details() -> None:
    cxl = parse_lspci_verbose(text("cap-dvsec-cxl"), "cxl")[B("6b:00.0")]
    assert cxl.pcie_type is PcieType.RC_END and cxl.class_code == 0xFF0000
    assert [(b.index, b.kind, b.size, b.prefetchable) for b in cxl.bars] == [
        (0, BarKind.MEM, 1 << 20, False),
        (2, BarKind.IO, 1 << 10, False),
        (4, BarKind.MEM, 16 << 20, True),
    ]
    assert cxl.numa_node == 0
    aer = parse_lspci_verbose(text("cap-aer-root"), "aer")
    rp, nic = aer[B("00:02.0")], aer[B("03:00.0")]
    assert (rp.acs.cap, rp.acs.ctrl) == (0x1F, 0x1F)
    assert (rp.link.speed, rp.link.width, rp.link.max_speed) == (
        "8.0 GT/s PCIe",
        8,
        "8.0 GT/s PCIe",
    )
    assert nic.label == "Mellanox Technologies MT27520 Family [ConnectX-3 Pro]"
    nn = parse_lspci_verbose(golden("tree-asus-p6t6", "vvvnn"), "nn")[B("00:1f.3")]
    assert (nn.ids, nn.class_code, nn.subsystem_vendor, nn.subsystem_device) == (
        "8086:3a30",
        0x0C0500,
        0x1043,
        0x82D4,
    )
    dpc = parse_lspci_verbose(text("cap-dpc"), "dpc")[B("05:01.0")]
    assert (dpc.ids, dpc.class_code, dpc.driver, dpc.numa_node) == (
        "10b5:9716",
        0x060400,
        "pcieport",
        0,
    )


def test_verbose_acs_needs_vv() -> None:
    one_v = (
        "00:01.0 PCI bridge: X\n"
        "\tBus: primary=00, secondary=01, subordinate=01, sec-latency=0\n"
        "\tCapabilities: [40] Express Root Port (Slot+), MSI 00\n"
        "\tCapabilities: [150] Access Control Services\n"
    )
    dev = parse_lspci_verbose(one_v, "v")[B("00:01.0")]
    assert dev.acs.presence is AcsPresence.UNKNOWN and dev.pcie_type is PcieType.ROOT_PORT
    assert any("-vv" in n for n in dev.notes)


def test_verbose_sriov() -> None:
    pf = (
        "00:01.0 PCI bridge: X\n"
        "\tBus: primary=00, secondary=03, subordinate=04, sec-latency=0\n\n"
        "03:00.0 Ethernet controller: Mellanox Technologies MT28800 Family [ConnectX-5 Ex]\n"
        "\tCapabilities: [180 v1] Single Root I/O Virtualization (SR-IOV)\n"
        "\t\tIOVCap:\tMigration- 10BitTagReq- Interrupt Message Number: 000\n"
        "\t\tIOVCtl:\tEnable+ Migration- Interrupt- MSE+ ARIHierarchy+ 10BitTagReq-\n"
        "\t\tIOVSta:\tMigration-\n"
        "\t\tInitial VFs: 8, Total VFs: 8, Number of VFs: 2, Function Dependency Link: 00\n"
        "\t\tVF offset: 256, stride: 1, Device ID: 101a\n\n"
        "04:00.0 Ethernet controller: Mellanox Technologies MT28800 Family"
        " [ConnectX-5 Ex Virtual Function]\n"
        "\tCapabilities: [60] Express (v2) Endpoint, MSI 00\n\n"
        "04:00.1 Ethernet controller: Mellanox Technologies MT28800 Family"
        " [ConnectX-5 Ex Virtual Function]\n"
        "\tCapabilities: [60] Express (v2) Endpoint, MSI 00\n"
    )
    topo = parse_lspci_verbose(pf, "sriov")
    assert topo[B("04:00.1")].physfn == B("03:00.0")
    assert topo[B("04:00.1")].parent == B("00:01.0")


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ("garbage\n", "line 1: expected a device line"),
        ("\tControl: I/O+\n", "line 1: indented detail line outside"),
        ("00:00.0 Host bridge: X\n", "line 1: plain lspci listing"),
        ("00:00.0 X: Y\n\tCapabilities: [zz] Q\n", "line 2: cannot read capability"),
        (
            "00:00.0 X: Y\n\tCapabilities: [100 v1] Access Control Services\n"
            "\t\tACSCap:\tSrcValid? \n",
            "line 3: ACSCap: cannot read flag",
        ),
        ("00:00.0 X: Y\n\t\tACSCtl:\tSrcValid+\n", "line 2: ACSCtl line outside"),
        ("00:00.0 X: Y\n\tNUMA node: x\n", "line 2: NUMA node: not a number"),
        (
            "00:00.0 X: Y\n\tControl: I/O+\n00:00.0 X: Y\n",
            "line 3: function 0000:00:00.0 listed twice",
        ),
        ("00:00.0 X: Y\n\tControl: I/O+\n\n00: 86 80\n", "line 4: config-space hex line outside"),
    ],
)
def test_verbose_errors_name_the_line(body: str, where: str) -> None:
    with pytest.raises(SourceError) as err:
        parse_lspci_verbose(body, "v.txt")
    assert str(err.value).startswith(f"v.txt: {where}")


def test_verbose_bus_number_loop_is_broken() -> None:
    loop = (
        "05:00.0 PCI bridge: A\n\tBus: primary=05, secondary=06, subordinate=06, sec-latency=0\n\n"
        "06:00.0 PCI bridge: B\n\tBus: primary=06, secondary=05, subordinate=05, sec-latency=0\n"
    )
    topo = parse_lspci_verbose(loop, "loop")
    assert topo[B("05:00.0")].parent is None and topo[B("06:00.0")].parent == B("05:00.0")


# -- sniffing ------------------------------------------------------------------------------


@pytest.mark.parametrize("dump", DUMPS)
def test_sniffers(dump: str) -> None:
    assert sniff_lspci(text(dump)) == "hex"
    for option in ("t", "tv", "tvnn"):
        tree = golden(dump, option)
        assert sniff_lspci(tree) == "tree"
        assert not sniff_lspci_hex(tree) and not sniff_lspci_verbose(tree)
    for option in ("vvv", "vvvnn"):
        verbose = golden(dump, option)
        assert sniff_lspci(verbose) == "verbose"
        assert not sniff_lspci_hex(verbose) and not sniff_lspci_tree(verbose)
    assert sniff_lspci_verbose(text(dump)) == (dump in VERBOSE_DUMPS)


def test_sniffers_reject_other_formats() -> None:
    for other in ('name = "x"\n[[device]]\nbdf = "00:00.0"\n', "<?xml version='1.0'?>\n", ""):
        assert sniff_lspci(other) is None
