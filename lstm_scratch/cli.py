"""``lstm-odyssey``: the command line. The only module that knows every layer of the package.

Each subcommand is one ``_add_<name>(subparsers)`` function that declares its arguments and sets
``func``, the function that runs it; imports happen inside so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import sys


def _add_check(sub) -> None:
    p = sub.add_parser("check", help="gradient-check every architecture (both backends) and time the "
                                     "kernels: the quick proof that this machine gives right answers")
    p.add_argument("--quick", action="store_true", help="fewer parameters checked, smaller benchmark")

    def run(args) -> int:
        from .selfcheck import run_selfcheck
        return run_selfcheck(quick=args.quick)
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstm-odyssey", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_check,):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError, TypeError) as err:
        # Errors raised for bad input carry a message meant for the user: show it without a traceback.
        print(f"lstm-odyssey {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
