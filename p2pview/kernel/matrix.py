"""The all-pairs P2PDMA matrix, vectorised with numpy.

Computes what :func:`p2pview.kernel.decision.calc_map_type_and_dist` computes
for every (provider, client) pair at once.

Lowest common upstream device: number the functions in depth-first preorder
(host bridges' subtrees one after another). Every subtree is then one
interval of positions, so the pairs whose chains both pass through a
function ``u`` form one rectangular block once rows and columns are sorted by
position. Visiting the functions in preorder and writing each one's values
into its block leaves, in every cell, the values of the deepest function
both chains share: the common upstream device of the kernel's walk. Cells no
block covers have none. The work is the sum of the blocks' areas, which is
small next to all pairs, because most pairs only meet at a host bridge.

With per-function arrays (``d`` depth below the root bus, ``r`` 1 if the
function's ACS redirects, ``R`` the sum of ``r`` over its chain, itself
included), the kernel's rules become arithmetic (spec section 3.1):

* ``dist = (d[p] - d[u]) + (d[c] - d[u])`` with a common device ``u``, and
  ``(d[p] + 1) + (d[c] + 1)`` (the chain lengths) without;
* ``acs_cnt = R[p] + R[c] - (2 R[u] - r[u])``: the provider side up to and
  including ``u``, the client side below it.

The host-bridge path depends only on the two host bridges: one lookup in
small per-host-bridge tables.

Provenance (:mod:`p2pview.kernel.provenance`) follows the same arithmetic: a
pair rests on an assumption when an assumed parent link is among those the
walk followed (``P``, summed like ``R``), an unknown ACS is on the counted
path (``U``), or the pair takes the host-bridge path and the CPU, the kernel
release, or a host bridge's whitelist function it consults is assumed.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from p2pview.kernel.decision import (
    AMD_PENALTY,
    KernelState,
    _root_complex_whitelist,
    whitelist_check,
)
from p2pview.kernel.provenance import ALT_KERNEL, PLAUSIBLE_KERNELS
from p2pview.kernel.verdict import MapType
from p2pview.model import BDF

#: Codes in :attr:`PairMatrix.map_code`.
CODE_NOT_SUPPORTED = 0
CODE_BUS_ADDR = 1
CODE_THRU_HOST_BRIDGE = 2
#: v4.20-v5.3: no map type, see :attr:`PairMatrix.distance`.
CODE_INT_ERA = -1
#: No verdict: the source does not show what is above a chain (:attr:`Verdict.undetermined`).
CODE_UNDETERMINED = 3

CODE_TO_MAP_TYPE: dict[int, MapType | None] = {
    CODE_NOT_SUPPORTED: MapType.NOT_SUPPORTED,
    CODE_BUS_ADDR: MapType.BUS_ADDR,
    CODE_THRU_HOST_BRIDGE: MapType.THRU_HOST_BRIDGE,
    CODE_INT_ERA: None,
    CODE_UNDETERMINED: None,
}

I16 = npt.NDArray[np.int16]
I32 = npt.NDArray[np.int32]
I64 = npt.NDArray[np.intp]
Bools = npt.NDArray[np.bool_]


@dataclass(frozen=True)
class ChainArrays:
    """Per-function arrays over a topology's functions (index = BDF order).

    ``pos``/``end``: the preorder interval ``[pos, end)`` of each function's
    subtree; ``preorder``: indices in preorder.
    """

    bdfs: tuple[BDF, ...]
    index: dict[BDF, int]
    depth: I16
    redirect: I16
    redirect_sum: I16
    unknown: I16
    unknown_sum: I16
    parent_assumed: I16
    parent_assumed_sum: I16
    #: 1 when what is above the function's chain is unknown (its top's parent is assumed).
    top_unknown: Bools
    host_bridge: I32
    preorder: I64
    pos: I64
    end: I64


def chain_arrays(state: KernelState) -> ChainArrays:
    """Build the per-function arrays (one Python pass over the functions)."""
    topo = state.topology
    bdfs = topo.bdfs
    index = {b: i for i, b in enumerate(bdfs)}
    n = len(bdfs)
    depth = np.zeros(n, dtype=np.int16)
    redirect = np.fromiter((1 if state.acs[b].redirect else 0 for b in bdfs), np.int16, n)
    unknown = np.fromiter((0 if state.acs[b].known else 1 for b in bdfs), np.int16, n)
    parent_assumed = np.fromiter(
        (1 if topo[b].fact("parent").is_assumed else 0 for b in bdfs), np.int16, n
    )
    redirect_sum = redirect.copy()
    unknown_sum = unknown.copy()
    parent_assumed_sum = parent_assumed.copy()
    preorder: list[int] = []
    end = np.zeros(n, dtype=np.intp)
    # Iterative DFS over host bridges in order; each child after its parent.
    for hb in topo.host_bridges:
        stack: list[tuple[int, bool]] = [
            (index[b], False) for b in reversed(topo.children(hb.root))
        ]
        while stack:
            i, done = stack.pop()
            if done:
                end[i] = len(preorder)
                continue
            preorder.append(i)
            stack.append((i, True))
            for child in reversed(topo.children(bdfs[i])):
                c = index[child]
                depth[c] = depth[i] + 1
                redirect_sum[c] = redirect_sum[i] + redirect[c]
                unknown_sum[c] = unknown_sum[i] + unknown[c]
                parent_assumed_sum[c] = parent_assumed_sum[i] + parent_assumed[c]
                stack.append((c, False))
    order = np.asarray(preorder, dtype=np.intp)
    pos = np.empty(n, dtype=np.intp)
    pos[order] = np.arange(n, dtype=np.intp)
    roots = {hb.root: k for k, hb in enumerate(topo.host_bridges)}
    host_bridge = np.fromiter((roots[topo.root_bus_of(b)] for b in bdfs), np.int32, n)
    top_unknown = np.zeros(n, dtype=np.bool_)
    if parent_assumed.any():
        for i, b in enumerate(bdfs):
            top_unknown[i] = bool(parent_assumed[index[topo.upstream_chain(b)[-1]]])
    return ChainArrays(
        bdfs,
        index,
        depth,
        redirect,
        redirect_sum,
        unknown,
        unknown_sum,
        parent_assumed,
        parent_assumed_sum,
        top_unknown,
        host_bridge,
        order,
        pos,
        end,
    )


@dataclass(frozen=True)
class PairMatrix:
    """Map type and distance for providers x clients.

    ``map_code`` holds the ``CODE_*`` values; ``distance`` the kernel's dist
    (or the returned int in v4.20-v5.3); ``acs`` whether an ACS redirect was
    counted; ``common`` whether a common upstream device exists; ``assumed``
    whether the verdict rests on any assumed fact (as
    :attr:`p2pview.kernel.Verdict.assumptions` would list), ``acs_assumed``
    whether that includes an unknown ACS on the counted path.
    """

    providers: tuple[BDF, ...]
    clients: tuple[BDF, ...]
    map_code: npt.NDArray[np.int8]
    distance: I16
    acs: Bools
    common: Bools
    assumed: Bools
    acs_assumed: Bools
    #: Depth of the common upstream device below its root bus; -1 when there is none.
    common_depth: I16

    def map_type(self, i: int, j: int) -> MapType | None:
        """The map type of cell (i, j); ``None`` in the int-distance eras."""
        return CODE_TO_MAP_TYPE[int(self.map_code[i, j])]


@dataclass(frozen=True)
class _Common:
    """Per cell, in sorted row/column order: the common device's depth and sums."""

    depth: I16  # -1: no common upstream device
    acs_base: I16  # 2 R[u] - r[u]
    unknown_base: I16  # 2 U[u] - u[u]
    parent_base: I16  # 2 P[u]


