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


def _add_data(sub) -> None:
    p = sub.add_parser("data", help="list the tasks, describe one, or fetch + verify + cache its files "
                                    "(mirror: $LSTM_SCRATCH_MIRROR, cache: $LSTM_SCRATCH_DATA)")
    p.add_argument("action", choices=("list", "info", "fetch"))
    p.add_argument("task", nargs="?", help="task name (for info / fetch), e.g. jsb, timit_sample, handwriting")
    p.add_argument("--root", help="location of a licensed corpus (timit, iam_ondb)")

    def run(args) -> int:
        from .datasets import report
        if args.action == "list":
            print(report.task_table())
            return 0
        if not args.task:
            raise ValueError(f"'data {args.action}' needs a TASK; see 'lstm-odyssey data list'")
        print(report.info_text(args.task, args.root, fetch=args.action == "fetch"))
        return 0
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstm-odyssey", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_check, _add_data):
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
