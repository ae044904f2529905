"""NVIDIA's labels derived from PCIe trees, and ``compare`` against the real matrices."""

from __future__ import annotations

import json

import pytest
from builders import B, dev, host, topo
from conftest import DATA
from rich.console import Console

from p2pview.compare import Agreement, compare, comparison_document
from p2pview.model import PcieType
from p2pview.model.nvlabel import (
    NVLINK_NOT_DERIVABLE,
    NvLevel,
    derive_label,
    is_nvlink,
    normalize_label,
    numa_node_of,
)
from p2pview.session import EngineConfig, open_session, session_for
from p2pview.sources import Loaded, load_source
from p2pview.sources.nvsmi import LegendForm, parse_nvsmi_topo, read_nvsmi_topo
from p2pview.views.compare_view import compare_view

NVSMI = DATA / "nvidia-smi"
K80_MATRIX = NVSMI / "nccl-issue19-supermicro-3xK80.topo.txt"
K80_TOPO = str(NVSMI / "k80-3x-supermicro.reconstruction.toml")
L40S_MATRIX = NVSMI / "nccl-tests-issue273-8xL40S-pass.topo.txt"
L40S_TOPO = str(NVSMI / "l40s-8x-vm.reconstruction.toml")
HGX_MATRIX = NVSMI / "hgx-8gpu.synthetic.topo.txt"


@pytest.fixture(scope="module")
def hgx():
    return load_source("hgx-8gpu").topology


def label(t, a, b):
    return derive_label(t, t.resolve(a), t.resolve(b))


# -- derived labels on the bundled HGX topology ------------------------------


@pytest.mark.parametrize(
    ("a", "b", "level"),
    [
        ("GPU0", "NIC0", NvLevel.PIX),  # same level-2 switch
        ("GPU0", "GPU1", NvLevel.PIX),
        ("NIC0", "NIC1", NvLevel.PIX),
        ("GPU0", "NVME0", NvLevel.PIX),
        ("GPU0", "NIC2", NvLevel.PXB),  # other level-2 switch under the same level-1 switch
        ("GPU0", "GPU3", NvLevel.PXB),
        ("NIC1", "NVME1", NvLevel.PXB),
        ("GPU0", "GPU4", NvLevel.SYS),  # across sockets
        ("NIC3", "NIC4", NvLevel.SYS),
        ("NVME0", "BOOT", NvLevel.NODE),  # two host bridges (IIO stacks) of socket 0
        ("GPU2", "BOOT", NvLevel.NODE),
    ],
)
def test_hgx_derived_labels(hgx, a, b, level):
    forward, backward = label(hgx, a, b), label(hgx, b, a)
    assert forward.level is level and forward.certain
    assert backward.level is level  # symmetric


def test_hgx_derivation_details(hgx):
    pix = label(hgx, "GPU0", "NIC0")
    assert pix.common == B("18:00.0")
    assert pix.bridges == (B("19:00.0"), B("18:00.0"), B("19:01.0"))
    assert "one PCIe switch" in pix.rule
    pxb = label(hgx, "GPU0", "GPU2")
    assert pxb.common == B("16:00.0") and len(pxb.bridges) == 7
    sys_ = label(hgx, "GPU0", "GPU4")
    assert sys_.common is None and sys_.numa == (0, 1)
    assert [str(r) for r in sys_.host_bridges] == ["pci0000:15", "pci0000:97"]


def test_same_function_is_not_a_pair(hgx):
    with pytest.raises(ValueError, match="'X' to itself"):
        label(hgx, "GPU0", "GPU0")


# -- derived labels on small trees -------------------------------------------


def test_functions_of_one_card_under_a_root_port_are_pix():
    t = topo(
        host(),
        dev("00:01.0", bridge=True),
        dev("01:00.0", "15b3:1017", "00:01.0", class_code=0x020000, multifunction=True),
        dev("01:00.1", "15b3:1017", "00:01.0", class_code=0x020000, multifunction=True),
        dev("00:02.0", bridge=True),
        dev("02:00.0", "10de:20b0", "00:02.0", class_code=0x030200),
    )
    assert label(t, "01:00.0", "01:00.1").level is NvLevel.PIX
    assert label(t, "01:00.0", "02:00.0").level is NvLevel.PHB  # two Root Ports, one host bridge


