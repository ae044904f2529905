"""Start-up: each command imports only what it uses (the timings are in benchmarks/bench_cli.py).

``p2pview --version`` took 1.2 s when every command's modules were imported
up front (networkx alone ~0.3 s). Now a command pulls in numpy only for a
matrix or the I/O simulator, networkx only when ``Topology.graph`` is used,
Textual only for the TUI, and the dump readers only for dumps. ``matrix`` and
``trace`` need numpy (55 ms of the 150 ms target alone, with the one OpenBLAS
thread ``p2pview.cli`` asks for; 100 ms with a thread per core), so every other module
they import counts: on a bundled topology neither needs the sysfs reader,
``pci_p2pmem_find_many()``, ``numpy.ma`` nor ``importlib.resources`` (its
``zipfile`` for a path known in advance). Each case runs in a fresh
interpreter, as a user's shell would start it.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from conftest import DATA

#: Prints the status and every module a command imported (its output goes nowhere).
_PROBE = """
import contextlib, io, json, sys
from p2pview.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "imported": sorted(sys.modules)}))
"""

HEAVY = {"numpy", "networkx", "textual"}
SWITCH_TREE = str(DATA / "qemu-guest-captures/switch-qemu64.tar.gz")
K80_FILE = str(DATA / "nvidia-smi/k80-3x-supermicro.reconstruction.toml")
K80_MATRIX = str(DATA / "nvidia-smi/nccl-issue19-supermicro-3xK80.topo.txt")
#: The readers of dumps and archives: a topology file needs none of them.
DUMP_READERS = {
    "p2pview.sources.hwloc",
    "p2pview.sources.nccl",
    "p2pview.sources.lspci",
    "p2pview.sources.archive",
    "p2pview.sources.sysfs",
    "tarfile",
    "xml.parsers.expat",
}


def imported(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    answer = json.loads(proc.stdout)
    return answer["code"], set(answer["imported"])


def test_version_imports_no_engine_and_no_rich():
    code, mods = imported("--version")
    assert code == 0
    assert not mods & {*HEAVY, "rich", "p2pview.kernel", "p2pview.sources"}, mods


def test_help_imports_neither_rich_nor_numpy():
    code, mods = imported("--help")
    assert code == 0 and not mods & {*HEAVY, "rich"}, mods


@pytest.mark.parametrize(
    "argv",
    [
        ["profiles"],
        ["formats"],
        ["topologies"],
        ["scenarios"],
        ["explain", "switch-nvme", "1a:00.0", "1b:00.0"],
        ["explain", "--json", "switch-nvme", "1a:00.0", "1b:00.0"],
        ["find", "switch-nvme", "1b:00.0"],
        ["convert", "switch-nvme", "-o", "-"],
        # compare draws no matrix: the session header and the JSON pieces come without it
        ["compare", K80_FILE, K80_MATRIX],
        ["compare", "--json", K80_FILE, K80_MATRIX],
    ],
    ids=lambda argv: " ".join(a for a in argv if not a.startswith("/")),
)
def test_commands_without_a_matrix_import_neither_numpy_nor_networkx(argv):
    code, mods = imported(*argv)
    assert code == 0 and not mods & HEAVY, mods


def test_one_pair_on_a_topology_file_needs_no_dump_reader():
    _, mods = imported("explain", "switch-nvme", "1a:00.0", "1b:00.0")
    assert "p2pview.sources.formats" not in mods and not mods & DUMP_READERS
    # A topology file given by its path is detected from its content, by the sniff tests
    # tried before its own (p2pview.sources.sniff), without importing a dump reader.
    code, mods = imported("explain", K80_FILE, "04:00.0", "05:00.0")
    assert code == 0 and "p2pview.sources.formats" in mods
    assert not mods & DUMP_READERS, mods & DUMP_READERS


def test_one_pair_on_a_capture_needs_no_dump_reader():
    code, mods = imported("explain", SWITCH_TREE, "03:00.0", "04:00.0")
    assert code == 0 and "p2pview.sources.formats" not in mods and not mods & HEAVY, mods


NOT_NEEDED_BY_NUMPY_COMMANDS = {
    "networkx",
    "textual",
    "numpy.ma",
    "importlib.resources",
    "zipfile",
    "p2pview.sources.sysfs",
    "p2pview.sources.configspace",
    "p2pview.kernel.many",
}


@pytest.mark.parametrize(
    "argv", [["matrix", "switch-nvme"], ["trace", "cmb-read-bus-addr"]], ids=lambda a: a[0]
)
def test_the_matrix_and_the_simulator_bring_numpy_and_nothing_they_do_not_use(argv):
    code, mods = imported(*argv)
    assert code == 0 and "numpy" in mods
    assert not mods & NOT_NEEDED_BY_NUMPY_COMMANDS, mods & NOT_NEEDED_BY_NUMPY_COMMANDS


#: Imports numpy the way p2pview does (after p2pview.cli) and counts the process's threads.
_THREADS = """
import os
import p2pview.cli
import numpy
print(os.environ.get("OPENBLAS_NUM_THREADS"), len(os.listdir("/proc/self/task")))
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="counts /proc/self/task")
@pytest.mark.parametrize(("given", "expected"), [(None, "1 1"), ("2", "2 ")])
def test_numpy_starts_no_blas_threads_unless_the_user_asks(given, expected):
    # OpenBLAS started a thread per core at numpy's import, costing about 50 ms of CPU on
    # 2 cores for nothing: p2pview makes no BLAS call. A value the user set is kept.
    import os

    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    if given is not None:
        env["OPENBLAS_NUM_THREADS"] = given
    out = subprocess.run(
        [sys.executable, "-c", _THREADS], capture_output=True, text=True, check=True, env=env
    ).stdout.strip()
    assert out.startswith(expected), out


