"""Time the vectorised all-pairs matrix against the pair-by-pair decision.

Usage: python benchmarks/bench_matrix.py [--size 4096] [--sample 200000] [--full]
       [--big 16384 --providers 64]

The pair-by-pair time is measured on a random sample of pairs and scaled to
all pairs (``--full`` times every pair instead; about 10 minutes at 4,096).
Targets (2-core machine): 4,096 functions under 1.0 s and at least 30x faster
than pair by pair; 16,384 functions for chosen providers x all clients without
running out of memory.
"""

from __future__ import annotations

import argparse
import random
import resource
import time

from p2pview.kernel import KernelTarget, calc_map_type_and_dist, pair_matrix, prepare
from p2pview.sources.synthetic import generate


def _rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=4096)
    parser.add_argument("--sample", type=int, default=200_000)
    parser.add_argument("--full", action="store_true")
    parser.add_argument("--big", type=int, default=16384)
    parser.add_argument("--providers", type=int, default=64)
    parser.add_argument("--kernel", default="6.12")
    args = parser.parse_args()

    target = KernelTarget.parse(args.kernel)
    topo = generate(args.size)
    state = prepare(topo, target)
    n = len(topo)
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        matrix = pair_matrix(state)
        best = min(best, time.perf_counter() - start)
    print(f"topology: {n} functions, {len(topo.host_bridges)} host bridges")
    print(f"vectorised all pairs ({n * n:,} pairs): {best:.3f} s (best of 3)")

    pairs = [(p, c) for p in topo.bdfs for c in topo.bdfs] if args.full else None
    if pairs is None:
        rng = random.Random(1)
        pairs = [(rng.choice(topo.bdfs), rng.choice(topo.bdfs)) for _ in range(args.sample)]
    start = time.perf_counter()
    for p, c in pairs:
        calc_map_type_and_dist(state, p, c)
    elapsed = time.perf_counter() - start
    per_pair = elapsed / len(pairs)
    scaled = per_pair * n * n
    how = "all pairs" if args.full else f"{len(pairs):,} sampled pairs, scaled to all"
    print(f"pair by pair: {scaled:.1f} s ({per_pair * 1e6:.1f} us/pair; {how})")
    print(f"speed-up: {scaled / best:.0f}x")
    del matrix

    big = generate(args.big)
    big_state = prepare(big, target)
    providers = [d.bdf for d in big.devices if d.p2pmem is not None][: args.providers]
    start = time.perf_counter()
    sub = pair_matrix(big_state, providers, None)
    took = time.perf_counter() - start
    print(
        f"{len(big)} functions, {len(providers)} providers x all clients"
        f" ({sub.map_code.size:,} pairs): {took:.3f} s; peak RSS {_rss_mib():.0f} MiB"
    )


if __name__ == "__main__":
    main()
