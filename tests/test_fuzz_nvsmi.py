"""Fuzzing the ``nvidia-smi topo -m`` reader with mutated real matrices.

The rule: ``parse_nvsmi_topo`` returns a matrix or raises SourceError whose
message starts with the file name and names a line; ``sniff_nvsmi_topo``
never raises; whatever parses can be compared with a topology.
"""

from __future__ import annotations

import re

from conftest import DATA
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mutations import mutated_lines

from p2pview.compare import compare
from p2pview.session import open_session
from p2pview.sources import SourceError
from p2pview.sources.nvsmi import parse_nvsmi_topo, sniff_nvsmi_topo

NVSMI = DATA / "nvidia-smi"
SEEDS = [
    (NVSMI / name).read_text()
    for name in (
        "nccl-issue19-supermicro-3xK80.topo.txt",
        "nccl-tests-issue273-8xL40S-pass.topo.txt",
        "hgx-8gpu.synthetic.topo.txt",
    )
]
PATH = "fuzz/topo-m.txt"
REJECTION = re.compile(r"^fuzz/topo-m\.txt: line [1-9][0-9]*: \S")
VOCABULARY = [
    "X", " X ", "PIX", "PXB", "PHB", "NODE", "SYS", "SOC", "NV4", "NV18", "N/A", "GPU0",
    "GPU9", "NIC0", "mlx5_0", "CPU Affinity", "NUMA Affinity", "GPU NUMA ID", "0-7,16-23",
    "Legend:", "NIC Legend:", "  NIC0: mlx5_0", "0, 00000000:1A:00.0", "\t", "  ", "",
    "\x1b[4m", "\r", "9-1", "99999999", "-", ",", "=",
]  # fmt: skip
FUZZ = settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FUZZ
@given(mutated_lines(SEEDS, VOCABULARY))
def test_parser_raises_only_source_errors_naming_the_line(text):
    sniff_nvsmi_topo(text)
    try:
        matrix = parse_nvsmi_topo(text, PATH)
    except SourceError as exc:
        assert REJECTION.match(str(exc)), str(exc)
        return
    assert len(matrix.cells) == len(matrix.labels) == len(matrix.lines)
    assert all(len(row) == len(matrix.labels) for row in matrix.cells)
    assert all(matrix.cells[i][i] == "X" for i in range(len(matrix.labels)))


SESSIONS = {}


def _session(name: str):
    if name not in SESSIONS:
        SESSIONS[name] = open_session(name)
    return SESSIONS[name]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_lines(SEEDS, VOCABULARY), st.sampled_from(["hgx-8gpu", "epyc-2s", "desktop-intel"]))
def test_whatever_parses_can_be_compared(text, source):
    try:
        matrix = parse_nvsmi_topo(text, PATH)
    except SourceError:
        return
    comparison = compare(_session(source), matrix)
    assert len(comparison.devices) == len(matrix.labels)
    comparison.to_dict()