def test_a_bridge_below_a_root_port_is_pxb():
    # Root Port -> PCIe-to-PCI bridge -> conventional device, and a device on the Root Port's
    # own bus: two bridges, no switch.
    t = topo(
        host(),
        dev("00:01.0", bridge=True),
        dev("01:00.0", "1234:0001", "00:01.0", bridge=True, pcie=PcieType.PCI_BRIDGE),
        dev("01:00.1", "1234:0002", "00:01.0", class_code=0x020000),
        dev("02:01.0", "1234:0003", "01:00.0", class_code=0x020000),
        dev("02:02.0", "1234:0004", "01:00.0", class_code=0x020000),
    )
    assert label(t, "01:00.1", "02:01.0").level is NvLevel.PXB
    assert label(t, "02:01.0", "02:02.0").level is NvLevel.PIX  # one bridge


def test_unread_port_type_below_a_root_port_counts_as_a_switch():
    t = topo(
        host(),
        dev("00:01.0", bridge=True),
        dev("01:00.0", "10b5:8747", "00:01.0", bridge=True, pcie=None).replace(pcie_type=None),
        dev("02:08.0", "10b5:8747", "01:00.0", bridge=True).replace(pcie_type=None),
        dev("02:10.0", "10b5:8747", "01:00.0", bridge=True).replace(pcie_type=None),
        dev("03:00.0", "10de:102d", "02:08.0", class_code=0x030200),
        dev("04:00.0", "10de:102d", "02:10.0", class_code=0x030200),
    )
    derived = label(t, "03:00.0", "04:00.0")
    assert derived.level is NvLevel.PIX
    assert "taken as a switch upstream port" in derived.rule


def test_unknown_numa_node_gives_node_or_sys():
    t = topo(
        host("00:00.0"),
        dev("00:01.0", bridge=True),
        dev("01:00.0", "10de:20b0", "00:01.0", class_code=0x030200, numa_node=0),
        host("40:00.0"),
        dev("40:01.0", bridge=True),
        dev("41:00.0", "15b3:1017", "40:01.0", class_code=0x020000),
    )
    assert numa_node_of(t, B("01:00.0")) == 0 and numa_node_of(t, B("41:00.0")) is None
    derived = label(t, "01:00.0", "41:00.0")
    assert derived.level is NvLevel.SYS and derived.candidates == (NvLevel.SYS, NvLevel.NODE)
    assert derived.text == "SYS|NODE" and not derived.certain
    assert derived.matches(NvLevel.NODE) and not derived.matches(NvLevel.PHB)


def test_labels_as_printed():
    assert normalize_label("SOC") is NvLevel.SYS
    assert normalize_label(" node ") is NvLevel.NODE
    assert normalize_label("X") is None and normalize_label("NV12") is None
    assert is_nvlink("NV1") and is_nvlink("NV18") and not is_nvlink("NVX")
    assert NvLevel.SYS.old_legend == "SOC" and NvLevel.PIX.old_legend == "PIX"
    assert [lv.rank for lv in NvLevel] == [0, 1, 2, 3, 4]
    assert "NVLink" in NVLINK_NOT_DERIVABLE


# -- the reconstructions reproduce the real matrices -------------------------


@pytest.mark.parametrize(
    ("topo_path", "matrix_path"), [(K80_TOPO, K80_MATRIX), (L40S_TOPO, L40S_MATRIX)]
)
def test_reconstruction_gives_every_label_of_the_real_matrix(topo_path, matrix_path):
    t = load_source(topo_path).topology
    m = read_nvsmi_topo(matrix_path)
    comparison = compare(open_session(topo_path), m)
    assert not comparison.unmatched
    assert len(comparison.pairs) == len(m.labels) * (len(m.labels) - 1) // 2
    for pair in comparison.pairs:
        assert pair.label_agreement is Agreement.AGREE, (pair.a, pair.b, pair.label_note)
        assert derive_label(t, pair.bdf_b, pair.bdf_a).matches(pair.nvidia_level)


