"""The ``nvidia-smi topo -m`` reader: real matrices, both legends, and errors that name the line."""

from __future__ import annotations

import re

import pytest
from conftest import DATA

from p2pview.model import BDF
from p2pview.sources import SourceError
from p2pview.sources.nvsmi import (
    NO_GPU_BDFS,
    LegendForm,
    parse_nvsmi_topo,
    read_nvsmi_topo,
    sniff_nvsmi_topo,
)

NVSMI = DATA / "nvidia-smi"
K80 = NVSMI / "nccl-issue19-supermicro-3xK80.topo.txt"
L40S = NVSMI / "nccl-tests-issue273-8xL40S-pass.topo.txt"
HGX = NVSMI / "hgx-8gpu.synthetic.topo.txt"

# The DGX-1 layout of 2017-2019 drivers: NICs named by their RDMA device in the header,
# no NIC Legend, SYS/PHB labels, NV1/NV2 between GPUs.
DGX1_STYLE = """\
\tGPU0\tGPU1\tGPU2\tGPU3\tmlx5_0\tmlx5_1\tCPU Affinity
GPU0\t X \tNV1\tNV1\tNV2\tPIX\tSYS\t0-19,40-59
GPU1\tNV1\t X \tNV2\tNV1\tPIX\tSYS\t0-19,40-59
GPU2\tNV1\tNV2\t X \tNV1\tPHB\tSYS\t0-19,40-59
GPU3\tNV2\tNV1\tNV1\t X \tPHB\tSYS\t0-19,40-59
mlx5_0\tPIX\tPIX\tPHB\tPHB\t X \tSYS\t
mlx5_1\tSYS\tSYS\tSYS\tSYS\tSYS\t X \t

Legend:

  X    = Self
  SYS  = Connection traversing PCIe as well as the SMP interconnect between NUMA nodes
  NODE = Connection traversing PCIe as well as the interconnect between PCIe Host Bridges
  PHB  = Connection traversing PCIe as well as a PCIe Host Bridge (typically the CPU)
  PXB  = Connection traversing multiple PCIe switches (without traversing the PCIe Host Bridge)
  PIX  = Connection traversing a single PCIe switch
  NV#  = Connection traversing a bonded set of # NVLinks
"""

SMALL = """\
        GPU0    GPU1    NIC0    CPU Affinity    NUMA Affinity   GPU NUMA ID
GPU0     X      PIX     PXB     0-7     0               N/A
GPU1    PIX      X      PXB     0-7     0               N/A
NIC0    PXB     PXB      X

NIC Legend:

  NIC0: mlx5_0
"""


def test_old_legend_k80_matrix():
    m = read_nvsmi_topo(K80)
    assert m.labels == tuple(f"GPU{i}" for i in range(6))
    assert m.form is LegendForm.OLD
    assert m.affinity_columns == ("CPU Affinity",)
    assert m.header_line == 2  # line 1 is the shell prompt
    assert m.lines == (3, 4, 5, 6, 7, 8)
    assert m.cell("GPU0", "GPU1") == "PIX" and m.cell("GPU2", "GPU4") == "PHB"
    assert m.cell("GPU1", "GPU5") == "SOC"
    assert m.affinity_of("GPU0", "CPU Affinity") == "0-7,16-23"
    assert m.cpu_affinity("GPU2") == ((8, 15), (24, 31))
    assert m.legend["SOC"] == "Path traverses a socket-level link (e.g. QPI)"
    assert m.legend["PIX"] == "Path traverses a PCIe internal switch"
    assert not m.bdfs and not m.nic_names and not m.notes
    assert m.gpus == m.labels and m.nics == ()


def test_current_legend_l40s_matrix():
    m = read_nvsmi_topo(L40S)
    assert m.form is LegendForm.CURRENT
    assert m.labels[-1] == "NIC0" and m.kind("NIC0") == "nic" and m.kind("GPU7") == "gpu"
    assert m.affinity_columns == ("CPU Affinity", "NUMA Affinity", "GPU NUMA ID")
    assert m.numa_affinity("GPU5") == (1,)
    assert m.affinity_of("GPU0", "GPU NUMA ID") == "N/A"
    assert m.affinity_of("NIC0", "CPU Affinity") is None  # the NIC row has none
    assert m.numa_affinity("NIC0") is None
    assert {m.cell("GPU0", g) for g in ("GPU1", "GPU2", "GPU3")} == {"NODE"}
    assert {m.cell("NIC0", g) for g in m.gpus} == {"SYS"}
    assert m.name("NIC0") is None  # no NIC Legend in this output
    assert m.legend == {}


def test_nic_legend_bus_ids_and_nvlink():
    m = read_nvsmi_topo(HGX)
    assert len(m.gpus) == 8 and len(m.nics) == 8
    assert m.nic_names["NIC3"] == "mlx5_3" and m.name("NIC3") == "mlx5_3"
    assert m.bdfs["GPU0"] == BDF.parse("0000:1a:00.0")
    assert m.bdfs["GPU7"] == BDF.parse("0000:a5:00.0")
    assert m.cell("GPU0", "GPU5") == "NV18"
    assert m.legend["NV#"] == "Connection traversing a bonded set of # NVLinks"


def test_rdma_names_in_the_header():
    m = parse_nvsmi_topo(DGX1_STYLE, "dgx1.txt")
    assert m.nics == ("mlx5_0", "mlx5_1")
    assert m.name("mlx5_1") == "mlx5_1"
    assert m.form is LegendForm.CURRENT
    assert m.affinity_of("mlx5_0", "CPU Affinity") is None


