#!/usr/bin/env python3
"""Write README's "Checked against real kernels" table from a verification run's results.

    tools/verification-table.py                 # verification-results.json -> README.md
    tools/verification-table.py --check         # exit 1 if README's table is not that file's
    tools/verification-table.py --results R --print   # the table of another run, on stdout

The results come from ``p2pview verify --record FILE`` (tools/oracle-kernel/verify-all.sh
and tools/qemu-acs/verify-acs.sh pass it with ``RECORD=FILE``). The table goes between
the marker comments in README; nothing else in README changes. A disagreement without
an explanation in the results file's ``explanations`` is an error, not a row.
Run it with a Python that can import p2pview (``.venv/bin/python``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from p2pview.qemu.record import RecordError, load, render_table, replace_in_readme

ROOT = Path(__file__).resolve().parent.parent


def main() -> int:
    """Parse the arguments and write, check or print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=ROOT / "verification-results.json")
    parser.add_argument("--readme", type=Path, default=ROOT / "README.md")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--check", action="store_true", help="compare, do not write")
    mode.add_argument("--print", action="store_true", help="print the table only")
    args = parser.parse_args()
    try:
        if not args.results.is_file():
            raise RecordError(f"{args.results}: no such results file")
        table = render_table(load(args.results))
        if args.print:
            sys.stdout.write(table)
            return 0
        readme = args.readme.read_text()
        updated = replace_in_readme(readme, table)
    except (RecordError, OSError) as exc:
        print(f"verification-table: {exc}", file=sys.stderr)
        return 2
    if args.check:
        if updated != readme:
            print(
                f"verification-table: {args.readme}'s table is not {args.results}'s:"
                " run tools/verification-table.py",
                file=sys.stderr,
            )
            return 1
        return 0
    if updated != readme:
        args.readme.write_text(updated)
        print(f"verification-table: wrote the table into {args.readme}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
