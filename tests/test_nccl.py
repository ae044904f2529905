"""The NCCL/RCCL topology XML reader, on the RCCL issue 1185 dump and on broken input."""

from __future__ import annotations

import itertools

import pytest
from conftest import DATA

from p2pview.kernel import KernelTarget, MapType, calc_map_type_and_dist, prepare
from p2pview.model import BDF, AcsPresence, PcieType
from p2pview.sources import SourceError
from p2pview.sources.nccl import cpu_family_from_nccl, parse_nccl_xml, sniff_nccl_xml

B = BDF.parse
RCCL = DATA / "rccl/hygon-dcu-8x-pex88096.rccl-topo.xml"


def rccl():
    return parse_nccl_xml(RCCL.read_text(), str(RCCL))


def listed(topo):
    """The functions the dump lists (not the placeholders for the levels NCCL skips)."""
    return [d for d in topo if not d.placeholder]


def test_rccl_dump_tree():
    topo = rccl()
    assert len(listed(topo)) == 27
    gpus = {d.label: d.bdf for d in topo if d.label and d.label.startswith("GPU")}
    assert gpus == {
        "GPU0": B("37:00.0"),
        "GPU1": B("3a:00.0"),
        "GPU2": B("3f:00.0"),
        "GPU3": B("45:00.0"),
        "GPU4": B("b7:00.0"),
        "GPU5": B("ba:00.0"),
        "GPU6": B("bf:00.0"),
        "GPU7": B("c5:00.0"),
    }
    # GPU -> the DCU's own bridge -> inner PEX88096 -> outer PEX88096, as NCCL saw it,
    # with a placeholder for each level NCCL skips (the DCU's internal port, the
    # switches' downstream ports, the root port): as many hops as the kernel walks.
    chain = topo.upstream_chain(B("37:00.0"))
    assert chain[0::2] == (B("37:00.0"), B("35:00.0"), B("33:00.0"), B("31:00.0"))
    placeholders = [topo[b] for b in chain[1::2]]
    assert len(chain) == 8 and all(p.fact("ids").is_assumed for p in placeholders)
    assert all(
        p.placeholder and p.is_bridge and "not in NCCL's dump" in p.notes[0] for p in placeholders
    )
    assert topo[chain[-1]].parent is None and topo[chain[-1]].pcie_type is PcieType.ROOT_PORT
    assert topo[B("37:00.0")].fact("parent").is_inferred
    outer = topo[B("31:00.0")]
    assert (outer.ids, outer.subsystem_vendor, outer.subsystem_device) == (
        "1000:c010",
        0x1000,
        0xA096,
    )
    assert outer.is_bridge and outer.parent == chain[-1]
    gpu = topo[B("37:00.0")]
    assert (gpu.ids, gpu.class_code, gpu.header_type) == ("1d94:55b7", 0x038000, 0)
    assert (gpu.link.max_speed, gpu.link.max_width) == ("16.0 GT/s PCIe", 16)
    assert gpu.link.speed is None and gpu.acs.presence is AcsPresence.UNKNOWN
    assert gpu.fact("acs").how.startswith("NCCL dumps record no ACS")
    nic = topo[B("42:00.0")]
    assert (nic.label, topo.upstream_chain(nic.bdf)[2], nic.class_code) == (
        "mlx5_0,mlx5_1",
        B("40:00.0"),
        0x020000,
    )
    assert topo[B("91:00.0")].label == "mlx5_2,mlx5_3"
    assert {d.numa_node for d in topo.devices if d.bdf.bus < 0x50} == {3}
    assert topo[B("91:00.0")].numa_node == 5 and topo[B("c5:00.0")].numa_node == 7
    # One placeholder root complex per top-level <pci>; what stands for it is unknown.
    assert sorted(h.numa_node for h in topo.host_bridges) == [3, 5, 7]
    assert all(h.root_functions.is_assumed for h in topo.host_bridges)


def test_rccl_cpu_and_what_nccl_leaves_out():
    topo = rccl()
    plat = topo.platform
    # vendor="AMD" familyid="159": 159 = 0xF + (0x9 << 4), i.e. family 0x18, which
    # only Hygon ships: Linux calls it HygonGenuine, and cpu_supports_p2pdma() is false.
    assert (plat.arch, plat.cpu_vendor, plat.cpu_family) == ("x86_64", "HygonGenuine", 0x18)
    assert plat.facts.cpu.is_inferred and "Hygon" in plat.facts.cpu.how
    assert "family 0x18 is Hygon's" in topo.description


@pytest.mark.parametrize(
    ("familyid", "family"), [(6, 6), (15, 15), (143, 0x17), (159, 0x18), (175, 0x19), (191, 0x1A)]
)
def test_familyid_decoding(familyid, family):
    assert cpu_family_from_nccl(familyid) == family


