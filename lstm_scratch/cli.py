"""``lstm-odyssey``: the command line. The only module that knows every layer of the package.

Each subcommand is one ``_add_<name>(subparsers)`` function that declares its arguments and sets
``func``, the function that runs it; imports happen inside so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse
import signal
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
                                     "noise, early stopping; or JZS's regime with --protocol jzs); writes "
                                     "OUT/record.json, OUT/checkpoint.npz, OUT/params.npz")
    p.add_argument("--task", help="task, e.g. jsb, timit, handwriting (see 'lstm-odyssey data list')")
    p.add_argument("--arch", help="architecture: V, NIG, NFG, NOG, NIAF, NOAF, CIFG, NP, FGR, GRU, MUT1-3; "
                                  "JZS's TANH, LSTM, LSTM-F, LSTM-I, LSTM-O, LSTM-B (default V)")
    p.add_argument("--hidden", type=int, help="blocks per direction N (default 100)")
    p.add_argument("--layers", type=int, help="stacked recurrent layers (default 1)")
    p.add_argument("--lr", type=float, help="learning rate η, scaled by (1 − m) in the update (default 1e-3)")
    p.add_argument("--momentum", type=float, help="momentum m in [0, 1) (default 0.9; protocol jzs: 0)")
    p.add_argument("--classical", dest="nesterov", action="store_const", const=False,
                   help="classical momentum instead of Nesterov's")
    p.add_argument("--noise", type=float, help="std of Gaussian noise on training inputs (default 0)")
    p.add_argument("--clip", type=float, help="clip gradients element-wise to [-CLIP, CLIP] (default off)")
    p.add_argument("--seed", type=int, help="the run's seed (default 1)")
    p.add_argument("--max-epochs", type=int, help="at most this many epochs (default 150)")
    p.add_argument("--patience", type=int, help="stop after this many epochs without improvement (default 15)")
    p.add_argument("--dtype", choices=("float64", "float32", "mixed"),
                   help="precision (default float64); opt-in speed modes: float32 everywhere, or mixed — "
                        "float32 kernels with float64 master weights and velocity, so small updates are "
                        "not rounded away")
    p.add_argument("--forget-bias", type=float, help="initial forget-gate bias (default: the architecture's, "
                                                     "1 for LSTM-B, else 0)")
    p.add_argument("--init-scale", type=float, help="std of the N(0, s²) weight initialisation (default 0.1)")
    p.add_argument("--protocol", choices=("online", "jzs"),
                   help="online: the paper's SGD, one update per sequence (default); jzs: JZS's minibatches "
                        "with truncated BPTT, norm clipping and η halving (SPEC §11)")
    p.add_argument("--batch", type=int, help="jzs: sequences per minibatch (default 20)")
    p.add_argument("--unroll", type=int, help="jzs: truncated-BPTT window in steps, state carried (default 35)")
    p.add_argument("--clip-norm", type=float, help="jzs: clip the minibatch gradient's L2 norm (default 5)")
    p.add_argument("--lr-decay", type=float, help="jzs: η factor after 3 epochs without improvement "
                                                  "(default 0.5)")
    p.add_argument("--out", required=True, help="run directory (must not hold a run unless --resume)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in OUT from its checkpoint (with a higher --max-epochs or "
                        "--patience: extend a run that has ended)")
    p.add_argument("--threads", type=int,
                   help="cores to use (default: all): Numba is pinned to it, BLAS to one thread "
                        "(the run's own threads carry the parallelism)")
    p.add_argument("--root", help="location of a licensed corpus (timit, iam_ondb)")

    def run(args) -> int:
        from dataclasses import asdict, fields
        from pathlib import Path

        from .checks import config_diff
        from .records import summary_line
        from .rundir import EXTENSIBLE, read_checkpoint_config
        from .train import TrainConfig, train
        given = {f.name: getattr(args, f.name) for f in fields(TrainConfig)
                 if getattr(args, f.name, None) is not None}
        if args.resume:
            # The checkpoint's configuration; only --max-epochs / --patience may change (be raised: train
            # refuses lowering them), to extend the run.
            config = read_checkpoint_config(args.out)
            wanted = TrainConfig.from_dict({**asdict(config), **given})      # names normalised (--arch v)
            clash = {k: d for k, d in config_diff(asdict(config), asdict(wanted)).items()
                     if k in given and k not in EXTENSIBLE}
            if clash:
                raise ValueError(f"--resume continues the checkpoint's configuration, and these options "
                                 f"differ from it (option: (checkpoint, given)): {clash}; only --max-epochs "
                                 "and --patience may be raised to extend a run")
            config = wanted
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


def _add_executor_options(run) -> None:
    """Where a study's trials run: the options of 'search run' (and 'jzs run')."""
    where = run.add_mutually_exclusive_group()
    where.add_argument("--scheduler", help="a Dask scheduler, tcp://HOST:PORT (workers need the study directory)")
    where.add_argument("--jobqueue", choices=("slurm", "pbs", "sge"), help="start Dask workers as batch jobs")
    run.add_argument("--workers", type=int, help="local worker processes (default: all cores), or jobqueue jobs")
    run.add_argument("--jobqueue-option", action="append", default=[], metavar="NAME=VALUE",
                     help="a dask-jobqueue cluster option (repeatable), e.g. queue=debug walltime=04:00:00")
    run.add_argument("--retry-failed", action="store_true", help="run failed trials again (from their checkpoint)")