def test_k80_compare_kernel_verdicts():
    comparison = compare(open_session(K80_TOPO), read_nvsmi_topo(K80_MATRIX))
    assert comparison.matrix.form is LegendForm.OLD
    by = {(p.a, p.b): p for p in comparison.pairs}
    pix = by[("GPU0", "GPU1")]
    assert (pix.nvidia, pix.derived_printed, pix.kernel_text) == ("PIX", "PIX", "BUS_ADDR 4")
    assert pix.status is Agreement.AGREE
    phb = by[("GPU2", "GPU4")]
    assert (phb.nvidia, phb.kernel_text, phb.status) == ("PHB", "THRU_HOST_BRIDGE 8", "agree")
    assert "8086:2f01" in phb.kernel_note
    soc = by[("GPU1", "GPU5")]
    assert (soc.nvidia, soc.derived_printed, soc.kernel_text) == ("SOC", "SOC", "NOT_SUPPORTED 8")
    assert soc.label_agreement is Agreement.AGREE
    assert soc.kernel_agreement is Agreement.EXPECTED
    assert "REQ_SAME_HOST_BRIDGE" in soc.kernel_note
    counts = comparison.counts()
    assert counts[Agreement.AGREE] == 7 and counts[Agreement.EXPECTED] == 8
    assert counts[Agreement.UNEXPECTED] == 0
    assert [d.method for d in comparison.devices] == ["order"] * 6
    assert any("prints no PCI addresses" in n for n in comparison.notes)


def test_k80_on_an_amd_zen_cpu_and_on_an_int_era_kernel():
    amd = compare(
        open_session(K80_TOPO, EngineConfig.parse(cpu="amd:0x19")), read_nvsmi_topo(K80_MATRIX)
    )
    assert amd.counts()[Agreement.AGREE] == 15
    old = compare(
        open_session(K80_TOPO, EngineConfig.parse(kernel="5.3")), read_nvsmi_topo(K80_MATRIX)
    )
    by = {(p.a, p.b): p for p in old.pairs}
    assert by[("GPU0", "GPU1")].kernel_text == "upstream_bridge_distance() = 4"
    assert by[("GPU0", "GPU1")].status is Agreement.AGREE
    assert by[("GPU2", "GPU4")].verdict.distance == -1
    assert by[("GPU2", "GPU4")].kernel_agreement is Agreement.EXPECTED
    assert "v4.20-v5.3" in by[("GPU2", "GPU4")].kernel_note


def test_l40s_compare():
    m = read_nvsmi_topo(L40S_MATRIX)
    comparison = compare(open_session(L40S_TOPO), m)
    assert comparison.devices[-1].label == "NIC0" and comparison.devices[-1].bdf == B("01:00.0")
    assert comparison.devices[-1].method == "order"
    assert all(p.kernel_text == "NOT_SUPPORTED 4" for p in comparison.pairs)
    assert comparison.counts()[Agreement.EXPECTED] == 36
    nic = next(p for p in comparison.pairs if p.b == "NIC0")
    assert nic.derived_printed == "SYS|NODE" and nic.label_agreement is Agreement.AGREE
    assert "not in pci_p2pdma_whitelist[]" in nic.kernel_note
    zen = compare(open_session(L40S_TOPO, EngineConfig.parse(cpu="amd:0x19")), m)
    assert zen.counts()[Agreement.AGREE] == 36
    assert all(p.kernel_text == "THRU_HOST_BRIDGE 4" for p in zen.pairs)


# -- matching, NVLink, ACS ---------------------------------------------------


def test_hgx_synthetic_matrix_matches_gpus_by_bdf():
    comparison = compare(open_session("hgx-8gpu"), read_nvsmi_topo(HGX_MATRIX))
    methods = {d.label: d.method for d in comparison.devices}
    assert methods["GPU0"] == "bdf" and methods["NIC0"] == "order"
    assert comparison.devices[8].name == "mlx5_0"
    assert not any("prints no PCI addresses" in n for n in comparison.notes)
    by = {(p.a, p.b): p for p in comparison.pairs}
    nv = by[("GPU0", "GPU2")]
    assert nv.nvlink and nv.status is Agreement.EXPECTED
    assert nv.label_agreement is Agreement.EXPECTED and "over PCIe the pair is PXB" in nv.label_note
    assert "NVLink" in nv.kernel_note
    assert by[("GPU0", "NIC0")].status is Agreement.AGREE
    assert by[("GPU0", "NIC0")].kernel_text == "BUS_ADDR 4"
    assert by[("GPU0", "NIC2")].kernel_text == "BUS_ADDR 8"
    assert by[("GPU0", "NIC4")].kernel_text == "THRU_HOST_BRIDGE 12"
    assert comparison.counts()[Agreement.UNEXPECTED] == 0


