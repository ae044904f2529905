"""The bundled topologies load, and say what their header comments claim."""

from __future__ import annotations

import pytest
from bundled_claims import CLAIMS

from p2pview.cli import main
from p2pview.sources import bundled_topologies, load_source

NAMES = [t.name for t in bundled_topologies()]


def test_at_least_eight_with_titles_and_headers():
    items = bundled_topologies()
    assert len(items) >= 8
    for item in items:
        text = item.path.read_text()
        assert text.startswith("#"), f"{item.name}: no header comment"
        assert item.title, f"{item.name}: no description"


@pytest.mark.parametrize("name", NAMES)
def test_loads_and_every_matrix_cell_is_decided(name, capsys):
    assert main(["matrix", name, "--json"]) == 0
    assert load_source(name).topology.name == name


def _explain(capsys, topo: str, provider: str, client: str, extra: tuple[str, ...]) -> str:
    assert main(["explain", topo, provider, client, *extra]) == 0
    return capsys.readouterr().out


@pytest.mark.parametrize(("check", "topo", "provider", "client", "expected", "extra"), CLAIMS)
def test_header_claims(capsys, check, topo, provider, client, expected, extra):
    out = _explain(capsys, topo, provider, client, extra)
    if check == "result":
        result = next(line for line in out.splitlines() if line.startswith("Result: "))
        assert result.removeprefix("Result: ") == expected
    elif check == "message":
        assert expected in out
    else:
        assert expected not in out
