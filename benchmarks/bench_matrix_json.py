"""Time and peak memory of ``p2pview matrix --json``, which streams every pair.

Usage: python benchmarks/bench_matrix_json.py [--size 2000] [--big 20000] [--big-rows 2000]

Runs the installed command in a child process (output to /dev/null) and reads
the child's peak RSS from ``getrusage`` (the big run's is the larger of the
two). The big run writes the first ``--big-rows`` provider rows of a
``--big``-function topology (all of them with ``--big-rows 0``; 400 million
pairs at 20,000 take tens of minutes) and shows that memory does not grow with
the rows written.

Targets (2-core machine): 2,000 functions (4 million pairs) in under 15 s with
a peak RSS under 400 MB; 20,000 functions under 1 GiB.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time

#: The big run, in a child of its own: the first ROWS provider rows of all pairs.
_BIG = """
import sys
from p2pview.matrixjson import write_matrix_document
from p2pview.session import open_session
size, rows = int(sys.argv[1]), int(sys.argv[2])
session = open_session(f"generated:{size}")
bdfs = session.topology.bdfs
with open("/dev/null", "w") as sink:
    write_matrix_document(session, bdfs[:rows] if rows else bdfs, bdfs, sink)
"""


def _run(command: list[str]) -> tuple[float, float]:
    """Wall seconds and the child's peak RSS in MiB (children run one at a time)."""
    start = time.perf_counter()
    with open(os.devnull, "w") as sink:
        subprocess.run(command, stdout=sink, check=True)
    wall = time.perf_counter() - start
    return wall, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--big", type=int, default=20000)
    parser.add_argument("--big-rows", type=int, default=2000)
    args = parser.parse_args()

    wall, rss = _run(
        [sys.executable, "-m", "p2pview", "matrix", f"generated:{args.size}", "--json"]
    )
    pairs = args.size * args.size
    print(f"matrix --json, {args.size} functions ({pairs:,} pairs): {wall:.1f} s, peak RSS")
    print(f"  {rss:.0f} MiB   (targets: 15 s, 400 MB)")

    if args.big:
        rows = f"first {args.big_rows} provider rows" if args.big_rows else "every row"
        command = [sys.executable, "-c", _BIG, str(args.big), str(args.big_rows)]
        wall, rss = _run(command)
        print(f"matrix --json, {args.big} functions, {rows}: {wall:.1f} s, peak RSS {rss:.0f} MiB")
        print("  (target: under 1 GiB)")


if __name__ == "__main__":
    main()