def test_acs_redirect_makes_a_pix_pair_go_through_the_host_bridge():
    comparison = compare(
        open_session("hgx-8gpu", EngineConfig.parse(iommu="on")), read_nvsmi_topo(HGX_MATRIX)
    )
    pair = next(p for p in comparison.pairs if (p.a, p.b) == ("GPU0", "NIC0"))
    assert pair.nvidia == "PIX" and pair.label_agreement is Agreement.AGREE
    assert pair.verdict.map_type.value == "THRU_HOST_BRIDGE"
    assert pair.kernel_agreement is Agreement.EXPECTED
    assert pair.kernel_note.startswith("PIX ignores ACS: ACS redirect at")


def test_nics_match_by_rdma_name_when_labelled(hgx):
    relabelled = hgx.with_device(B("22:00.0"), label="mlx5_0")  # NIC2's function
    session = session_for(Loaded(relabelled, "file"))
    comparison = compare(session, read_nvsmi_topo(HGX_MATRIX))
    nic0 = comparison.devices[8]
    assert (nic0.label, nic0.method, nic0.bdf) == ("NIC0", "name", B("22:00.0"))
    nic1 = comparison.devices[9]
    assert (nic1.method, nic1.bdf) == ("order", B("1b:00.0"))
    by = {(p.a, p.b): p for p in comparison.pairs}
    assert by[("GPU0", "NIC0")].status is Agreement.UNEXPECTED  # PIX in the file, PXB here


def test_matrix_of_another_machine_disagrees_and_reports_unmatched():
    wrong = compare(open_session(L40S_TOPO), read_nvsmi_topo(K80_MATRIX))
    assert any("6 GPU(s), the topology has 8" in n for n in wrong.notes)
    pair = next(p for p in wrong.pairs if (p.a, p.b) == ("GPU0", "GPU1"))
    assert pair.status is Agreement.UNEXPECTED
    assert "matched wrongly (GPU0 by order, GPU1 by order)" in pair.label_note
    short = compare(open_session(K80_TOPO), read_nvsmi_topo(L40S_MATRIX))
    assert [d.label for d in short.unmatched] == ["GPU6", "GPU7", "NIC0"]
    assert any(n.startswith("not compared, no function found: GPU6") for n in short.notes)
    assert len(short.pairs) == 15


def test_bus_id_not_in_the_topology():
    text = HGX_MATRIX.read_text().replace("0, 00000000:1A:00.0", "0, 00000000:E1:00.0")
    comparison = compare(open_session("hgx-8gpu"), parse_nvsmi_topo(text, "hgx.txt"))
    gpu0 = comparison.devices[0]
    assert gpu0.method == "unmatched" and "0000:e1:00.0 is not in this topology" in gpu0.note


def test_unknown_labels_are_reported_as_unknown():
    text = HGX_MATRIX.read_text().replace("NIC0    PIX     PIX", "NIC0    N/A     PIX")
    comparison = compare(open_session("hgx-8gpu"), parse_nvsmi_topo(text, "hgx.txt"))
    by = {(p.a, p.b): p for p in comparison.pairs}
    assert by[("GPU0", "NIC0")].status is Agreement.AGREE  # the GPU0 row is read
    assert any("GPU0/NIC0: PIX in GPU0's row but N/A" in n for n in comparison.notes)
    text = HGX_MATRIX.read_text().replace(
        "GPU0     X      NV18    NV18    NV18    NV18    NV18    NV18    NV18    PIX",
        "GPU0     X      NV18    NV18    NV18    NV18    NV18    NV18    NV18    N/A",
    )
    comparison = compare(open_session("hgx-8gpu"), parse_nvsmi_topo(text, "hgx.txt"))
    pair = next(p for p in comparison.pairs if (p.a, p.b) == ("GPU0", "NIC0"))
    assert pair.status is Agreement.UNKNOWN


# -- outputs -------------------------------------------------------------------


