"""``p2pview matrix --json``, streamed (README documents the fields).

The pairs are computed and printed a block of rows at a time
(:class:`p2pview.kernel.pairstream.PairRecords`), so memory stays bounded
however many functions the topology has. The head (kernel, platform,
devices) is made of :mod:`p2pview.jsonreport`'s pieces.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from p2pview.jsonreport import device_dict, kernel_dict, platform_dict
from p2pview.kernel.matrix import CODE_TO_MAP_TYPE
from p2pview.kernel.pairstream import PairRecords
from p2pview.model import BDF, Topology
from p2pview.session import Session


def write_matrix_document(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF], out: TextIO
) -> None:
    """Stream ``p2pview matrix --json`` to ``out``, a block of provider rows at a time.

    Memory is bounded by :data:`p2pview.kernel.pairstream.BLOCK_CELLS` cells
    (and the per-function tables), not by the number of pairs. Pairs are
    written one per line.
    """
    head = _matrix_head(session, providers, clients)
    out.write("{\n")
    for key, value in head.items():
        out.write(f" {json.dumps(key)}: {json.dumps(value, indent=1)},\n")
    out.write(' "pairs": [')
    first = True
    for chunk in _pair_lines(session, providers, clients):
        out.write(("\n  " if first else ",\n  ") + chunk)
        first = False
    out.write("\n ]\n}\n")


def _matrix_head(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF]
) -> dict[str, Any]:
    state = session.state
    topo: Topology = session.topology
    wanted = set(providers) | set(clients)
    return {
        "kernel": kernel_dict(session),
        "platform": platform_dict(session),
        "source": topo.source,
        "topology": topo.name,
        "notes": session.notes,
        "devices": [device_dict(state, d) for d in topo.devices if d.bdf in wanted],
    }


#: The JSON of a map-type code, for pairs written from a template.
_MAP_JSON = {
    code: json.dumps(None if t is None else t.value) for code, t in CODE_TO_MAP_TYPE.items()
}


def _pair_lines(
    session: Session, providers: Sequence[BDF], clients: Sequence[BDF]
) -> Iterator[str]:
    """Every pair as one line of JSON (a row's plain pairs joined into one chunk)."""
    quoted = [json.dumps(str(c)) for c in clients]
    for row in PairRecords(session.state).rows(providers, clients):
        head = '{"provider": ' + json.dumps(str(row.provider)) + ', "client": '
        codes, dists = row.code.tolist(), row.distance.tolist()
        lines = [
            head
            + quoted[j]
            + ', "map_type": '
            + _MAP_JSON[codes[j]]
            + ', "distance": '
            + str(dists[j])
            + _EMPTY_TAIL
            if j not in row.records
            else json.dumps(row.records[j])
            for j in range(len(quoted))
        ]
        yield ",\n  ".join(lines)


_EMPTY_TAIL = ', "acs_redirect": [], "assumed": [], "assumptions": [], "alternatives": []}'
