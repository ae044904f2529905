"""Start-up of the commands that need numpy: only the readers and kernel code they use.

``matrix`` and ``trace`` import numpy (the vectorised matrix, the simulator's
memory), so every other module they import counts against the 150 ms target
(``benchmarks/bench_cli.py``). On a bundled topology neither needs the sysfs
reader, nor ``pci_p2pmem_find_many()``; the simulator's scenario reader wants
only its checks and bounded reads from the sources package; and a trace need not import
``numpy.ma`` (``np.unique`` does). Each case runs in a fresh interpreter.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

_PROBE = """
import contextlib, io, json, sys
from p2pview.cli import main
with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exc:
        code = exc.code
print(json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""

NOT_NEEDED = {"p2pview.sources.sysfs", "p2pview.sources.configspace", "p2pview.kernel.many"}


def modules(*argv: str) -> tuple[int, set[str]]:
    proc = subprocess.run(
        [sys.executable, "-c", _PROBE, *argv], capture_output=True, text=True, check=True
    )
    answer = json.loads(proc.stdout)
    return answer["code"], set(answer["modules"])


@pytest.mark.parametrize(
    "argv", [["matrix", "switch-nvme"], ["trace", "cmb-read-bus-addr"]], ids=lambda a: a[0]
)
def test_numpy_commands_import_no_reader_or_kernel_code_they_do_not_use(argv: list[str]) -> None:
    code, mods = modules(*argv)
    assert code == 0
    assert "numpy" in mods
    assert not mods & NOT_NEEDED, mods & NOT_NEEDED
    assert "numpy.ma" not in mods


def test_the_scenario_reader_needs_no_topology_reader() -> None:
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


def test_the_sources_package_still_lends_every_name() -> None:
    import p2pview.sources as sources

    for name in sources.__all__:
        assert getattr(sources, name) is not None, name
    import p2pview.kernel as kernel

    for name in kernel.__all__:
        assert getattr(kernel, name) is not None, name
