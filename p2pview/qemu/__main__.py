"""``python -m p2pview.qemu {qemu,verify} ...``: the two commands without p2pview's main CLI."""

from __future__ import annotations

import argparse
import sys

from p2pview.qemu.commands import COMMANDS, add_parsers


def main() -> int:
    """Parse and dispatch like ``p2pview qemu`` / ``p2pview verify``."""
    parser = argparse.ArgumentParser(prog="python -m p2pview.qemu")
    add_parsers(parser.add_subparsers(dest="command", metavar="COMMAND", required=True))
    args = parser.parse_args()
    return COMMANDS[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
