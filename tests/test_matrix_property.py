"""The vectorised matrix equals the pair-by-pair decision on generated topologies."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import KERNELS, topologies

from p2pview.kernel import KernelTarget, calc_map_type_and_dist, pair_matrix, prepare
from p2pview.kernel.matrix import CODE_TO_MAP_TYPE


@settings(max_examples=2000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(), st.sampled_from(KERNELS))
def test_matrix_equals_pairwise(topo, kernel):
    state = prepare(topo, KernelTarget.parse(kernel))
    matrix = pair_matrix(state)
    for i, provider in enumerate(matrix.providers):
        for j, client in enumerate(matrix.clients):
            v = calc_map_type_and_dist(state, provider, client)
            got = (CODE_TO_MAP_TYPE[int(matrix.map_code[i, j])], int(matrix.distance[i, j]))
            assert got == (v.map_type, v.distance), (provider, client)
            assert bool(matrix.acs[i, j]) == bool(v.acs_redirect)
            assert bool(matrix.acs_assumed[i, j]) == bool(v.assumed)
            assert bool(matrix.assumed[i, j]) == v.rests_on_assumption, v.assumptions
            assert bool(matrix.common[i, j]) == (v.common is not None)


@settings(max_examples=200, deadline=None)
@given(topologies(max_devices=16), st.sampled_from(KERNELS), st.data())
def test_submatrix_matches_full(topo, kernel, data):
    state = prepare(topo, KernelTarget.parse(kernel))
    full = pair_matrix(state)
    rows = data.draw(st.lists(st.sampled_from(topo.bdfs), min_size=1, max_size=5, unique=True))
    cols = data.draw(st.lists(st.sampled_from(topo.bdfs), min_size=1, max_size=5, unique=True))
    sub = pair_matrix(state, rows, cols)
    for i, p in enumerate(rows):
        for j, c in enumerate(cols):
            fi, fj = full.providers.index(p), full.clients.index(c)
            assert sub.map_code[i, j] == full.map_code[fi, fj]
            assert sub.distance[i, j] == full.distance[fi, fj]


@settings(max_examples=300, deadline=None)
@given(topologies(), st.sampled_from(KERNELS))
def test_map_type_and_distance_are_symmetric(topo, kernel):
    """Spec section 3.3: only the ACS list order and the warned device differ."""
    state = prepare(topo, KernelTarget.parse(kernel))
    m = pair_matrix(state)
    assert (m.distance == m.distance.T).all()
    assert (m.map_code == m.map_code.T).all()