def _add_search(sub) -> None:
    p = sub.add_parser("search", help="the random-search study (SPEC §7): create, run (local cores, Dask, "
                                      "dask-jobqueue, Slurm arrays), status, export, restore")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="define a study in a new directory (study.json)")
    create.add_argument("study", help="the study directory (shared by every worker)")
    create.add_argument("--task", required=True, help="task, e.g. jsb, timit, handwriting")
    create.add_argument("--archs", default="all", help="'all' (the nine Odyssey architectures), 'jzs' (JZS's ten: "
                                                       "TANH, LSTM, LSTM-F/-I/-O/-B, GRU, MUT1-3) or a list, "
                                                       "e.g. V,CIFG,GRU")
    create.add_argument("--trials", type=int, required=True, help="trials per architecture (the paper: 200)")
    create.add_argument("--seed", type=int, default=0, help="the study seed (default 0)")
    create.add_argument("--max-epochs", type=int, default=150, help="per trial (default 150)")
    create.add_argument("--patience", type=int, default=15, help="early-stopping patience (default 15)")
    create.add_argument("--dtype", choices=("float64", "float32", "mixed"), default="float64",
                        help="precision (default float64); mixed: float32 kernels, float64 master weights")
    create.add_argument("--protocol", choices=("online", "jzs"), default="online",
                        help="online: the paper's SGD and space (default); jzs: JZS's minibatch regime and "
                             "space (budget, layers, lr, init_scale, clip_norm) on memorisation, arithmetic, "
                             "xml or a music set")
    create.add_argument("--space", action="append", default=[], metavar="NAME=VALUE|NAME=LOW:HIGH",
                        help="fix or narrow a dimension of the space (repeatable), e.g. hidden=32, "
                             "lr=1e-4:1e-2, nesterov=false, clip=none; jzs: params=20000, layers=1:2")
    create.add_argument("--independent-samples", action="store_true",
                        help="draw every architecture's trials independently (default: trial k of every "
                             "architecture shares its hyperparameters — common random numbers)")
    create.add_argument("--root", help="location of a licensed corpus (timit, iam_ondb)")
    create.add_argument("--task-option", action="append", default=[], metavar="NAME=VALUE",
                        help="an option of the task's loader (repeatable), e.g. n_train=500 for JZS's tasks; "
                             "a wrong name lists the task's options")
    run = actions.add_parser("run", help="run every trial not yet ended; safe to stop and run again")
    run.add_argument("study")
    _add_executor_options(run)
    one = actions.add_parser("run-trial", help="run one trial (what a Slurm array element runs)")
    one.add_argument("study")
    one.add_argument("--index", type=int, required=True, help="the trial's index, 0 … archs × trials − 1")
    one.add_argument("--threads", type=int, default=1, help="cores for this trial (default 1)")
    one.add_argument("--retry-failed", action="store_true", help="run the trial again if it failed")
    status = actions.add_parser("status", help="per architecture: done/running/failed/diverged/pending, best, "
                                               "CPU hours, ETA")
    status.add_argument("study")
    export = actions.add_parser("export", help="one row per trial as CSV, and/or the run records as gzipped "
                                               "JSON lines (what a published study keeps: no parameters)")
    export.add_argument("study")
    export.add_argument("--csv", help="the table to write (trials.csv beside study.json is what 'report' reads)")
    export.add_argument("--records", help="the records to write, e.g. records.jsonl.gz (per-epoch timings "
                                          "rounded to 0.1 ms)")
    restore = actions.add_parser("restore", help="put a published records file back into the study's trial "
                                                 "directories: continue a study whose working files are gone")
    restore.add_argument("study")
    restore.add_argument("--records", required=True, help="the published records, e.g. STUDY/records.jsonl.gz")
    slurm = actions.add_parser("slurm", help="submit the trials not yet ended as a Slurm job array")
    slurm.add_argument("study")
    slurm.add_argument("--partition", required=True)
    slurm.add_argument("--time", required=True, help="time limit per element, e.g. 04:00:00")
    slurm.add_argument("--parallel", type=int, required=True, help="elements running at once (%%K)")
    slurm.add_argument("--mem", help="memory per element, e.g. 2G")
    slurm.add_argument("--account")
    slurm.add_argument("--sbatch-option", action="append", default=[], help="another #SBATCH option (repeatable)")
    slurm.add_argument("--dry-run", action="store_true", help="write the script, do not submit it")

    def run_search(args) -> int:
        from .search import Study
        from .search.summary import status_text
        if args.action == "create":
            study = Study.create(args.study, task=args.task, archs=args.archs, trials=args.trials, seed=args.seed,
                                 space=",".join(args.space) or None, shared_samples=not args.independent_samples,
                                 max_epochs=args.max_epochs, patience=args.patience, dtype=args.dtype,
                                 protocol=args.protocol, root=args.root, task_options=args.task_option)
            print(f"{study}: {study.size} trials; run it with 'lstm-odyssey search run {args.study}'")
            return 0
        study = Study.open(args.study)
        if args.action == "run-trial":
            from .search.worker import run_one
            signal.signal(signal.SIGTERM, signal.default_int_handler)   # scancel/preemption: keep the checkpoint
            try:
                done = run_one(study, args.index, threads=args.threads, retry_failed=args.retry_failed)
            except KeyboardInterrupt:
                print(f"interrupted: trial {study.trial(args.index).id} continues from its checkpoint when run "
                      "again", file=sys.stderr)
                return 130
            print(f"trial {done['trial']}: {done['state']}" + ("" if done["ran"] else " (not run here)"))
            return 0
        if args.action == "status":
            print(status_text(study, study.status()))
        elif args.action == "export":
            from .search.summary import published_files, write_published
            print("\n".join(write_published(published_files(study, csv=args.csv, records=args.records))))
        elif args.action == "restore":
            from .search.summary import restore_published
            done = restore_published(study, args.records)
            print(f"{done['restored']} record(s) restored into {study.path}, {done['kept']} trial(s) had theirs; "
                  f"continue with 'lstm-odyssey search run {args.study}'")
        elif args.action == "slurm":
            from .search.slurm import submit_array
            done = submit_array(study, partition=args.partition, time_limit=args.time, parallel=args.parallel,
                                mem=args.mem, account=args.account, extra=args.sbatch_option, dry_run=args.dry_run)
            print(f"{done['trials']} trial(s): " + (f"job(s) {', '.join(done['jobs'])}" if done["jobs"] else
                  "nothing to submit" if not done["scripts"] else f"script(s) {', '.join(done['scripts'])}"))
        else:
            from .search.executors import parse_options
            try:
                info = study.run(workers=args.workers, scheduler=args.scheduler, jobqueue=args.jobqueue,
                                 jobqueue_options=parse_options(args.jobqueue_option), retry_failed=args.retry_failed)
            except KeyboardInterrupt as err:        # Ctrl-C, or SIGTERM (search.executors.Stopped)
                return _stopped(err, f"'lstm-odyssey search run {args.study}'")
            print(status_text(study, info))
        return 0
    p.set_defaults(func=run_search)


