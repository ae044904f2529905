"""README's "Checked against real kernels" table is the committed verification run.

``verification-results.json`` (beside README) is what ``p2pview verify --record``
wrote in the last run of tools/oracle-kernel/verify-all.sh and
tools/qemu-acs/verify-acs.sh; ``tools/verification-table.py`` turns it into the
table. A table typed or edited by hand, or results committed without running the
script, fail here.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from p2pview.kernel import KernelTarget
from p2pview.qemu.record import load, render_table, replace_in_readme

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "verification-results.json"
README = ROOT / "README.md"
RELEASES = ("5.10", "6.1", "6.12", "7.2", "7.3")


@pytest.fixture(scope="module")
def data():
    return load(RESULTS)


def test_readme_table_is_the_committed_results(data):
    readme = README.read_text()
    assert replace_in_readme(readme, render_table(data)) == readme


def test_the_script_agrees():
    script = ROOT / "tools" / "verification-table.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--check"], capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr


def test_every_release_with_both_cpu_models(data):
    booted = [m for m in data["machines"] if "error" not in m]
    for release in RELEASES:
        mine = [m for m in booted if m["kernel"].startswith(release + ".")]
        assert {m["cpu"] for m in mine} == {"qemu64", "EPYC"}, release
        assert {m["qemu"] for m in mine} == {"stock", "dsp-acs"}, release
        # judged by the era p2pview picks for that release
        assert {m["profile"] for m in mine} == {KernelTarget.parse(release).profile.title}


def test_every_pair_agrees_or_is_explained(data):
    render_table(data)  # raises on a disagreement without an explanation
    for m in data["machines"]:
        if "error" in m:
            assert m.get("skipped"), f"{m['topology']} on {m['kernel']}: {m['error']}"
            continue
        assert m["pairs"]["checked"] > 0, m["topology"]


def test_no_o_direct_into_p2p_memory_before_6_2(data):
    for m in data["machines"]:
        if "error" in m or not m["kernel"].startswith(("5.10.", "6.1.")):
            continue
        assert set(m["allocate"]["outcomes"]) == {"ENOENT"}, m["topology"]
        assert set(m["bar"]["outcomes"]) == {"EFAULT"}, m["topology"]
        assert "allocate" not in m["p2pmem_files"]
