"""Time reading a 2,000-function sysfs tree (target: under 1 s on a 2-core machine).

Usage: python benchmarks/bench_sysfs.py [--size 2000] [--unprivileged]

The tree is generated (p2pview.sources.synthetic) and written to a temporary
directory, as root would see it (4096-byte config files) unless
--unprivileged. Best of three cold-ish reads (the page cache stays warm).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from p2pview.sources import load_source
from p2pview.sources.synthetic import generate, write_sysfs_tree


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=2000)
    parser.add_argument("--unprivileged", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_sysfs_tree(generate(args.size), root, privileged=not args.unprivileged)
        best = float("inf")
        for _ in range(3):
            start = time.perf_counter()
            loaded = load_source(str(root))
            best = min(best, time.perf_counter() - start)
        print(f"read {len(loaded.topology)} functions from a sysfs tree: {best:.3f} s (best of 3)")


if __name__ == "__main__":
    main()