def test_json_document():
    session = open_session(K80_TOPO)
    doc = comparison_document(session, compare(session, read_nvsmi_topo(K80_MATRIX)))
    doc = json.loads(json.dumps(doc))
    assert doc["kernel"]["version"] == "6.12" and doc["matrix"]["legend_form"] == "old"
    assert doc["matrix"]["gpu_bdfs_given"] is False
    assert doc["devices"][0] == {
        "label": "GPU0",
        "kind": "gpu",
        "name": None,
        "bdf": "0000:04:00.0",
        "matched_by": "order",
        "note": "",
        "affinity": {"CPU Affinity": "0-7,16-23"},
    }
    pair = doc["pairs"][0]
    assert pair["a"] == "GPU0" and pair["b"] == "GPU1"
    assert (pair["nvidia"], pair["p2pview_label"], pair["map_type"], pair["distance"]) == (
        "PIX",
        "PIX",
        "BUS_ADDR",
        4,
    )
    assert pair["status"] == "agree" and pair["common_upstream"] == "0000:02:00.0"
    assert doc["summary"] == {"agree": 7, "expected": 8, "unknown": 0, "unexpected": 0}
    assert doc["unmatched"] == []


def _render(session, comparison, width=160):
    console = Console(width=width, record=True, color_system=None)
    console.print(compare_view(session, comparison), soft_wrap=True)
    return console.export_text()


def test_rich_view():
    session = open_session("hgx-8gpu")
    comparison = compare(session, read_nvsmi_topo(HGX_MATRIX))
    out = _render(session, comparison)
    assert "NV18" in out and "mlx5_0" in out
    assert "120 pair(s) compared: 92 agree, 28 expected" in out
    assert "current legend (SYS/NODE)" in out


def test_compare_is_a_grid_with_the_summary_first():
    # 8 GPUs and 8 NICs printed 433 lines, a row per pair with the summary at
    # the end; now the summary, then one grid row per device as nvidia-smi
    # prints it, each cell NVIDIA's label beside the kernel's verdict.
    session = open_session("hgx-8gpu")
    comparison = compare(session, read_nvsmi_topo(HGX_MATRIX))
    lines = _render(session, comparison).splitlines()
    assert len(lines) < 80
    first = next(i for i, line in enumerate(lines) if "pair(s) compared" in line)
    grid = next(i for i, line in enumerate(lines) if line.split()[:2] == ["GPU0", "GPU1"])
    assert first < grid
    rows = {line.split()[0]: line for line in lines[grid + 1 : grid + 17]}
    assert set(rows) == {*(f"GPU{k}" for k in range(8)), *(f"NIC{k}" for k in range(8))}
    cells = rows["GPU0"].split()
    # GPU0: X, then NV18 with the PCIe verdict for each GPU, PIX B4 for NIC0 ...
    assert cells[1] == "X" and cells[2:4] == ["NV18", "B4~"] and cells[16:18] == ["PIX", "B4"]
    assert rows["NIC4"].split()[1:3] == ["SYS", "T12"]
    # the lower triangle is the same pair as the upper: the verdict is symmetric
    assert rows["GPU1"].split()[1:3] == ["NV18", "B4~"]
    assert any(line.startswith("expected  16 pair(s), nvidia-smi NV18") for line in lines)


def test_grid_mirror_is_the_reverse_direction_verdict():
    from p2pview.kernel import calc_map_type_and_dist

    session = open_session("hgx-8gpu", EngineConfig.parse(iommu="on"))
    comparison = compare(session, read_nvsmi_topo(HGX_MATRIX))
    for p in comparison.pairs:
        back = calc_map_type_and_dist(session.state, p.bdf_b, p.bdf_a)
        assert (back.map_type, back.distance) == (p.verdict.map_type, p.verdict.distance)


def test_unmatched_devices_show_nvidias_label_alone():
    session = open_session("switch-nvme")
    comparison = compare(session, read_nvsmi_topo(HGX_MATRIX))
    out = _render(session, comparison, width=200)
    assert "PIX -" in out and "no function was found for the device" in out


def test_compare_module_does_not_import_rich():
    import ast
    from pathlib import Path

    import p2pview.compare

    tree = ast.parse(Path(p2pview.compare.__file__).read_text())
    modules = {
        node.module if isinstance(node, ast.ImportFrom) else alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for alias in node.names
    }
    assert not any(m and m.split(".")[0] in ("rich", "textual") for m in modules), modules


# -- plain lspci -tv: GPUs known by their names (issue 12) ---------------------

NAMES = DATA / "names"
TRPRO_TV = str(NAMES / "trpro-3gpu.reconstruction.tv")
TRPRO_MATRIX = NAMES / "trpro-3gpu.topo.txt"


