"""A one-pair query reads only what the pair's decision uses, and says the same.

``p2pview explain TREE A B`` on a sysfs tree reads the two functions, the
bridges above them and the functions on their root buses
(``read_sysfs(..., only=...)``); every verdict, message and explanation line
must be what a whole read gives, except the note that says the read was partial.
"""

from __future__ import annotations

import io
import itertools
import random
import tarfile
from pathlib import Path

import pytest
from rich.console import Console

from p2pview.cli import main
from p2pview.kernel.decision import calc_map_type_and_dist
from p2pview.model import BDF, Kind, kind_of
from p2pview.session import EngineConfig, Session, open_session
from p2pview.sources.synthetic import generate, write_sysfs_tree
from p2pview.views.explain import explain_view

DATA = Path(__file__).parent / "data"


def _explained(session: Session, a: BDF, b: BDF) -> tuple[dict[str, object], list[str]]:
    verdict = calc_map_type_and_dist(session.state, a, b)
    out = io.StringIO()
    Console(file=out, width=1000, no_color=True).print(explain_view(session, verdict))
    # The notes about the read itself (how many functions lack ACS, which were
    # trimmed) speak of what was read; everything about the pair must match.
    lines = [line.rstrip() for line in out.getvalue().splitlines()]
    return verdict.to_dict(), [line for line in lines if not line.startswith("note:")]


def _same_as_whole(root: Path, pairs: list[tuple[BDF, BDF]], kernel: str) -> int:
    """Compare each pair read in part with the whole read; the most functions a part read."""
    whole = open_session(str(root), EngineConfig.parse(kernel=kernel))
    most = 0
    for a, b in pairs:
        part = open_session(str(root), EngineConfig.parse(kernel=kernel), only=[a, b])
        most = max(most, len(part.topology.devices))
        assert _explained(part, a, b) == _explained(whole, a, b), (a, b)
    return most


@pytest.mark.parametrize("kernel", ["5.10", "6.12", "7.2"])
def test_generated_tree_pairs_read_in_part_equal_a_whole_read(tmp_path: Path, kernel: str) -> None:
    topo = generate(300, seed=7)
    write_sysfs_tree(topo, tmp_path)
    endpoints = [d.bdf for d in topo.devices if kind_of(d) is not Kind.BRIDGE]
    pairs = random.Random(1).sample(list(itertools.permutations(endpoints, 2)), 25)
    assert _same_as_whole(tmp_path, pairs, kernel) < len(topo.devices) // 4


@pytest.mark.parametrize(
    "capture",
    [
        "qemu-guest-captures/switch-qemu64.tar.gz",
        "qemu-guest-captures/pxb2-qemu64.tar.gz",
        "qemu-guest-captures/mf3-qemu64-acs-rp.tar.gz",
        "hwloc/32intel64-2p8co2t+8ve.tar.bz2",  # a real host, gathered by hwloc
    ],
)
def test_real_captures_read_in_part_equal_a_whole_read(tmp_path: Path, capture: str) -> None:
    # The captures are archives (read whole, in memory); unpacked, they are the
    # directory trees a one-pair query reads in part.
    with tarfile.open(DATA / capture) as tar:
        tar.extractall(tmp_path, filter="data")
    (root,) = [p.parent.parent for p in tmp_path.rglob("sys/bus") if p.is_dir()] or [tmp_path]
    whole = open_session(str(root))
    bdfs = [d.bdf for d in whole.topology.devices]
    _same_as_whole(root, list(itertools.permutations(bdfs, 2))[:60], "6.12")


def test_explain_says_the_read_was_partial(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    topo = generate(200, seed=3)
    write_sysfs_tree(topo, tmp_path)
    a, b = [d.bdf for d in topo.devices if kind_of(d) is not Kind.BRIDGE][:2]
    assert main(["explain", str(tmp_path), str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "functions this query's decision uses were read" in out


def test_a_function_not_in_the_tree_is_reported_as_by_a_whole_read(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_sysfs_tree(generate(50, seed=1), tmp_path)
    assert main(["explain", str(tmp_path), "0000:ee:00.0", "0000:ef:00.0"]) == 2
    err = capsys.readouterr().err
    assert "ee:00.0" in err
    assert "functions this query's decision uses" not in err