def _common_blocks(
    arr: ChainArrays, rows: I64, cols: I64, with_unknown: bool, with_parents: bool
) -> _Common:
    """Write each function's values into the block of pairs below it, ancestors first."""
    rpos, cpos = arr.pos[rows], arr.pos[cols]
    n_rows, n_cols = len(rows), len(cols)
    depth = np.full((n_rows, n_cols), -1, dtype=np.int16)
    acs_base = np.zeros((n_rows, n_cols), dtype=np.int16)
    unk_base = np.zeros((n_rows, n_cols), dtype=np.int16) if with_unknown else acs_base
    par_base = np.zeros((n_rows, n_cols), dtype=np.int16) if with_parents else acs_base
    order = arr.preorder
    starts, ends = arr.pos[order], arr.end[order]
    r_lo, r_hi = np.searchsorted(rpos, starts), np.searchsorted(rpos, ends)
    c_lo, c_hi = np.searchsorted(cpos, starts), np.searchsorted(cpos, ends)
    live = np.flatnonzero((r_hi > r_lo) & (c_hi > c_lo))
    acs_vals = 2 * arr.redirect_sum - arr.redirect
    unk_vals = 2 * arr.unknown_sum - arr.unknown
    par_vals = 2 * arr.parent_assumed_sum
    for k in live.tolist():
        u = order[k]
        block = (slice(r_lo[k], r_hi[k]), slice(c_lo[k], c_hi[k]))
        depth[block] = arr.depth[u]
        acs_base[block] = acs_vals[u]
        if with_unknown:
            unk_base[block] = unk_vals[u]
        if with_parents:
            par_base[block] = par_vals[u]
    return _Common(depth, acs_base, unk_base, par_base)


