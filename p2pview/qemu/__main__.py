"""``python -m p2pview.qemu {qemu,verify} ...``: the two commands without p2pview's main CLI."""

from __future__ import annotations

import argparse
import sys

from p2pview.model.errors import P2pviewError
from p2pview.qemu.commands import COMMANDS, EXIT_USAGE, add_parsers


def main() -> int:
    """Parse and dispatch like ``p2pview qemu`` / ``p2pview verify``, and report errors alike."""
    parser = argparse.ArgumentParser(prog="python -m p2pview.qemu")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args()
    try:
        return COMMANDS[args.command](args)
    except P2pviewError as exc:
        print(f"p2pview: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())