def _stopped(err: KeyboardInterrupt, resume: str) -> int:
    """A study run stopped by Ctrl-C or SIGTERM: one line saying how to resume, and the shell's exit
    status for that signal (130 or 143)."""
    signum = getattr(err, "signum", signal.SIGINT)
    print(f"{'stopped (SIGTERM)' if signum == signal.SIGTERM else 'interrupted'}: ended trials are kept, "
          f"the others continue from their checkpoints: {resume}", file=sys.stderr)
    return 128 + signum


def _add_report(sub) -> None:
    p = sub.add_parser("report", help="the paper's results from one or more studies: Welch tests, fANOVA, "
                                      "Figures 3-6 and a scorecard against the paper, as DIR/index.html "
                                      "(self-contained), DIR/report.md and CSV tables")
    p.add_argument("studies", nargs="+", metavar="STUDY",
                   help="a study directory, or a published table (trials.csv / trials.jsonl)")
    p.add_argument("--out", required=True, help="report directory DIR")
    p.add_argument("--top", type=float, default=0.10, help="fraction of best trials compared (default 0.10)")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    p.add_argument("--trees", type=int, default=64, help="trees in the fANOVA forest (default 64)")

    def run(args) -> int:
        from .analysis.report import write_report
        from .analysis.table import load
        studies = [load(path) for path in args.studies]
        index = write_report(studies, args.out, top=args.top, alpha=args.alpha, n_trees=args.trees)
        print(f"report: {index}")
        return 0
    p.set_defaults(func=run)