def pair_matrix(
    state: KernelState,
    providers: Sequence[BDF] | None = None,
    clients: Sequence[BDF] | None = None,
    arrays: ChainArrays | None = None,
    *,
    kernel_step: bool = True,
) -> PairMatrix:
    """Every (provider, client) pair's verdict; all functions when a side is ``None``.

    ``kernel_step=False`` leaves out the work that marks pairs resting on an
    assumed kernel release (for callers that only want map types and distances).
    """
    arr = arrays if arrays is not None else chain_arrays(state)
    prov = tuple(providers) if providers is not None else arr.bdfs
    cli = tuple(clients) if clients is not None else arr.bdfs
    pi = np.fromiter((arr.index[b] for b in prov), np.intp, len(prov))
    ci = np.fromiter((arr.index[b] for b in cli), np.intp, len(cli))
    # Sort both sides by preorder position so that subtrees are contiguous.
    r_sort = np.argsort(arr.pos[pi], kind="stable")
    c_sort = np.argsort(arr.pos[ci], kind="stable")
    rows, cols = pi[r_sort], ci[c_sort]
    parts = _decide(state, arr, rows, cols, kernel_step)
    # Back to the order asked for.
    r_back, c_back = np.argsort(r_sort), np.argsort(c_sort)
    if not (_identity(r_back) and _identity(c_back)):
        ix = np.ix_(r_back, c_back)
        parts = tuple(a[ix] for a in parts)  # type: ignore[assignment]
    return PairMatrix(prov, cli, *parts)


def _identity(perm: I64) -> bool:
    return bool((perm == np.arange(len(perm))).all())


@dataclass(frozen=True)
class _HostTables:
    same_ok: Bools
    diff_ok: Bools
    amd_root: Bools
    #: The function that stands for the host bridge rests on an assumption.
    wl_assumed: Bools


def _host_tables(state: KernelState, arr: ChainArrays) -> _HostTables:
    roots = [hb.root for hb in state.topology.host_bridges]
    if not roots:
        empty = np.zeros(1, dtype=np.bool_)
        return _HostTables(empty, empty, empty, empty)
    same_ok = np.array([whitelist_check(state, r, True).passed for r in roots], dtype=np.bool_)
    diff_ok = np.array([whitelist_check(state, r, False).passed for r in roots], dtype=np.bool_)
    wl_assumed = np.array([bool(state.host_bridge_basis(r).assumed) for r in roots], np.bool_)
    amd = np.zeros(len(roots), dtype=np.bool_)
    if state.target.profile.amd_penalty:
        first_on_root: dict[int, BDF] = {}
        for i, b in enumerate(arr.bdfs):
            first_on_root.setdefault(int(arr.host_bridge[i]), b)
        for k, b in first_on_root.items():
            amd[k] = _root_complex_whitelist(state, b).passed
    return _HostTables(same_ok, diff_ok, amd, wl_assumed)


_Parts = tuple[npt.NDArray[np.int8], I16, Bools, Bools, Bools, Bools, I16]