def test_ansi_codes_crlf_and_surrounding_text():
    text = "user@host:~$ nvidia-smi topo -m\r\n" + SMALL.replace(
        "        GPU0    GPU1    NIC0", "\t\x1b[4mGPU0\tGPU1\tNIC0"
    ).replace("GPU NUMA ID", "GPU NUMA ID\x1b[0m").replace("\n", "\r\n")
    text += "user@host:~$ exit\r\n"
    m = parse_nvsmi_topo(text, "ansi.txt")
    assert m.labels == ("GPU0", "GPU1", "NIC0")
    assert m.nic_names == {"NIC0": "mlx5_0"}
    assert m.form is LegendForm.UNKNOWN  # neither SOC nor SYS/NODE appears


def test_sniff():
    for path in (K80, L40S, HGX):
        assert sniff_nvsmi_topo(path.read_text())
    assert sniff_nvsmi_topo(DGX1_STYLE)
    assert not sniff_nvsmi_topo("")
    assert not sniff_nvsmi_topo((DATA.parent.parent / "topologies" / "hgx-8gpu.toml").read_text())
    assert not sniff_nvsmi_topo("00:00.0 Host bridge: Intel Corporation Device 09a2\n")
    assert not sniff_nvsmi_topo("GPU0 is busy\nGPU0 X\n")  # "X" in the first line: no header


def test_gpu_addresses_are_never_printed_by_topo_m():
    assert "prints no PCI addresses" in NO_GPU_BDFS
    assert read_nvsmi_topo(L40S).bdfs == {}


def test_unknown_label_and_asymmetry_are_notes():
    text = SMALL.replace("GPU1    PIX      X      PXB", "GPU1    PIX      X      C2C")
    m = parse_nvsmi_topo(text, "odd.txt")
    assert m.cell("GPU1", "NIC0") == "C2C"
    assert any("unknown label C2C" in n and n.startswith("line 3:") for n in m.notes)
    assert any("GPU1/NIC0: C2C in GPU1's row but PXB in NIC0's" in n for n in m.notes)


def _rejects(text: str, line: int, words: str) -> None:
    with pytest.raises(SourceError) as info:
        parse_nvsmi_topo(text, "bad.txt")
    message = str(info.value)
    assert message.startswith(f"bad.txt: line {line}: "), message
    assert re.search(words, message), message


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("", 1, "no 'nvidia-smi topo -m' header"),
        ("hello\nworld\n", 2, "no 'nvidia-smi topo -m' header"),
        ("GPU0 X PIX\n", 1, "row .* before any header"),
        (
            SMALL.replace("GPU1    PIX      X      PXB     0-7     0               N/A\n", ""),
            3,
            "expected the row of GPU1",
        ),
        ("\n".join(SMALL.splitlines()[:2]) + "\n", 2, "end of file after 1 of 3 matrix rows"),
        (SMALL.replace("GPU1    PIX      X      PXB", "GPU1    PIX      X"), 3, "has 2 cells"),
        (
            SMALL.replace("GPU1    PIX      X      PXB", "GPU1    PIX      X      pix"),
            3,
            "'pix' is not a topology label",
        ),
        (SMALL.replace("GPU0     X      PIX", "GPU0     PIX    PIX"), 2, "expected X"),
        (SMALL.replace("GPU0     X      PIX", "GPU0     X      X  "), 2, "X off the diagonal"),
        (
            SMALL.replace("0-7     0               N/A\nGPU1", "0-7     0   N/A   5\nGPU1"),
            2,
            "4 values after the matrix",
        ),
        (SMALL.replace("PXB     0-7", "PXB     0_7", 1), 2, "not a CPU/node list"),
        (SMALL.replace("PXB     0-7", "PXB     7-0", 1), 2, "runs backwards"),
        (SMALL.replace("NIC0: mlx5_0", "NIC5: mlx5_0"), 8, "NIC5, which is not in the matrix"),
        (SMALL + "\n" + SMALL, 10, "a second matrix"),
        (SMALL.replace("GPU0    GPU1    NIC0", "GPU0    GPU0    NIC0"), 1, "appears twice"),
        (
            SMALL.replace("GPU0    GPU1    NIC0    CPU", "GPU0    GPU1    NIC0   Speed  CPU"),
            1,
            "'Speed' is neither a device",
        ),
        (SMALL + "7, 00000000:1A:00.0\n", 9, "bus ID line for GPU7"),
        (SMALL + "0, 00000000:1A:00.0\n1, 00000000:1A:00.0\n", 10, "given to two GPUs"),
        (
            SMALL.replace("PXB     0-7", "SYS     0-7", 1).replace("NIC0    PXB", "NIC0    SOC"),
            4,
            "mixes the old legend",
        ),
    ],
)
def test_malformed_input_names_file_and_line(text, line, words):
    _rejects(text, line, words)


def test_mixed_legend_in_legend_block():
    text = SMALL.replace("PXB", "SYS") + "\nLegend:\n\n  X = Self\n  SOC = socket link\n"
    _rejects(text, 13, "the legend lists SOC")


def test_unreadable_file(tmp_path):
    with pytest.raises(SourceError, match=r"missing.txt: line 1: cannot read"):
        read_nvsmi_topo(tmp_path / "missing.txt")
    binary = tmp_path / "binary.txt"
    binary.write_bytes(b"\xff\xfe\x00GPU0\x00")
    with pytest.raises(SourceError, match=r"binary.txt: line \d+: "):
        read_nvsmi_topo(binary)


def test_prose_starting_with_gpu0_before_the_matrix_is_skipped():
    m = parse_nvsmi_topo("GPU0 is the one that is hot\n" + SMALL, "prose.txt")
    assert m.header_line == 2 and m.labels == ("GPU0", "GPU1", "NIC0")
    _rejects("GPU0 is hot\nGPU0 X PIX\n", 1, "'is' is neither a device")