def _add_demo(sub) -> None:
    from . import demo
    p = sub.add_parser("demo", help="a reduced JSB study of the nine Odyssey architectures on this machine's "
                                    "cores, then its report (OUT/report/index.html); run it again to continue")
    p.add_argument("--out", default=demo.DEMO_DIR, help=f"the study directory (default {demo.DEMO_DIR})")
    p.add_argument("--trials", type=int, default=demo.DEMO_TRIALS,
                   help=f"trials per architecture (default {demo.DEMO_TRIALS}; the paper: 200)")
    p.add_argument("--max-epochs", type=int, default=demo.DEMO_MAX_EPOCHS,
                   help=f"per trial (default {demo.DEMO_MAX_EPOCHS}; the paper: 150)")
    p.add_argument("--patience", type=int, default=demo.DEMO_PATIENCE,
                   help=f"early-stopping patience (default {demo.DEMO_PATIENCE}; the paper: 15)")
    p.add_argument("--archs", default="all", help="'all' (the nine Odyssey architectures) or a list, e.g. "
                                                  "V,CIFG,NFG (V is the baseline of the comparison)")
    p.add_argument("--workers", type=int, help="local worker processes (default: all cores)")
    p.add_argument("--report", help="report directory (default OUT/report)")

    def run(args) -> int:
        from .search.summary import status_text
        try:
            done = demo.run_demo(args.out, trials=args.trials, max_epochs=args.max_epochs, patience=args.patience,
                                 archs=args.archs, workers=args.workers, report_dir=args.report)
        except KeyboardInterrupt as err:            # Ctrl-C, or SIGTERM (search.executors.Stopped)
            return _stopped(err, "run the same command again")
        print(status_text(done["study"], done["status"]))
        print(f"\nBest 10 % of each architecture by validation NLL, scored on test NLL; Welch's t-test "
              f"against V (α = 0.05):\n{done['headline'].to_string(index=False)}")
        print(f"\n{done['trained']} trial(s) trained in this run, {done['seconds'] / 60:.1f} min in all; "
              f"report: {done['report']}")
        return 0
    p.set_defaults(func=run)