@pytest.mark.parametrize("dump", ["trpro-3gpu.reconstruction.tv", "trpro-3gpu.reconstruction.vvv"])
def test_gpus_of_a_plain_lspci_dump_are_matched(dump):
    session = open_session(str(NAMES / dump))
    comparison = compare(session, read_nvsmi_topo(TRPRO_MATRIX))
    matched = {d.label: str(d.bdf) for d in comparison.devices}
    # the RTX 6000 Ada's name is newer than pci.ids: vendor by name, GPU by code name;
    # the audio, USB and UCSI functions of the cards are not GPUs
    assert matched == {
        "GPU0": "0000:21:00.0",
        "GPU1": "0000:41:00.0",
        "GPU2": "0000:61:00.0",
        "NIC0": "0000:42:00.0",
    }
    assert len(comparison.pairs) == 6 and comparison.nothing_compared is None
    by = {(p.a, p.b): p for p in comparison.pairs}
    assert by[("GPU1", "NIC0")].derived_printed == "PHB"
    if dump.endswith(".tv"):
        assert any("3 GPU(s) recognised from their names" in n for n in comparison.notes)


def test_the_k80_box_as_lspci_tv_matches_its_hex_dump():
    matrix = read_nvsmi_topo(K80_MATRIX)
    named = compare(open_session(str(NAMES / "k80-3x-supermicro.reconstruction.tv")), matrix)
    numbered = compare(open_session(str(NAMES / "k80-3x-supermicro.reconstruction.hex")), matrix)
    assert [d.bdf for d in named.devices] == [d.bdf for d in numbered.devices]
    assert [p.derived_printed for p in named.pairs] == [p.derived_printed for p in numbered.pairs]
    pix = named.pairs[0]
    assert (pix.a, pix.b, pix.nvidia, pix.kernel_text) == ("GPU0", "GPU1", "PIX", "BUS_ADDR 4")


def test_nvidia_functions_of_unknown_class_stand_in_when_gpus_are_missing(tmp_path):
    tree = tmp_path / "h100.tv"
    tree.write_text(
        "-[0000:00]-+-00.0  Intel Corporation Xeon E7 v3/Xeon E5 v3/Core i7 DMI2\n"
        "           +-02.0-[01]----00.0  NVIDIA Corporation Device 2999\n"
        "           \\-03.0-[02]--+-00.0  NVIDIA Corporation Device 2999\n"
        "                        \\-00.1  NVIDIA Corporation Device 299a\n"
    )
    session = open_session(str(tree))
    assert session.topology[B("01:00.0")].ids == "10de:2999"  # "Device dddd": ID as printed
    matrix = parse_nvsmi_topo(
        "        GPU0    GPU1\nGPU0     X      PHB\nGPU1    PHB      X\n", "m.txt"
    )
    comparison = compare(session, matrix)
    assert [str(d.bdf) for d in comparison.devices] == ["0000:01:00.0", "0000:02:00.0"]
    assert any("taken as GPUs though the source gives no class" in n for n in comparison.notes)


def test_nothing_compared_says_why_and_exits_1(capsys):
    from p2pview.cli import main

    source = str(DATA / "pciutils" / "golden" / "cap-pcie-1.tv")
    comparison = compare(open_session(source), read_nvsmi_topo(K80_MATRIX))
    why = comparison.nothing_compared
    assert why is not None and why.startswith("0 pairs compared: no device of the matrix")
    assert "The matrix lists 6 GPU(s) (GPU0..GPU5)" in why
    assert "found 0 NVIDIA GPU(s), 0 NIC function(s)" in why
    assert main(["compare", source, str(K80_MATRIX)]) == 1
    err = capsys.readouterr().err
    assert "0 pairs compared" in err and "looked in cap-pcie-1.tv" in err
    assert main(["compare", "--json", source, str(K80_MATRIX)]) == 1
    doc = json.loads(capsys.readouterr().out)
    assert doc["pairs"] == [] and doc["nothing_compared"].startswith("0 pairs compared")
    one = compare(open_session(str(DATA / "pciutils" / "golden" / "tree-asus-p6t6.tv")),
                  read_nvsmi_topo(K80_MATRIX))  # fmt: skip
    assert one.nothing_compared is not None and "only GPU0 was found" in one.nothing_compared
    assert "NVIDIA functions that are not GPUs: 06:00.1" in one.nothing_compared