def test_acceptance_gpu_pairs_under_one_leaf_switch_map_by_bus_address():
    """Issue 3 acceptance: same leaf PEX88096 -> BUS_ADDR, at the kernel's distance.

    37:00.0 and 3a:00.0 each sit below their DCU bridge (35:00.0, 38:00.0),
    both below inner switch 33:00.0. The kernel counts the levels NCCL omits
    too (the inner switch's downstream ports 34:xx.0 and the DCUs' internal
    ports 36:00.0 / 39:00.0): 4 + 4 = 8, which the placeholders restore.
    """
    topo = rccl()
    state = prepare(topo, KernelTarget.parse("6.12"))
    leaf_pairs = [(B("37:00.0"), B("3a:00.0")), (B("b7:00.0"), B("ba:00.0"))]
    for provider, client in leaf_pairs:
        for a, b in ((provider, client), (client, provider)):
            verdict = calc_map_type_and_dist(state, a, b)
            assert verdict.map_type is MapType.BUS_ADDR
            assert verdict.distance == 8
            assert verdict.common in (B("33:00.0"), B("b3:00.0"))
            # ACS is unknown on the path: the verdict says it rests on that.
            assert {a.fact for a in verdict.assumptions} == {"acs"}
            assert verdict.alternatives[0].map_type is MapType.NOT_SUPPORTED
    # Every other GPU pair on one CPU shares only the outer switch: 6 + 6.
    gpus = sorted(d.bdf for d in topo if d.label and d.label.startswith("GPU"))
    for a, b in itertools.combinations(gpus, 2):
        if (a, b) in leaf_pairs:
            continue
        verdict = calc_map_type_and_dist(state, a, b)
        if verdict.common is not None:
            assert (verdict.map_type, verdict.distance) == (MapType.BUS_ADDR, 12), (a, b)
        else:
            # Different <cpu>: no common upstream. The Hygon CPU fails
            # cpu_supports_p2pdma(), and what stands for each host bridge in the
            # whitelist is unknown: NOT_SUPPORTED, resting on that assumption.
            assert (verdict.map_type, verdict.distance) == (MapType.NOT_SUPPORTED, 16)
            assert "host_bridge_device" in {a.fact for a in verdict.assumptions}
            assert any(alt.map_type is MapType.THRU_HOST_BRIDGE for alt in verdict.alternatives)
    # GPU3 and the ConnectX-6 under the same inner switch 40:00.0: 4 + 2.
    nic = calc_map_type_and_dist(state, B("45:00.0"), B("42:00.0"))
    assert (nic.map_type, nic.distance) == (MapType.BUS_ADDR, 6)


def test_sniffer():
    assert sniff_nccl_xml(RCCL.read_text())
    assert sniff_nccl_xml('<!-- dumped -->\n<system version="1"/>')
    assert not sniff_nccl_xml("<topology/>")
    assert not sniff_nccl_xml("<graphs version='1'/>")


def minimal(
    pci: str, cpu: str = '<cpu numaid="0" arch="x86_64" vendor="GenuineIntel" familyid="6">'
) -> str:
    return f'<system version="1">\n  {cpu}\n    {pci}\n  </cpu>\n</system>\n'


def test_short_vendor_names_and_missing_ids():
    topo = parse_nccl_xml(
        minimal(
            '<pci busid="0000:17:00.0" link_speed="" link_width=""/>',
            '<cpu numaid="-1" arch="arm64">',
        ),
        "m.xml",
    )
    dev = topo[B("17:00.0")]
    assert (dev.vendor, dev.device, dev.numa_node) == (0xFFFF, 0xFFFF, None)
    assert "vendor/device not in the file" in dev.notes
    assert dev.link.max_speed is None and dev.link.max_width is None
    assert (topo.platform.arch, topo.platform.cpu_vendor) == ("aarch64", "(aarch64)")
    topo = parse_nccl_xml(
        minimal('<pci busid="0000:17:00.0"/>', '<cpu numaid="1" vendor="Hygon" familyid="159">'),
        "h",
    )
    assert (topo.platform.cpu_vendor, topo.platform.cpu_family) == ("HygonGenuine", 0x18)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<system>\n<cpu>\n</system>", r"^f: line 3, column 3: not well-formed XML"),
        ("<topology/>", r"^f: line 1: root element <topology> is not NCCL's <system>"),
        (minimal('<pci busid="zz"/>'), r"^f: line 3: <pci> busid: .*'zz'"),
        (minimal("<pci/>"), r"^f: line 3: <pci> busid: missing"),
        (minimal('<pci busid="0000:01:00.0" class="0x10604000"/>'), r"^f: line 3: <pci> class:"),
        (minimal('<pci busid="0000:01:00.0" vendor="0x10000"/>'), r"^f: line 3: <pci> vendor:"),
        (minimal('<pci busid="0000:01:00.0" vendor="nv"/>'), r"^f: line 3: <pci> vendor: 'nv'"),
        (minimal('<pci busid="0000:01:00.0" link_width="x16"/>'), r"^f: line 3: <pci> link_width"),
        (minimal('<pci busid="0000:01:00.0" link_width="99"/>'), r"^f: line 3: <pci> link_width"),
        (minimal("", '<cpu numaid="zero">'), r"^f: line 2: <cpu> numaid: 'zero'"),
        (minimal("", '<cpu vendor="AMD" familyid="x">'), r"^f: line 2: <cpu> familyid"),
        (
            minimal('<pci busid="0000:01:00.0" class="0x020000"><pci busid="0000:02:00.0"/></pci>'),
            r"^f: line 3: <pci> class: 0x020000 is not a PCI bridge",
        ),
        (
            minimal('<pci busid="0000:01:00.0"><pci busid="0001:02:00.0"/></pci>'),
            r"^f: line 3: <pci> busid: 0001:02:00.0 is inside <pci> 0000:01:00.0",
        ),
        (
            minimal('<pci busid="0000:01:00.0"/>\n<pci busid="0000:01:00.0"/>'),
            r"^f: line 4: <pci> busid: 0000:01:00.0 already listed at line 3",
        ),
        (
            minimal('<pci busid="0000:01:00.0"><gpu dev="first"/></pci>'),
            r"^f: line 3: <gpu> dev: 'first'",
        ),
        ('<!DOCTYPE s [<!ENTITY x "y">]><system/>', r"^f: line 1: DOCTYPE with an internal"),
    ],
)
def test_malformed_input_names_file_and_line(text, expected):
    with pytest.raises(SourceError, match=expected):
        parse_nccl_xml(text, "f")