def _decide(
    state: KernelState, arr: ChainArrays, rows: I64, cols: I64, kernel_step: bool = True
) -> _Parts:
    """The verdict arrays.

    Pairs whose chains meet nowhere the source shows are undetermined. When the
    kernel release is assumed, the host-bridge-path pairs whose verdict another
    plausible release (:data:`~p2pview.kernel.provenance.PLAUSIBLE_KERNELS`)
    decides differently rest on that assumption (``kernel_step``; the
    alternative states are decided without it).
    """
    parts = _decide_known(state, arr, rows, cols)
    code, dist, acs, common, assumed, acs_assumed, depth = parts
    if arr.top_unknown.any():
        und = ~common & (arr.top_unknown[rows][:, None] | arr.top_unknown[cols][None, :])
        code[und] = CODE_UNDETERMINED
        dist[und] = -1
        assumed |= und  # the unknown parent above the chain's top is an assumed fact
    if kernel_step and state.topology.platform.facts.kernel.is_assumed:
        host_path = ~(common & ~acs) & (code != CODE_UNDETERMINED)
        differs = np.zeros(code.shape, dtype=np.bool_)
        for release in PLAUSIBLE_KERNELS:
            alt = state.alternative(ALT_KERNEL + release)
            alt_code, alt_dist, *_ = _decide(alt, chain_arrays(alt), rows, cols, False)
            differs |= (alt_code != code) | (alt_dist != dist)
        assumed |= host_path & differs
    return code, dist, acs, common, assumed, acs_assumed, depth


def _decide_known(state: KernelState, arr: ChainArrays, rows: I64, cols: I64) -> _Parts:
    profile = state.target.profile
    with_unknown = bool(arr.unknown.any())
    with_parents = bool(arr.parent_assumed.any())
    blocks = _common_blocks(arr, rows, cols, with_unknown, with_parents)
    has_common = blocks.depth >= 0
    dp = arr.depth[rows][:, None]
    dc = arr.depth[cols][None, :]
    sum_depth = dp + dc
    dist = np.where(has_common, sum_depth - 2 * blocks.depth, sum_depth + 2).astype(np.int16)
    acs_cnt = arr.redirect_sum[rows][:, None] + arr.redirect_sum[cols][None, :]
    acs = has_common & (acs_cnt > blocks.acs_base)
    if with_unknown:
        unk = arr.unknown_sum[rows][:, None] + arr.unknown_sum[cols][None, :]
        acs_assumed = has_common & (unk > blocks.unknown_base)
    else:
        acs_assumed = np.zeros(has_common.shape, dtype=np.bool_)
    assumed = acs_assumed.copy()
    if with_parents:
        # The links followed: below the common device, or every link of both chains.
        par = arr.parent_assumed_sum[rows][:, None] + arr.parent_assumed_sum[cols][None, :]
        assumed |= par > np.where(has_common, blocks.parent_base, 0)

    tables = _host_tables(state, arr)
    hp = arr.host_bridge[rows][:, None]
    hc = arr.host_bridge[cols][None, :]
    host_path = ~(has_common & ~acs)
    facts = state.topology.platform.facts
    if profile.int_distance:
        result = np.where(has_common, np.where(acs, -2, dist), -1).astype(np.int16)
        if profile.amd_penalty:
            penalised = ~has_common & tables.amd_root[hp] & tables.amd_root[hc]
            result = np.where(penalised, dist + AMD_PENALTY, result).astype(np.int16)
            assumed |= ~has_common & (
                tables.wl_assumed[hp] | (tables.amd_root[hp] & tables.wl_assumed[hc])
            )
        code = np.full(result.shape, CODE_INT_ERA, dtype=np.int8)
        return code, result, acs, has_common, assumed, acs_assumed, blocks.depth

    if profile.cpu_check and facts.cpu.is_assumed:
        assumed |= host_path
    if state.cpu_supports:
        host_code = np.int8(CODE_THRU_HOST_BRIDGE)
        code = np.where(has_common & ~acs, np.int8(CODE_BUS_ADDR), host_code).astype(np.int8)
        return code, dist, acs, has_common, assumed, acs_assumed, blocks.depth
    same_bridge = np.eye(len(tables.same_ok), dtype=np.bool_)
    pair_ok = np.where(
        same_bridge, tables.same_ok[:, None], tables.diff_ok[:, None] & tables.diff_ok[None, :]
    )
    host_codes = np.where(pair_ok, CODE_THRU_HOST_BRIDGE, CODE_NOT_SUPPORTED).astype(np.int8)
    # host_bridge_whitelist() checks the provider's host bridge, then (if that
    # passed and the bridges differ) the client's.
    wl_used = np.where(
        same_bridge,
        tables.wl_assumed[:, None],
        tables.wl_assumed[:, None] | (tables.diff_ok[:, None] & tables.wl_assumed[None, :]),
    )
    assumed |= host_path & wl_used[hp, hc]
    code = host_codes[hp, hc]
    code[has_common & ~acs] = CODE_BUS_ADDR
    return code, dist, acs, has_common, assumed, acs_assumed, blocks.depth
