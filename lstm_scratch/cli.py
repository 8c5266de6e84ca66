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


def _add_train(sub) -> None:
    p = sub.add_parser("train", help="train one network (SPEC §6: online SGD, Nesterov momentum, input "
                                     "noise, early stopping); writes OUT/record.json, OUT/checkpoint.npz, "
                                     "OUT/params.npz")
    p.add_argument("--task", help="task, e.g. jsb, timit, handwriting (see 'lstm-odyssey data list')")
    p.add_argument("--arch", help="architecture: V, NIG, NFG, NOG, NIAF, NOAF, CIFG, NP, FGR, GRU, MUT1-3 "
                                  "(default V)")
    p.add_argument("--hidden", type=int, help="blocks per direction N (default 100)")
    p.add_argument("--lr", type=float, help="learning rate η, scaled by (1 − m) in the update (default 1e-3)")
    p.add_argument("--momentum", type=float, help="momentum m in [0, 1) (default 0.9)")
    p.add_argument("--classical", dest="nesterov", action="store_const", const=False,
                   help="classical momentum instead of Nesterov's")
    p.add_argument("--noise", type=float, help="std of Gaussian noise on training inputs (default 0)")
    p.add_argument("--clip", type=float, help="clip gradients element-wise to [-CLIP, CLIP] (default off)")
    p.add_argument("--seed", type=int, help="the run's seed (default 1)")
    p.add_argument("--max-epochs", type=int, help="at most this many epochs (default 150)")
    p.add_argument("--patience", type=int, help="stop after this many epochs without improvement (default 15)")
    p.add_argument("--dtype", choices=("float64", "float32"), help="precision (default float64)")
    p.add_argument("--forget-bias", type=float, help="initial forget-gate bias (1 for LSTM-b; default 0)")
    p.add_argument("--out", required=True, help="run directory (must not hold a run unless --resume)")
    p.add_argument("--resume", action="store_true", help="continue the run in OUT from its checkpoint")
    p.add_argument("--threads", type=int,
                   help="cores to use (default: all): Numba is pinned to it, BLAS to one thread "
                        "(the run's own threads carry the parallelism)")
    p.add_argument("--root", help="location of a licensed corpus (timit, iam_ondb)")

    def run(args) -> int:
        from dataclasses import fields
        from pathlib import Path

        from .records import summary_line
        from .train import TrainConfig, read_checkpoint_config, train
        given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
        if args.resume:
            config = read_checkpoint_config(args.out)
            clash = {k: (getattr(config, k), v) for k, v in given.items() if getattr(config, k) != v}
            if clash:
                raise ValueError(f"--resume continues the checkpoint's configuration, and these options "
                                 f"differ from it (option: (checkpoint, given)): {clash}")
        elif "task" not in given:
            raise ValueError("--task is required, e.g. --task jsb (see 'lstm-odyssey data list')")
        else:
            config = TrainConfig(**given)
        try:
            record = train(config, args.out, root=args.root, resume=args.resume, threads=args.threads)
        except KeyboardInterrupt:
            print(f"interrupted: {args.out} keeps the checkpoint of the last finished epoch; continue with "
                  f"'lstm-odyssey train --out {args.out} --resume'", file=sys.stderr)
            return 130
        print(summary_line(record, Path(args.out) / "record.json"))
        if record["outcome"] == "failed":
            print(record["error"], file=sys.stderr)
            return 1
        return 0
    p.set_defaults(func=run)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstm-odyssey", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_check, _add_data, _add_train):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as err:
        # Errors raised for bad input carry a message meant for the user: show it without a traceback.
        print(f"lstm-odyssey {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
