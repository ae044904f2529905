"""Real machines' dumps: every verdict is the kernel's, or marked as resting on a named assumption.

Each directory of ``tests/data/realdumps`` holds a dump of a real machine and an
``expected.toml`` with, for the pairs that matter, the real kernel's verdict
on the real machine, derived by hand from Linux 6.12 ``drivers/pci/p2pdma.c``
(the derivation is in the file beside each pair), and the facts that
derivation needs but the dump lacks (``rests_on``). For every pair:

* ``rests_on = []``: the dump settles it; p2pview's verdict must equal the
  kernel's and rest on no assumption;
* otherwise p2pview's verdict equals the kernel's, or is marked as resting on
  an assumed fact named in ``rests_on`` and shows the kernel's verdict among
  its alternatives, or (when the dump lacks parents) says no verdict can be
  formed.

``README.md`` in that directory describes the corpus and the file format.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from conftest import DATA

from p2pview.compare import compare
from p2pview.kernel import calc_map_type_and_dist
from p2pview.session import EngineConfig, Session, session_for
from p2pview.sources import load_source
from p2pview.sources.nvsmi import read_nvsmi_topo

CORPUS = DATA / "realdumps"
DUMPS = sorted(p.parent for p in CORPUS.glob("*/expected.toml"))

#: The facts the corpus names -> the assumptions p2pview may mark for them.
FACTS = {
    "cpu": {"cpu"},
    "acs": {"acs"},
    "iommu": {"acs"},  # an IOMMU matters through the ACS bits it has the kernel set
    "parents": {"parent"},
    "host_bridge_device": {"host_bridge_device", "ids", "pcie_type"},
    "ids": {"ids", "host_bridge_device"},
    "kernel": {"kernel"},
}


def expected(directory: Path) -> dict:
    return tomllib.loads((directory / "expected.toml").read_text())


def session(directory: Path, doc: dict, source: str, fmt: str | None) -> Session:
    loaded = load_source(str((directory / source).resolve()), fmt)
    return session_for(loaded, EngineConfig.parse(kernel=doc.get("kernel", "6.12")))


def check_pair(pair: dict, verdict) -> None:
    """The rule of this module's docstring, for one pair."""
    want = (pair["map_type"], pair["distance"])
    got = (None if verdict.map_type is None else verdict.map_type.value, verdict.distance)
    where = f"{pair['provider']} -> {pair['client']}: {pair.get('derivation', '')[:200]}"
    rests_on = pair.get("rests_on", [])
    if not rests_on:
        assert got == want, where
        assert not verdict.assumptions, (where, verdict.assumptions)
        return
    if got == want and not verdict.undetermined:
        return
    if verdict.undetermined:
        assert "parents" in rests_on, where
        return
    named = set().union(*(FACTS[name] for name in rests_on))
    marked = {a.fact for a in verdict.assumptions}
    assert marked & named, (where, got, verdict.assumptions)
    outcomes = {
        (None if a.map_type is None else a.map_type.value, a.distance) for a in verdict.alternatives
    }
    assert want in outcomes, (where, got, verdict.alternatives)


def test_the_corpus_is_big_enough():
    assert len(DUMPS) >= 12
    pairs = sum(len(expected(d).get("pair", [])) for d in DUMPS)
    assert pairs >= 100


@pytest.mark.parametrize(
    "directory", [d for d in DUMPS if expected(d)["format"] != "nvidia-smi"], ids=lambda d: d.name
)
def test_every_pair_is_the_kernels_or_marked(directory):
    doc = expected(directory)
    s = session(directory, doc, doc["source"], None if doc["format"] == "sysfs" else doc["format"])
    pairs = doc.get("pair", [])
    assert pairs
    for pair in pairs:
        provider = s.topology.resolve(pair["provider"])
        client = s.topology.resolve(pair["client"])
        check_pair(pair, calc_map_type_and_dist(s.state, provider, client))


@pytest.mark.parametrize(
    "directory", [d for d in DUMPS if expected(d)["format"] == "nvidia-smi"], ids=lambda d: d.name
)
def test_nvidia_smi_labels_and_the_kernel_beside_them(directory):
    doc = expected(directory)
    matrix = read_nvsmi_topo(directory / doc["source"])
    for pair in doc.get("pair", []):
        assert matrix.cell(pair["provider"], pair["client"]) == pair["label"], pair
    if "tree" not in doc:
        return
    s = session(directory, doc, doc["tree"], None)
    comparison = compare(s, matrix)
    by_labels = {(c.a, c.b): c for c in comparison.pairs}
    for pair in doc.get("pair", []):
        if "map_type" not in pair:
            continue
        found = by_labels.get((pair["provider"], pair["client"]))
        assert found is not None, (pair, list(by_labels))
        check_pair(pair, found.verdict)
