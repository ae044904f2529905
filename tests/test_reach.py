"""What-if edits against the original without two all-pairs matrices, and tiles of the matrix.

On random topologies (:mod:`strategies`) and random edits (ACS Control bits,
the IOMMU, the CPU, the kernel, the command line, host-bridge IDs, a moved
subtree), the pairs :func:`edit_reach` allows hold every pair whose verdict
changed, and the changed pairs found a block at a time are exactly those two
full matrices show. :class:`PairTiles` cells equal ``pair_matrix``.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from strategies import HOST_IDS, KERNELS, PLATFORMS, topologies

from p2pview.kernel import KernelTarget, chain_arrays, pair_matrix, prepare, with_iommu_acs
from p2pview.kernel.acs import without_iommu_acs
from p2pview.kernel.reach import (
    Side,
    blocks,
    changed_blocks,
    edit_reach,
    no_reach,
    rectangles,
)
from p2pview.kernel.tiles import PairTiles, cell_stats, cell_stats_bound
from p2pview.model import Acs, AcsPresence, Topology
from p2pview.model.topology import TopologyError
from p2pview.session import session_for
from p2pview.sources import load_source


def side(topo: Topology, kernel: str) -> Side:
    state = prepare(topo, KernelTarget.parse(kernel))
    return Side(state, chain_arrays(state))


@st.composite
def edits(draw: st.DrawFn, topo: Topology) -> tuple[str, Topology, str | None]:
    """One what-if edit: a description, the edited topology, another kernel (or ``None``)."""
    kind = draw(
        st.sampled_from(["acs", "acs", "acs", "iommu", "cpu", "kernel", "cmdline", "hb", "move"])
    )
    with_acs = [d for d in topo.devices if d.acs.presence is AcsPresence.PRESENT]
    if kind == "acs" and with_acs:
        dev = draw(st.sampled_from(with_acs))
        bit = draw(st.sampled_from([0x1, 0x4, 0x8, 0x4 | 0x8, 0x4 | 0x8, 0x10, 0x20]))
        ctrl = (dev.acs.ctrl or 0) ^ bit
        assert dev.acs.cap is not None
        acs = Acs.present(dev.acs.cap, ctrl, dev.acs.fw_ctrl)
        return f"ACS {dev.bdf} {ctrl:#x}", topo.with_acs(dev.bdf, acs), None
    if kind == "iommu":
        on = draw(st.booleans())
        return f"IOMMU {on}", with_iommu_acs(topo) if on else without_iommu_acs(topo), None
    if kind == "cpu":
        plat = draw(st.sampled_from(PLATFORMS))
        changed = topo.with_platform(
            arch=plat.arch, cpu_vendor=plat.cpu_vendor, cpu_family=plat.cpu_family
        )
        return f"CPU {plat.cpu_vendor} {plat.cpu_family}", changed, None
    if kind == "kernel":
        return "kernel", topo, draw(st.sampled_from(KERNELS))
    if kind == "cmdline" and topo.devices:
        bdf = draw(st.sampled_from(topo.bdfs))
        line = draw(
            st.sampled_from(
                [
                    f"pci=disable_acs_redir={bdf}",
                    f"pci=config_acs=000000@{bdf}",
                    f"pci=config_acs=111111@{bdf}",
                    "",
                ]
            )
        )
        return f"cmdline {line}", topo.with_platform(cmdline=line), None
    if kind == "hb" and topo.host_bridges:
        hb = draw(st.sampled_from(list(topo.host_bridges)))
        if topo.root_bus_devices(hb.root):
            vendor, device = draw(st.sampled_from(HOST_IDS))
            return f"hb {hb.root}", topo.with_host_bridge_ids(hb.root, vendor, device), None
    if kind == "move":
        movable = [d for d in topo.devices if d.parent is not None]
        bridges = [d.bdf for d in topo.devices if d.is_bridge]
        if movable and bridges:
            dev = draw(st.sampled_from(movable))
            target = draw(st.sampled_from(bridges))
            if target not in topo.subtree(dev.bdf):
                try:
                    return f"move {dev.bdf}", topo.with_subtree_moved(dev.bdf, target), None
                except TopologyError:  # a VF stays below its PF's parent
                    pass
    return "none", topo, None


def changed_full(before: Side, after: Side) -> np.ndarray:
    a, b = pair_matrix(after.state), pair_matrix(before.state)
    changed: np.ndarray = (a.map_code != b.map_code) | (a.distance != b.distance)
    return changed


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(max_devices=20), st.sampled_from(KERNELS), st.data())
def test_reach_holds_every_changed_pair_and_blocks_find_them(
    topo: Topology, kernel: str, data: st.DataObject
) -> None:
    what, edited, other_kernel = data.draw(edits(topo))
    before = side(topo, kernel)
    after = side(edited, other_kernel or kernel)
    reach = edit_reach(before, after)
    changed = changed_full(before, after)
    if not reach.everything:
        t = reach.touched
        assert not (changed & ~(t[:, None] | t[None, :])).any(), what
    n = len(topo.bdfs)
    every = np.arange(n, dtype=np.intp)
    found = np.zeros((n, n), dtype=np.bool_)
    cells = data.draw(st.sampled_from([1, 3, 7, 64, 1 << 20]))
    for block in changed_blocks(before, after, reach, every, every, block_cells=cells):
        assert block.changed.size <= max(cells, 1)
        found[np.ix_(block.rows, block.cols)] |= block.changed
    assert (found == changed).all(), what


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(topologies(max_devices=20), st.sampled_from(KERNELS), st.data())
def test_tiles_equal_the_matrix_and_mark_the_changed_cells(
    topo: Topology, kernel: str, data: st.DataObject
) -> None:
    what, edited, other_kernel = data.draw(edits(topo))
    before = side(topo, kernel)
    after = side(edited, other_kernel or kernel)
    reach = edit_reach(before, after)
    bdfs = topo.bdfs
    n = len(bdfs)
    rows = np.array(data.draw(st.permutations(range(n))), dtype=np.intp)[: max(1, n - 2)]
    cols = np.array(data.draw(st.permutations(range(n))), dtype=np.intp)
    if n == 0:
        return
    shape = data.draw(st.sampled_from([(1, 1), (2, 3), (5, 4), (64, 256)]))
    tiles = PairTiles(
        after, rows, cols, before=before, reach=reach, tile_rows=shape[0], tile_cols=shape[1]
    )
    full = pair_matrix(after.state)
    changed = changed_full(before, after)
    for i, r in enumerate(rows.tolist()):
        first = data.draw(st.integers(0, len(cols) - 1))
        codes, dists, assumed, flags = tiles.row(i, first, len(cols))
        want = cols[first:].tolist()
        assert codes == full.map_code[r, want].tolist()
        assert dists == full.distance[r, want].tolist()
        assert assumed == full.assumed[r, want].tolist()
        assert (flags or [False] * len(want)) == changed[r, want].tolist(), what
        assert tiles.cells_kept <= tiles.budget


def test_tiles_keep_at_most_their_budget_and_drop_the_oldest() -> None:
    loaded = load_source("generated:300")
    session = session_for(loaded)
    s = Side(session.state, chain_arrays(session.state))
    every = np.arange(len(s.arrays.bdfs), dtype=np.intp)
    tiles = PairTiles(s, every, every, tile_rows=16, tile_cols=32, budget=16 * 32 * 4)
    full = pair_matrix(session.state, arrays=s.arrays)
    for i in range(0, 300, 7):
        for first in (0, 100, 250):
            codes, dists, _assumed, flags = tiles.row(i, first, first + 40)
            assert codes == full.map_code[i, first : first + 40].tolist()
            assert dists == full.distance[i, first : first + 40].tolist()
            assert flags is None
            assert tiles.cells_kept <= 16 * 32 * 4
    assert tiles.decided > 4  # tiles were dropped and decided again
    assert tiles.cell(5, 299)[:2] == (int(full.map_code[5, 299]), int(full.distance[5, 299]))


def test_rectangles_and_blocks() -> None:
    loaded = load_source("switch-acs-iommu")
    s = side(loaded.topology, "6.12")
    n = len(s.arrays.bdfs)
    every = np.arange(n, dtype=np.intp)
    assert rectangles(no_reach(s.arrays), every, every) == []
    for rect in ((every, every[:3]), (every[:2], every)):
        got = list(blocks(rect, 5))
        assert all(r.size * c.size <= 5 for r, c in got)
        cells = {(i, j) for r, c in got for i in r.tolist() for j in c.tolist()}
        assert cells == {(i, j) for i in rect[0].tolist() for j in rect[1].tolist()}


def test_an_acs_edit_reaches_only_the_pairs_below_the_edited_function() -> None:
    topo = load_source("switch-acs-iommu").topology
    before = side(topo, "6.12")
    dev = next(d for d in topo.devices if d.acs.presence is AcsPresence.PRESENT and d.parent)
    assert dev.acs.cap is not None
    edited = topo.with_acs(dev.bdf, Acs.present(dev.acs.cap, (dev.acs.ctrl or 0) ^ 0xC))
    reach = edit_reach(before, side(edited, "6.12"))
    assert not reach.everything
    below = set(topo.subtree(dev.bdf)) | {dev.bdf}
    assert {b for b, t in zip(topo.bdfs, reach.touched.tolist(), strict=True) if t} == below
    # A CPU that changes cpu_supports_p2pdma() can change any pair.
    amd = topo.with_platform(cpu_vendor="AuthenticAMD", cpu_family=0x19)
    assert edit_reach(before, side(amd, "6.12")).everything


def test_stats_bound_covers_the_exact_figures() -> None:
    for name in ("switch-acs-iommu", "hgx-8gpu", "desktop-intel", "generated:200"):
        topo = load_source(name).topology
        for kernel in ("4.20", "5.1", "5.15", "6.12"):
            s = side(topo, kernel)
            exact, bound = cell_stats(pair_matrix(s.state)), cell_stats_bound(s)
            assert bound.low <= exact.low and bound.high >= exact.high
            assert bound.assumed or not exact.assumed
            assert bound.int_era == exact.int_era
            assert bound.all_int_era == exact.all_int_era
