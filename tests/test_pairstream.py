"""The streamed pair records equal the pair-by-pair decision, provenance included."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import KERNELS, topologies

from p2pview.kernel import KernelTarget, calc_map_type_and_dist, pairstream, prepare
from p2pview.kernel.matrix import CODE_TO_MAP_TYPE


def _plain(row, j, client):
    map_type = CODE_TO_MAP_TYPE[int(row.code[j])]
    return {
        "provider": str(row.provider),
        "client": str(client),
        "map_type": None if map_type is None else map_type.value,
        "distance": int(row.distance[j]),
        "acs_redirect": [],
        "assumed": [],
        "assumptions": [],
        "alternatives": [],
    }


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(), st.sampled_from([*KERNELS, "6.12", "6.12"]), st.integers(1, 7))
def test_records_equal_the_pairwise_decision(topo, kernel, block_cells):
    state = prepare(topo, KernelTarget.parse(kernel))
    old = pairstream.BLOCK_CELLS
    pairstream.BLOCK_CELLS = block_cells * len(topo)  # several blocks of rows
    try:
        rows = list(pairstream.PairRecords(state).rows(topo.bdfs, topo.bdfs))
    finally:
        pairstream.BLOCK_CELLS = old
    assert [r.provider for r in rows] == list(topo.bdfs)
    for row in rows:
        for j, client in enumerate(topo.bdfs):
            expected = calc_map_type_and_dist(state, row.provider, client).to_dict()
            got = row.records.get(j) or _plain(row, j, client)
            assert got == expected, (row.provider, client)