def test_topology_graph_imports_networkx_on_first_use():
    probe = (
        "import sys\n"
        "from p2pview.sources import load_source\n"
        "topo = load_source('switch-nvme').topology\n"
        "before = 'networkx' in sys.modules\n"
        "graph = topo.graph\n"
        "print(before, 'networkx' in sys.modules, graph.number_of_nodes(), topo.graph is graph)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:2] == ["False", "True"] and int(out[2]) > 1 and out[3] == "True"


def test_the_simulator_is_imported_on_first_use_and_simulate_stays_the_function():
    # 'p2pview scenarios' reads scenarios without the simulator (numpy); the
    # package's 'simulate' is the function however the simulator gets imported
    probe = (
        "import sys\n"
        "from p2pview.iosim import read_scenario\n"
        "print('numpy' in sys.modules)\n"
        "from p2pview.iosim.simulate import Trace\n"
        "import p2pview.iosim as iosim\n"
        "from p2pview.iosim import simulate, STAGES\n"
        "print(callable(simulate), iosim.simulate is simulate, simulate.__module__, len(STAGES))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True
    ).stdout.split()
    assert out[:4] == ["False", "True", "True", "p2pview.iosim.simulate"] and int(out[4]) > 5


def test_the_scenario_reader_needs_no_topology_reader():
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import json, sys, p2pview.iosim.scenario;"
            " print(json.dumps(sorted(m for m in sys.modules if m.startswith('p2pview.sources'))))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    loaded = set(json.loads(proc.stdout))
    readers = {"sysfs", "topofile", "bundled", "infer", "configspace", "tree"}
    assert not loaded & {f"p2pview.sources.{name}" for name in readers}, loaded


def test_the_sources_package_still_lends_every_name():
    import p2pview.sources as sources

    for name in sources.__all__:
        assert getattr(sources, name) is not None, name
    import p2pview.kernel as kernel

    for name in kernel.__all__:
        assert getattr(kernel, name) is not None, name