def _add_jzs(sub) -> None:
    tasks = "arithmetic,xml,memorisation,nottingham,piano_midi"       # search.benchmark.TASKS (not imported: --help)
    p = sub.add_parser("jzs", help="JZS's benchmark: one protocol-jzs study per task (arithmetic, xml, "
                                   "memorisation, nottingham, piano_midi) over their ten cells; create, run, "
                                   "status, and the report in the layout of their Table 1")
    actions = p.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="define the benchmark in DIR (or find it there: resume)")
    create.add_argument("dir")
    create.add_argument("--trials", type=int, required=True,
                        help="trials per cell (architecture × task); below the stated budget (100) the report "
                             "says REDUCED")
    create.add_argument("--seed", type=int, default=0, help="the seed of every study (default 0)")
    create.add_argument("--tasks", default=tasks, help=f"a subset of {tasks}")
    create.add_argument("--max-epochs", type=int, help="per trial (default: the benchmark's, sized for a CPU)")
    create.add_argument("--patience", type=int, help="early-stopping patience (default: the benchmark's)")
    create.add_argument("--dtype", choices=("float64", "float32", "mixed"), default="float64")
    create.add_argument("--space", action="append", default=[], metavar="NAME=VALUE|NAME=LOW:HIGH",
                        help="narrow JZS's space in every study (repeatable), e.g. params=10000:30000")
    create.add_argument("--task-option", action="append", default=[], metavar="[TASK.]NAME=VALUE",
                        help="a loader option (repeatable) for every task that takes it (n_train=500) or for one "
                             "(xml.n_train=300), on top of the CPU-sized defaults")
    create.add_argument("--generator-sizes", action="store_true",
                        help="start from the generators' own sizes (2000/500/500, 8-digit arithmetic), not the benchmark's "
                             "(search.benchmark.DEFAULTS: 3-digit arithmetic with 10000 training sequences)")
    run = actions.add_parser("run", help="run every study's trials not yet ended, one study after the other")
    run.add_argument("dir")
    _add_executor_options(run)
    status = actions.add_parser("status", help="each study's status table")
    status.add_argument("dir")
    export = actions.add_parser("export", help="publish: each study's table (trials.csv) and run records "
                                               "(records.jsonl.gz) beside its study.json, as 'search export' "
                                               "writes them; 'jzs report' reads them when trials/ is absent")
    export.add_argument("dir")
    report = actions.add_parser("report", help="JZS Table 1 (ours beside theirs), the LSTM-b question, the cost: "
                                               "OUT/index.html, OUT/report.md, CSV tables")
    report.add_argument("dir")
    report.add_argument("--out", required=True, help="report directory")
    report.add_argument("--top", type=float, default=0.10, help="fraction of best trials in the Welch tests")
    report.add_argument("--published", action="store_true",
                        help="read each study's published table (what 'jzs export' wrote) even where trial "
                             "directories are there: a report that matches the committed tables while a run goes on")

    def run_jzs(args) -> int:
        if args.action == "report":     # reads files only: a published benchmark loads no trainer, no Numba
            from .analysis.jzs_table import write_jzs_report
            print(f"report: {write_jzs_report(args.dir, args.out, top=args.top, published=args.published)}")
            return 0
        from .search.benchmark import Benchmark
        from .search.summary import benchmark_text, status_text
        if args.action == "create":
            limits = {name: value for name, value in (("max_epochs", args.max_epochs), ("patience", args.patience))
                      if value is not None}
            bench = Benchmark.create(args.dir, trials=args.trials, seed=args.seed, tasks=args.tasks,
                                     task_options=args.task_option, dtype=args.dtype,
                                     space=",".join(args.space) or None, defaults=not args.generator_sizes, **limits)
            print(f"{bench}; run it with 'lstm-odyssey jzs run {args.dir}'")
        elif args.action == "run":
            from .search.executors import parse_options
            bench = Benchmark.open(args.dir)
            try:
                done = bench.run(workers=args.workers, scheduler=args.scheduler, jobqueue=args.jobqueue,
                                 jobqueue_options=parse_options(args.jobqueue_option), retry_failed=args.retry_failed)
            except KeyboardInterrupt as err:        # Ctrl-C, or SIGTERM (search.executors.Stopped)
                return _stopped(err, f"'lstm-odyssey jzs run {args.dir}'")
            studies = bench.studies()
            print("\n\n".join([*(status_text(studies[task], info) for task, info in done.items()),
                                benchmark_text(done)]))
        elif args.action == "status":
            studies = Benchmark.open(args.dir).studies()
            infos = {task: study.status() for task, study in studies.items()}
            print("\n\n".join([*(status_text(studies[task], info) for task, info in infos.items()),
                                benchmark_text(infos)]))
        else:                           # export: every study's snapshot and files first, then the writes
            from .search.summary import published_files, write_published
            files = [f for study, paths in Benchmark.open(args.dir).exports() for f in published_files(study, **paths)]
            print("\n".join(write_published(files)))
        return 0
    p.set_defaults(func=run_jzs)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lstm-odyssey", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for add in (_add_demo, _add_check, _add_data, _add_train, _add_search, _add_report, _add_jzs):
        add(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except (ValueError, OSError) as err:
        # Errors raised for bad input carry a message meant for the user, and a file system error names
        # the path and the reason: show either in one line, without a traceback.
        print(f"lstm-odyssey {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
