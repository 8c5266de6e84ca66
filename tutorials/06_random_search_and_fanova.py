# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 — Random search and fANOVA
#
# Tutorial 05 trained one network with hand-picked hyperparameters. The paper instead draws them at
# random, trains every architecture a couple of hundred times, and then asks two questions of the
# results: *is an architecture better than vanilla LSTM?* (a Welch t-test on the best 10 % of trials)
# and *which hyperparameters matter?* (fANOVA on a random forest). This tutorial does all of it on a
# mini-study, by hand first and then with the library.
#
# **What you'll learn**
#
# * the search space: η, N log-uniform, m = 1 − u with u log-uniform, σ uniform — drawn by inverse
#   transform, with **common random numbers** across architectures (`lstm_scratch.search.space`);
# * a study through the real API (`lstm_scratch.search.Study`): its directory, its trials, its table;
# * the best-10 % Welch test worked by hand — select by validation, score on test, t and its degrees of
#   freedom from the formula, p from the t distribution — checked against `analysis.stats.compare`;
# * fANOVA by hand on a small forest: a tree's leaves as boxes, the exact marginal of one
#   hyperparameter under the uniform measure, its share of the variance — checked against
#   `analysis.importance` to 1e-12;
# * the paper's Figures 3–6 for the mini-study (`analysis.figures`), and how to read them;
# * why a few trials that blow up can own the pooled variance, on the project's full JSB study;
# * how the same study runs on a Dask cluster or as a Slurm job array.
#
# **How to use it.** `python tutorials/06_random_search_and_fanova.py`, or open it as a notebook
# (`make notebooks`). The study lives in a temporary directory and is deleted at the end; JSB
# Chorales come through the data registry (`lstm_scratch.datasets`), from `LSTM_SCRATCH_MIRROR` when it
# is set (as in the tests), so nothing is downloaded then. `LSTM_SCRATCH_FAST=1`: 3 architectures ×
# 12 trials of one epoch each (under a minute); the default mode runs 3 × 30 trials of four epochs
# (a few minutes). Every claim is an `assert`.

# %%
import os
import tempfile
import time
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.ticker import NullFormatter
from scipy.stats import kstest, spearmanr
from scipy.stats import t as student_t
from sklearn.ensemble import RandomForestRegressor

import _figures
from _figures import show
from lstm_scratch.analysis import importance, stats
from lstm_scratch.analysis.report import best_lr_spread, space_from_definition
from lstm_scratch.analysis.table import load as load_table
from lstm_scratch.analysis.table import task_info
from lstm_scratch.datasets import load_task
from lstm_scratch.search import Study, paper_space, sample
from lstm_scratch.search.space import narrowed, uniform_number
from lstm_scratch.search.summary import status_text
from lstm_scratch.search.worker import run_one

from lstm_scratch.analysis import figures as paper_figures  # noqa: E402

FAST = os.environ.get("LSTM_SCRATCH_FAST") == "1"
started = time.perf_counter()
ARCHS = ("V", "CIFG", "NFG")
TRIALS = 12 if FAST else 30                # per architecture
EPOCHS = 1 if FAST else 4                  # per trial (the paper: up to 150, patience 15)
TOP = 0.25 if FAST else 0.10               # the "best 10 %": 3 trials either way (see section 3)

# %% [markdown]
# ## 1. The search space
#
# For every trial the paper draws, independently (§IV of the paper; `paper_space`):
#
#     N ~ log-uniform on [20, 200], rounded         hidden blocks
#     η ~ log-uniform on [10⁻⁶, 10⁻²]               learning rate
#     m = 1 − u,  u ~ log-uniform on [0.01, 1]       momentum, so m ∈ [0, 0.99]
#     σ ~ uniform on [0, 1]                          input noise
#
# "Log-uniform" means uniform in log x: each decade of η is equally likely, so η = 10⁻⁵ is tried as
# often as η = 10⁻³. Momentum is drawn through u = 1 − m because what matters is how close m is to 1
# (0.9, 0.99): half of the draws have m ≥ 0.9.
#
# Each value is drawn by **inverse transform** from one uniform number q ∈ [0, 1):
# log-uniform x = exp(ln a + q (ln b − ln a)); uniform x = a + q (b − a); and m = 1 − exp(ln 0.01 +
# q (ln 1 − ln 0.01)). We write the three maps by hand and check them against `Dimension.draw`.

# %%
space = paper_space("jsb")
for name, dimension in space.items():
    print(f"{name:9} {dimension.describe()}")


def log_uniform(q, a, b):
    return np.exp(np.log(a) + q * (np.log(b) - np.log(a)))


for q in (0.0, 0.1, 0.5, 0.9, 0.999):
    assert np.isclose(space["lr"].draw(q), log_uniform(q, 1e-6, 1e-2), rtol=1e-12)
    assert space["hidden"].draw(q) == round(log_uniform(q, 20, 200))
    assert np.isclose(space["momentum"].draw(q), 1 - log_uniform(q, 0.01, 1.0), rtol=1e-12)
    assert np.isclose(space["noise"].draw(q), q)
assert space["momentum"].draw(0.0) == 0.99          # q = 0: u = 0.01, the largest momentum

# %% [markdown]
# Where does q come from? Each (study seed, task, architecture, trial k, dimension) has **its own
# random stream** (`uniform_number`), so trial k is fully determined by who it is, whatever order the
# trials run in and on whichever machine. By default the architecture is left out of that key —
# **common random numbers**: trial k of V, CIFG and NFG gets exactly the same η, N, m, σ and run seed,
# so when their results differ, the architecture made the difference, not a luckier draw. (The same
# idea as pairing in an experiment; `shared=False` / `--independent-samples` turns it off.) Narrowing
# a dimension maps the same q into the narrower range and leaves every other dimension's draw as it was.
#
# We draw many samples and check the distributions with Kolmogorov–Smirnov tests in the scale where
# they should be uniform.

# %%
n_draws = 4000
draws = [sample(space, seed=0, task="jsb", arch="V", k=k) for k in range(n_draws)]
lr = np.array([d["lr"] for d in draws])
hidden = np.array([d["hidden"] for d in draws])
momentum = np.array([d["momentum"] for d in draws])
noise = np.array([d["noise"] for d in draws])

assert kstest((np.log10(lr) + 6) / 4, "uniform").pvalue > 0.01            # log10 η uniform on [−6, −2]
assert kstest(-np.log10(1 - momentum) / 2, "uniform").pvalue > 0.01       # log10 u uniform on [−2, 0]
assert kstest(noise, "uniform").pvalue > 0.01
assert hidden.dtype.kind == "i" and hidden.min() >= 20 and hidden.max() <= 200
assert abs(np.median(hidden) - np.sqrt(20 * 200)) < 8                      # median of log-uniform: √(ab) ≈ 63
per_decade = np.histogram(np.log10(lr), bins=[-6, -5, -4, -3, -2])[0] / n_draws
assert np.allclose(per_decade, 0.25, atol=0.05)                            # each decade of η equally likely
assert abs(np.mean(momentum >= 0.9) - 0.5) < 0.05                          # half the draws have m ≥ 0.9
print(f"{n_draws} draws: η per decade {np.round(per_decade, 3)}, median N {np.median(hidden):.0f}, "
      f"P(m ≥ 0.9) = {np.mean(momentum >= 0.9):.3f}, mean σ {noise.mean():.3f}")

# Common random numbers: trial k of every architecture is the same point; independent draws are not.
k_range = range(TRIALS)
shared = {arch: [sample(space, seed=0, task="jsb", arch=arch, k=k) for k in k_range] for arch in ARCHS}
independent = {arch: [sample(space, seed=0, task="jsb", arch=arch, k=k, shared=False) for k in k_range]
               for arch in ARCHS}
assert shared["V"] == shared["CIFG"] == shared["NFG"]
assert all(independent["V"][k]["lr"] != independent["CIFG"][k]["lr"] for k in k_range)
assert shared["V"][3]["lr"] == space["lr"].draw(uniform_number(0, "jsb", None, 3, "lr"))

# Narrowing η to [1e-4, 1e-2] maps the same q into that range and leaves the other dimensions alone.
narrow = narrowed(space, "lr=1e-4:1e-2")
for k in range(5):
    wide, small = sample(space, seed=0, task="jsb", arch="V", k=k), sample(narrow, seed=0, task="jsb", arch="V", k=k)
    q = uniform_number(0, "jsb", None, k, "lr")
    assert np.isclose(small["lr"], log_uniform(q, 1e-4, 1e-2), rtol=1e-12)
    assert {n: v for n, v in small.items() if n != "lr"} == {n: v for n, v in wide.items() if n != "lr"}

# %%
def hidden_ticks(axis):
    axis.set_ticks([20, 50, 100, 200], ["20", "50", "100", "200"])
    axis.set_minor_formatter(NullFormatter())


fig, axes = plt.subplots(2, 3, figsize=(13, 7))
ax = axes[0, 0]
ax.hist(lr, bins=np.logspace(-6, -2, 17), color="tab:blue", alpha=0.8)
ax.set_xscale("log")
ax.set_xlabel("learning rate η (log scale)")
ax.set_title("η: log-uniform on [1e-6, 1e-2]\n(flat in log η: each decade equally likely)", fontsize=9)
ax = axes[0, 1]
ax.hist(hidden, bins=np.logspace(np.log10(20), np.log10(200), 15), color="tab:blue", alpha=0.8)
ax.set_xscale("log")
hidden_ticks(ax.xaxis)
ax.set_xlabel("hidden blocks N (log scale)")
ax.set_title("N: log-uniform on [20, 200], rounded", fontsize=9)
ax = axes[0, 2]
ax.hist(momentum, bins=np.linspace(0, 1, 21), color="tab:blue", alpha=0.8)
ax.set_xlabel("momentum m")
ax.set_title("m = 1 − u, u log-uniform on [0.01, 1]\n(half the draws have m ≥ 0.9)", fontsize=9)
ax = axes[1, 0]
ax.hist(noise, bins=np.linspace(0, 1, 11), color="tab:blue", alpha=0.8)
ax.set_xlabel("input noise σ")
ax.set_title("σ: uniform on [0, 1]", fontsize=9)
for ax in axes[0, 0], axes[0, 1], axes[0, 2], axes[1, 0]:
    ax.set_ylabel("draws")
for ax, draws_of, what in ((axes[1, 1], shared, "common random numbers (default)"),
                           (axes[1, 2], independent, "independent draws (shared=False)")):
    for arch, marker, size in zip(ARCHS, ("o", "s", "^"), (90, 45, 18)):
        ax.scatter([d["lr"] for d in draws_of[arch]], [d["hidden"] for d in draws_of[arch]], s=size,
                   marker=marker, label=arch, alpha=0.75)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(7e-7, 1.4e-2)
    ax.set_ylim(18, 220)
    hidden_ticks(ax.yaxis)
    ax.set_xlabel("η")
    ax.set_ylabel("N")
    ax.set_title(f"trials k = 0…{TRIALS - 1} of three architectures:\n{what}", fontsize=9)
    ax.legend(fontsize=8)
fig.suptitle(f"06 — the paper's search space: {n_draws} draws, and the trials of the mini-study")
fig.tight_layout()
show(fig, "06_search_space")

# %% [markdown]
# ## 2. A mini-study through `lstm_scratch.search`
#
# A study is a **directory that is the whole truth**: `study.json` (the definition: task,
# architectures, trials per architecture, seed, space, training protocol), one run directory per
# trial under `trials/<ARCH>-<k>/` (the trainer's checkpoint, `record.json`, `params.npz`), and an
# append-only `events.log`. A trial's state — done, running, failed, diverged, pending — is derived
# from those files every time, so any number of workers on any number of machines can share it, and
# a study that is stopped continues where it was when run again (`tests/test_study.py` kills workers
# mid-trial to check that).
#
# `Study.create` checks every argument and builds every trial's `TrainConfig` before it writes
# anything. We keep the paper's space and shorten the protocol (`max_epochs`). Trial index i is trial
# k = i ÷ 3 of architecture i mod 3, so any prefix of the indices covers the architectures evenly.
# The data come through the registry: `load_task` fetches (here: copies from the mirror), verifies,
# caches and memoises them, so every trial of this process reuses one copy.

# %%
scratch = tempfile.TemporaryDirectory(prefix="lstm_scratch_06_")
study_dir = Path(scratch.name) / "jsb-mini"
study = Study.create(study_dir, task="jsb", archs=",".join(ARCHS), trials=TRIALS, seed=0,
                     max_epochs=EPOCHS, patience=15)
print(study, "—", study.size, "trials")
data = load_task("jsb")
print(data.train.summary())

assert (study_dir / "study.json").is_file() and study.size == len(ARCHS) * TRIALS
assert load_task("jsb") is data                             # memoised: one copy for every trial here
bad_dir = Path(scratch.name) / "bad"
try:
    Study.create(bad_dir, task="jsb", archs="V,LSTMX", trials=3)
except ValueError as error:
    print("refused:", error)
else:
    raise AssertionError("an unknown architecture must be refused")
assert not bad_dir.exists()                                 # checked before anything was written
assert [study.trial(i).id for i in range(4)] == ["V-0000", "CIFG-0000", "NFG-0000", "V-0001"]
for k in range(TRIALS):           # the trials use the space's draws, the same for every architecture
    configs = [study.trial(f"{arch}-{k:04d}").config for arch in ARCHS]
    assert {(c.lr, c.hidden, c.momentum, c.noise, c.seed) for c in configs} == {
        tuple(shared["V"][k][n] for n in ("lr", "hidden", "momentum", "noise", "seed"))}
print(study.trial("CIFG-0003").config)

# %% [markdown]
# **Running it.** `study.run()` (or `lstm-odyssey search run STUDY`) hands every pending trial to an
# executor — a pool of local processes by default, or Dask, or Slurm (section 6) — and each worker
# calls `lstm_scratch.search.worker.run_one(study, index)`: take the trial's lease, train it with
# `train.run_trial`, append one `end` line to `events.log`, release the lease. Here we call `run_one`
# ourselves, one trial after the other in this process: it is the same code, and it keeps the
# tutorial simple (the local pool starts its workers with *spawn*, which imports the calling script
# again in every worker — in your own scripts put `study.run()` under `if __name__ == "__main__":`).
#
# A trial is trained **exactly once**: `run_one` on a trial that has a valid record returns it without
# training (`ran` is False), and `study.run()` on a finished study has nothing to do.

# %%
study_started = time.perf_counter()
ran = [run_one(study, i) for i in range(study.size)]
study_seconds = time.perf_counter() - study_started
assert all(summary["ran"] for summary in ran)
again = run_one(study, 0)
assert not again["ran"] and again["state"] == "done"
status = study.run(prepare=False, progress=False)         # nothing pending: returns the status at once
assert status["total"]["done"] == study.size and status["total"]["pending"] == 0
ends = [e for e in study.events() if e["event"] == "end"]
assert sorted(e["trial"] for e in ends) == sorted(t.id for t in study.trials())   # one end line per trial
assert {p.name for p in (study_dir / "trials" / "V-0000").iterdir()} >= {"checkpoint.npz", "record.json", "params.npz"}
print(status_text(study, status))
print(f"{study.size} trials in {study_seconds:.0f} s")

# %% [markdown]
# `study.to_dataframe()` is the analysis' input: one row per trial with its hyperparameters, outcome,
# best validation metric, the test metric of the parameters kept at that epoch, and its CPU time.
# Even this tiny study shows the paper's main finding: the learning rate decides most of the outcome
# — the test NLL falls steeply as η grows (strongly negative rank correlation).

# %%
df = study.to_dataframe()
print(df[["trial", "hidden", "lr", "momentum", "noise", "outcome", "valid_metric", "test_metric",
          "cpu_seconds"]].round(4).to_string(index=False))
assert len(df) == study.size and set(df["outcome"]) <= {"finished", "early_stopped", "diverged", "failed"}
assert (df.groupby("k")["lr"].nunique() == 1).all()          # common random numbers, in the table
rho = spearmanr(np.log10(df["lr"]), df["test_metric"]).statistic
print(f"Spearman rank correlation of log10 η and the test NLL: {rho:.2f}")
assert rho < -0.7

# %% [markdown]
# ## 3. Is an architecture better than vanilla? The best-10 % Welch test, by hand
#
# The paper compares architectures on their **best 10 % of trials**, because a random search also
# tries terrible hyperparameters, and the question is how good an architecture is when tuned — not
# how good it is on average over a box that is mostly bad. Two rules keep this honest:
#
# 1. **select by validation, score on test**: the best trials are chosen by their validation metric,
#    and reported with their test metric (choosing by test would pick the trials that were lucky on
#    the test set — the same data that scores them);
# 2. trials that **diverged or failed count**, with the worst finite score of the task (so an
#    architecture cannot look good by crashing on its hard cases).
#
# Then each architecture's best test scores A are compared with vanilla's B by **Welch's t-test**
# (unequal variances), with s² the sample variances (ddof 1):
#
#     t = (Ā − B̄) / √(s_A²/n_A + s_B²/n_B)
#     ν = (s_A²/n_A + s_B²/n_B)² / ( (s_A²/n_A)²/(n_A − 1) + (s_B²/n_B)²/(n_B − 1) )    Welch–Satterthwaite
#     p = 2 · P(T_ν > |t|)     (T_ν: Student's t distribution with ν degrees of freedom)
#
# ν lies between min(n_A, n_B) − 1 and n_A + n_B − 2 (the pooled t-test's degrees of freedom, reached
# for equal sample sizes with equal variances). With m comparisons (every architecture but V),
# Bonferroni's p = min(1, m · p). With the paper's 200 trials the best 10 % are 20; our mini-study has
# 12 (30) trials per architecture, so we take the best 25 % (10 %), 3 trials each — which is why
# `compare` takes `top=`.

# %%
ENDED = ("finished", "early_stopped", "diverged", "failed")
ended = df[df["outcome"].isin(ENDED)].copy()
broken = (ended["outcome"].isin(("diverged", "failed")) | ~np.isfinite(ended["valid_metric"].astype(float))
          | ~np.isfinite(ended["test_metric"].astype(float)))
for metric in ("valid", "test"):
    column = ended[f"{metric}_metric"].astype(float)
    ended[f"{metric}_score"] = column.where(~broken, column[~broken].max())    # the worst finished score
print(f"{int(broken.sum())} trial(s) diverged or failed")

n_best = max(1, round(TOP * TRIALS))
best = {arch: ended[ended["arch"] == arch].sort_values(["valid_score", "k"]).head(n_best) for arch in ARCHS}
assert n_best == 3


def welch(a, b):
    """Welch's t, its degrees of freedom ν and the two-sided p from the t distribution."""
    va, vb = a.var(ddof=1) / len(a), b.var(ddof=1) / len(b)
    t = (a.mean() - b.mean()) / np.sqrt(va + vb)
    nu = (va + vb) ** 2 / (va ** 2 / (len(a) - 1) + vb ** 2 / (len(b) - 1))
    return t, nu, 2 * student_t.sf(abs(t), nu)


baseline = best["V"]["test_score"].to_numpy()
comparison = stats.compare(df, baseline="V", top=TOP).set_index("arch")
m_tests = len(ARCHS) - 1
for arch in ARCHS:
    scores = best[arch]["test_score"].to_numpy()
    row = comparison.loc[arch]
    assert row["n_best"] == n_best and np.isclose(row["best10_mean"], scores.mean(), rtol=1e-12)
    if arch == "V":
        print(f"V    best {n_best} by validation: trials {list(best[arch]['trial'])}, test mean {scores.mean():.3f}")
        continue
    t, nu, p = welch(scores, baseline)
    print(f"{arch:4} best {n_best} by validation: test mean {scores.mean():.3f}; vs V: t = {t:+.3f}, "
          f"ν = {nu:.2f}, p = {p:.4f}, Bonferroni p = {min(1, m_tests * p):.4f}  (compare: t = {row['t']:+.3f}, "
          f"p = {row['p']:.4f})")
    assert np.isclose(t, row["t"], rtol=1e-10) and np.isclose(p, row["p"], rtol=1e-10)
    assert np.isclose(min(1.0, m_tests * p), row["p_bonferroni"], rtol=1e-10)
    assert min(len(scores), len(baseline)) - 1 <= nu <= len(scores) + len(baseline) - 2    # ν's bounds
    assert row["significant"] == (p < 0.05)

# The test scores of the trials chosen by validation are never better than those of the trials one would
# choose by test: the k lowest test scores have the lowest mean of any k. That gap is the optimism that
# selecting on the test set would report.
for arch in ARCHS:
    by_test = ended[ended["arch"] == arch]["test_score"].nsmallest(n_best).mean()
    assert best[arch]["test_score"].mean() >= by_test
print("Welch's t, ν and p by hand = analysis.stats.compare")

# %% [markdown]
# ## 4. fANOVA by hand: which hyperparameters matter?
#
# fANOVA (Hutter, Hoos & Leyton-Brown 2014) asks how much of the **variance of the test metric over
# the whole search box** each hyperparameter explains. It cannot integrate over the network itself, so
# it fits a surrogate — a random forest f̂ — to the trials (hyperparameters → test score) and integrates
# that exactly. η, N and 1 − m enter as log10 (the scale in which they were sampled), σ as is, so the
# measure is uniform on the box in the sampled scale.
#
# **One tree.** A regression tree splits the box again and again along one coordinate ("log η ≤
# −4.1?"): its leaves are **boxes** B_ℓ = Π_d [lo_ℓd, hi_ℓd) that tile the search box, and the tree
# predicts a constant v_ℓ on each. With w_ℓd = (hi_ℓd − lo_ℓd) / (b_d − a_d), the fraction of
# dimension d that leaf ℓ covers, the uniform measure of B_ℓ is Π_d w_ℓd, and
#
#     mean        f∅ = Σ_ℓ v_ℓ Π_d w_ℓd
#     variance    V  = Σ_ℓ (v_ℓ − f∅)² Π_d w_ℓd
#     marginal    a_j(θ) = Σ_{ℓ : θ ∈ [lo_ℓj, hi_ℓj)} v_ℓ Π_{d≠j} w_ℓd    (the other dimensions averaged out)
#     main effect V_j = ∫ (a_j(θ) − f∅)² dθ / (b_j − a_j)      share V_j / V
#
# a_j is constant between consecutive leaf edges along dimension j, so V_j is an exact finite sum:
# no sampling, no grid. **A forest** averages: each tree's shares, over the trees (a tree that is
# constant, V = 0, is skipped), and marginals as the mean over trees.
#
# We start with two dimensions, η and N, so that the tree's partition can be drawn.

# %%
table = stats.scored(df)                        # valid/test scores as in section 3 (broken → worst)
table = table[table["outcome"] != "failed"]     # fANOVA leaves crashes out (they say nothing of θ)
y = table["test_score"].to_numpy(float)
BOX = {"lr": (1e-6, 1e-2, True), "hidden": (20, 200, True), "one_minus_momentum": (0.01, 1.0, True),
       "noise": (0.0, 1.0, False)}                        # the paper's box, as importance.PAPER_SPACE has it
columns = {"lr": table["lr"], "hidden": table["hidden"], "one_minus_momentum": 1 - table["momentum"],
           "noise": table["noise"]}
assert all(importance.PAPER_SPACE[n][1:] == ((lo, hi), log) for n, (lo, hi, log) in BOX.items())


def analysed(names):
    """(X in the parameters' units, X in the analysed scale, the box in that scale) for these columns."""
    X = np.column_stack([columns[n].to_numpy(float) for n in names])
    scale = [BOX[n][2] for n in names]
    Z = np.column_stack([np.log10(X[:, i]) if scale[i] else X[:, i] for i in range(len(names))])
    box = np.array([[np.log10(BOX[n][0]), np.log10(BOX[n][1])] if BOX[n][2] else BOX[n][:2] for n in names])
    return X, Z, box


def leaf_boxes(tree, box):
    """The leaves of a fitted scikit-learn tree as boxes: (lo, hi, value) arrays. A sample goes left when
    θ_feature ≤ threshold: the left child's box ends at the threshold, the right child's starts there."""
    t = tree.tree_
    lo, hi, value = [], [], []

    def visit(node, node_lo, node_hi):
        if t.children_left[node] == -1:                         # a leaf
            lo.append(node_lo), hi.append(node_hi), value.append(t.value[node].item())
            return
        d, s = t.feature[node], t.threshold[node]
        left_hi, right_lo = node_hi.copy(), node_lo.copy()
        left_hi[d], right_lo[d] = s, s
        visit(t.children_left[node], node_lo, left_hi)
        visit(t.children_right[node], right_lo, node_hi)

    visit(0, box[:, 0].copy(), box[:, 1].copy())
    return np.array(lo), np.array(hi), np.array(value)


class TreeByHand:
    """The exact functional ANOVA of one tree under the uniform measure on ``box`` (formulas above)."""

    def __init__(self, tree, box):
        self.box = box
        self.lo, self.hi, self.value = leaf_boxes(tree, box)
        self.w = (self.hi - self.lo) / (box[:, 1] - box[:, 0])          # w_ℓd
        self.volume = self.w.prod(axis=1)                                # Π_d w_ℓd
        self.mean = self.volume @ self.value                             # f∅
        self.variance = self.volume @ (self.value - self.mean) ** 2      # V

    def marginal(self, j, theta):
        """a_j at the points θ (analysed scale); the box's upper end belongs to the last leaf."""
        theta = np.atleast_1d(theta)[:, None]
        inside = (self.lo[:, j] <= theta) & ((theta < self.hi[:, j]) | (self.hi[:, j] == self.box[j, 1]))
        rest = np.prod(np.delete(self.w, j, axis=1), axis=1)            # Π_{d≠j} w_ℓd
        return inside @ (self.value * rest)

    def cells(self, j):
        """The intervals between consecutive leaf edges along j: (edges, widths as fractions of the box)."""
        edges = np.unique(np.concatenate([self.lo[:, j], self.hi[:, j]]))
        return edges, np.diff(edges) / (self.box[j, 1] - self.box[j, 0])

    def share(self, j):
        """V_j / V: a_j is constant on each cell, so the integral is a sum over the cells."""
        edges, widths = self.cells(j)
        a = self.marginal(j, (edges[:-1] + edges[1:]) / 2)
        return widths @ (a - self.mean) ** 2 / self.variance


def forest(Z, n_trees, seed=0):
    """A forest with the settings of importance.fanova (Optuna's): bootstrap, every feature at each split,
    leaves of one sample — fitted in the analysed scale."""
    return RandomForestRegressor(n_estimators=n_trees, max_depth=64, min_samples_split=2, min_samples_leaf=1,
                                 max_features=1.0, bootstrap=True, random_state=seed).fit(Z, y)

# %% [markdown]
# A one-tree "forest" on (η, N). We check the partition first: the leaf boxes tile the search box
# (their measures add to 1), and every trial lies in the leaf whose value the tree predicts for it.
# The tree splits mostly on η, and on N too; η's share of the variance is by far the largest, N's
# small but not zero.

# %%
names2 = ["lr", "hidden"]
X2, Z2, box2 = analysed(names2)
one_tree = forest(Z2, n_trees=1).estimators_[0]
hand = TreeByHand(one_tree, box2)
assert np.isclose(hand.volume.sum(), 1.0, rtol=1e-12) and (hand.w >= 0).all()
for z, prediction in zip(Z2, one_tree.predict(Z2)):
    leaf = np.flatnonzero(np.all((hand.lo <= z) & (z <= hand.hi), axis=1))
    assert np.isclose(hand.value[leaf], prediction).any()
shares = {n: hand.share(j) for j, n in enumerate(names2)}
splits = np.bincount(one_tree.tree_.feature[one_tree.tree_.children_left != -1], minlength=2)
print(f"one tree: {len(hand.value)} leaves, {splits[0]} splits on η and {splits[1]} on N; f∅ = {hand.mean:.3f}, "
      f"V = {hand.variance:.3f}; shares by hand " + ", ".join(f"{n} {v:.3g}" for n, v in shares.items())
      + f"; interaction {1 - sum(shares.values()):.3g}")
assert splits[0] > splits[1] > 0
assert shares["lr"] > 0.5 and 0 < shares["hidden"] < shares["lr"] / 4

# The library: importance.fanova builds the same forest (same settings and seed) and decomposes it.
library = importance.fanova(X2, y, names2, [BOX[n][:2] for n in names2], [BOX[n][2] for n in names2],
                            n_trees=1, seed=0)
for name in names2:
    assert abs(shares[name] - library.main[name]) < 1e-12
assert abs((1 - sum(shares.values())) - library.pairs[("lr", "hidden")]) < 1e-12     # 2-D: V = V_η + V_N + V_ηN
grid, library_curve, _ = library.marginal("lr", n=200)
assert np.allclose(hand.marginal(0, np.log10(grid)), library_curve, rtol=0, atol=1e-12)
print("one-tree shares and the marginal of η by hand = importance.fanova(n_trees=1), to 1e-12")

# %% [markdown]
# The picture: on the left the tree's leaves as boxes, coloured by their value, with the trials; on
# the right the marginal a_η — at each η, the average of the leaf values above it, each weighted by
# how much of the N axis its leaf covers — a step function with a step at every leaf edge along η. Its
# squared deviation from f∅, averaged over η, is V_η.

# %%
fig, (left, right) = plt.subplots(1, 2, figsize=(13, 4.8))
norm = LogNorm(hand.value.min(), hand.value.max())
for lo, hi, v in zip(hand.lo, hand.hi, hand.value):
    left.add_patch(plt.Rectangle(lo, *(hi - lo), facecolor=plt.cm.viridis(norm(v)), edgecolor="white", lw=1))
    if hi[0] - lo[0] > 0.25 and hi[1] - lo[1] > 0.12:
        left.text(*(lo + hi) / 2, f"{v:.1f}", ha="center", va="center", fontsize=7,
                  color="white" if norm(v) < 0.6 else "black")
left.scatter(Z2[:, 0], Z2[:, 1], c="tab:red", s=10)
left.set_xlim(*box2[0])
left.set_ylim(*box2[1])
left.set_xlabel("log10 η")
left.set_ylabel("log10 N")
left.set_title(f"one tree's {len(hand.value)} leaves as boxes (colour, number: leaf value = test NLL);\n"
               "red: the trials (each point is trial k of all 3 architectures)", fontsize=9)
bar = fig.colorbar(plt.cm.ScalarMappable(norm=norm, cmap="viridis"), ax=left, label="leaf value v_ℓ (log scale)")
bar.set_ticks([t for t in (12, 15, 20, 30, 40, 60) if norm.vmin <= t <= norm.vmax])
bar.ax.yaxis.set_major_formatter("{x:g}")
bar.ax.yaxis.set_minor_formatter(NullFormatter())
edges, _ = hand.cells(0)
steps = hand.marginal(0, (edges[:-1] + edges[1:]) / 2)
right.stairs(steps, edges, baseline=None, color="tab:blue", lw=2, label="a_η by hand (one step per leaf edge)")
right.plot(np.log10(grid), library_curve, ".", color="tab:orange", ms=3, label="importance.fanova marginal")
right.axhline(hand.mean, color="grey", ls="--", label=f"f∅ = {hand.mean:.1f}")
right.set_xlabel("log10 η")
right.set_ylabel("test NLL per step, N averaged out")
right.set_title(f"marginal of η: V_η / V = {shares['lr']:.4%} of the variance "
                f"(N: {shares['hidden']:.2g}, interaction: {1 - sum(shares.values()):.2g})", fontsize=9)
right.legend(fontsize=8)
fig.suptitle("06 — fANOVA by hand on one regression tree over (η, N)")
fig.tight_layout()
show(fig, "06_fanova_by_hand")

# %% [markdown]
# **All four hyperparameters, and a small forest.** The same code works in any number of dimensions.
# On (η, N, 1 − m, σ) we decompose each tree of a 4-tree forest by hand and average the shares over
# the trees — and get `importance.fanova(n_trees=4)` to 1e-12. `importance.study_importance` does this
# for a whole study table (64 trees), pooled over the architectures (the paper's Figures 4–6) and per
# architecture.

# %%
names4 = list(BOX)
X4, Z4, box4 = analysed(names4)
small_forest = forest(Z4, n_trees=4)
trees = [TreeByHand(e, box4) for e in small_forest.estimators_]
trees = [t for t in trees if t.variance > 0]
by_hand = {n: np.mean([t.share(j) for t in trees]) for j, n in enumerate(names4)}
library4 = importance.fanova(X4, y, names4, [BOX[n][:2] for n in names4], [BOX[n][2] for n in names4],
                             n_trees=4, seed=0)
for name in names4:
    assert abs(by_hand[name] - library4.main[name]) < 1e-12
grid4, curve4, _ = library4.marginal("noise", n=50)
assert np.allclose(np.mean([t.marginal(3, grid4) for t in trees], axis=0), curve4, rtol=0, atol=1e-12)
print("4-tree forest, shares by hand:", {n: round(float(v), 4) for n, v in by_hand.items()}, "= importance.fanova")

results = importance.study_importance(df, space=space_from_definition(study.definition), seed=0)
pooled = results[("jsb", "pooled")]
again64 = importance.fanova(X4, y, names4, [BOX[n][:2] for n in names4], [BOX[n][2] for n in names4],
                            n_trees=64, seed=0)
assert pooled.names == names4 and all(abs(pooled.main[n] - again64.main[n]) < 1e-12 for n in names4)
print(importance.importance_table(results).query("kind != 'pair'").round(3).to_string(index=False))

# %% [markdown]
# ## 5. Figures 3–6 of the mini-study, and how to read them
#
# `lstm_scratch.analysis.figures` draws the paper's figures from these tables (the `lstm-odyssey
# report` command writes them all, with the tables, into one HTML page). With 36 (90) short trials
# they are noisy, but they read like the paper's.
#
# **Figure 3** — per architecture, box plots of the test NLL: all trials (left) and the best trials by
# validation (right; here the best 3), whiskers over the full range, ◇ the mean, ▲ the mean parameter
# count of the best trials. A box is red (green) when Welch's test finds it significantly worse (better)
# than V. The left panel mostly shows the search box (many bad η); the right one is the comparison.
# Here the best trials chosen by validation score better on test than the average trial, for every
# architecture.

# %%
info = task_info("jsb")
title = f"mini-study: {len(ARCHS)} architectures × {TRIALS} trials of {EPOCHS} epoch(s) on JSB"
comparison = stats.compare(df, baseline="V", top=TOP)
assert (comparison["best10_mean"] < comparison["all_mean"]).all()
print(comparison[["arch", "trials", "diverged", "n_best", "best10_mean", "best10_std", "all_mean", "t", "p",
                  "significant", "direction"]].round(4).to_string(index=False))
show(paper_figures.figure3(stats.scored(df), comparison, info["label"], title, baseline="V", top=TOP),
     "06_fig3_architectures")

# %% [markdown]
# **Figure 4** — the fANOVA marginals of the test NLL over η, N and σ (all architectures pooled), with
# ±1 standard deviation across the trees, and the marginal of the training time (CPU seconds, orange) on
# a second axis. Read the slope and the band: η's curve falls by tens of nats from 10⁻⁶ to 10⁻² — with
# so few epochs a small η has barely left the untrained 61 nats; N and σ move it far less. The training
# time grows with N (a step's cost grows with N), hardly with η.

# %%
space_box = space_from_definition(study.definition)
times = importance.study_importance(df, target="cpu_seconds", per_arch=False, space=space_box, seed=0)
time_pooled = times[("jsb", "pooled")]
grid_lr, lr_curve, _ = pooled.marginal("lr")
drop = {name: np.ptp(pooled.marginal(name)[1]) for name in ("lr", "hidden", "noise")}
print("range of each marginal (nats):", {n: round(float(v), 2) for n, v in drop.items()})
assert lr_curve[0] > 40 and lr_curve[0] - lr_curve[-1] > 20   # small η: near 61 nats, far above large η
assert drop["lr"] > 5 * max(drop["hidden"], drop["noise"])
time_n, time_lr = time_pooled.marginal("hidden")[1], time_pooled.marginal("lr")[1]
assert time_n[-1] > 2 * time_n[0]                          # N = 200 costs more than N = 20
assert np.ptp(time_lr) < np.ptp(time_n)                    # η hardly changes the cost
show(paper_figures.figure4([("jsb", pooled, time_pooled, info["label"])], title), "06_fig4_marginals")

# %% [markdown]
# **Figure 5** — each hyperparameter's share of the variance (its main effect V_j / V, averaged over
# the trees, with the standard deviation across trees), and of all interactions together (1 − Σ main).
# As in the paper, the learning rate explains by far the most, and all interactions together little
# (under 20 %, the report's threshold for "little").

# %%
ranked = sorted(pooled.main, key=pooled.main.get, reverse=True)
print("shares of variance:", {n: f"{pooled.main[n]:.1%}" for n in ranked}, f"interactions {pooled.interactions:.1%}")
assert ranked[0] == "lr" and pooled.main["lr"] > 0.5
assert pooled.interactions < min(0.2, pooled.main["lr"])
show(paper_figures.figure5([("jsb (pooled)", pooled)], title), "06_fig5_variance_shares")

# %% [markdown]
# **Figure 6** — for every pair of hyperparameters, the joint marginal a_ab (left triangle) and its
# interaction part alone, f_ab = a_ab − a_a − a_b + f∅ (right triangle, a diverging colour scale centred
# on 0). The left grids with η are stripes: (η, N) changes far more along η than along N. The right
# grids say how far a pair departs from "the effects add up". Here the interaction part of (η, N) is
# small next to the joint marginal's
# range, and the best η on the joint marginal moves by at most a decade across N — as in the paper,
# where this meant that η can be tuned on a small network and then used for a large one.

# %%
_, _, joint = pooled.joint_marginal("lr", "hidden", n=20)
_, _, pure = pooled.interaction("lr", "hidden", n=20)
print(f"(η, N): joint marginal spans {np.ptp(joint):.1f} nats, its interaction part at most "
      f"{np.abs(pure).max():.2f}")
spread = best_lr_spread(pooled)           # how far the best η (on the joint marginal) moves with N
print(f"the best η moves by {spread:.2f} decades across N")
assert np.ptp(joint, axis=0).mean() > 5 * np.ptp(joint, axis=1).mean()     # along η ≫ along N: stripes
assert np.abs(pure).max() < 0.5 * np.ptp(joint) and spread <= 1.0
show(paper_figures.figure6(pooled, "jsb (pooled)", title, info["label"]), "06_fig6_pairs")

# %% [markdown]
# **When trials blow up.** The variance fANOVA splits is a sum of squares, so a handful of extreme trials
# can own it. The full JSB study published with the project (`results/jsb-study/trials.csv`: the nine
# architectures of the paper, up to 200 trials each, 150 epochs) has such trials. NOAF has no output
# activation, h(x) = x, so its cell output is unbounded, and some of its trials end far worse than a
# network that learned nothing — p = ½ for every key scores 88 ln 2 ≈ 61.0 nats per step (the task row's
# `uninformed` level). Pooled with everyone else, those trials pull η's share down and the interactions
# up: the shares then describe NOAF's blow-ups, not the search box. The report (`lstm-odyssey report`)
# therefore repeats the pooled analysis without the architectures that blow up (`importance.blow_ups`;
# whole architectures, so the rest is not filtered by outcome) and shows both.

# %%
full_definition, full = load_table(Path(_figures.__file__).resolve().parent.parent / "results" / "jsb-study")
level = task_info("jsb")["uninformed"]
blown = importance.blow_ups(full, {"jsb": level})
ended = full[full["outcome"].isin(stats.ENDED)]
worst = ended.groupby("arch")["test_metric"].max()
print(f"{len(ended)} trials ended; worse than knowing nothing ({level:.1f} nats): {blown['jsb']}")
print("worst test NLL per architecture:", {a: round(float(v), 1) for a, v in worst.items()})
everyone = importance.study_importance(full, per_arch=False)[("jsb", "pooled")]
without = importance.study_importance(full[~full["arch"].isin(list(blown["jsb"]))],
                                      per_arch=False)[("jsb", "pooled")]
for name, imp in (("all nine pooled", everyone), ("pooled without NOAF", without)):
    print(f"{name:20s} η {imp.main['lr']:.1%}, interactions {imp.interactions:.1%} ({imp.n_samples} trials)")
assert list(blown["jsb"]) == ["NOAF"] and (worst.drop("NOAF") < level).all()
assert without.main["lr"] > everyone.main["lr"] + 0.2 and without.interactions < everyone.interactions / 2
show(paper_figures.figure5([("jsb, all nine pooled", everyone), ("jsb, pooled without NOAF", without)],
                           "the full JSB study (results/jsb-study)"), "06_fig5b_blow_ups")

# %% [markdown]
# ## 6. The same study on a cluster
#
# Nothing above depends on where trials run: every executor calls `run_one`, and the study directory
# decides what is left to do. The paper's study is 9 architectures × 200 trials of up to 150 epochs.
# To run it, put the study directory on a file system every node sees, install the same environment on
# every node, and pick an engine (these commands are not run here):
#
# ```bash
# lstm-odyssey search create studies/jsb --task jsb --archs all --trials 200 --seed 0
#
# # on this machine's cores
# lstm-odyssey search run studies/jsb --workers 8
#
# # a Dask cluster: a scheduler and single-threaded workers, started wherever you like
# dask scheduler                                                    # prints tcp://HOST:8786
# OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 dask worker tcp://HOST:8786 --nthreads 1
# lstm-odyssey search run studies/jsb --scheduler tcp://HOST:8786  # or study.run(scheduler=...), run(client=...)
#
# # Dask workers as Slurm jobs (dask-jobqueue): no scheduler to start
# lstm-odyssey search run studies/jsb --jobqueue slurm --workers 40 \
#     --jobqueue-option queue=batch --jobqueue-option walltime=04:00:00
#
# # a plain Slurm job array, no Dask: one trial per element, K at a time
# lstm-odyssey search slurm studies/jsb --partition batch --time 04:00:00 --parallel 100
#
# lstm-odyssey search status studies/jsb          # done/running/failed/diverged/pending, best, CPU h, ETA
# lstm-odyssey search export studies/jsb --csv trials.csv
# lstm-odyssey report studies/jsb --out report/   # Welch tables, fANOVA, Figures 3–6 as one HTML page
# ```
#
# Interrupt any of them and run the same command again: finished trials are kept, interrupted ones
# continue from their last epoch's checkpoint. `search slurm` writes an `sbatch --array` script whose
# element i runs `lstm-odyssey search run-trial STUDY --index i` on one core; here is the script it
# would write for our 36 trials (`array_script`, the function it uses), and a dry run on our finished
# study, which has nothing left to submit.

# %%
from lstm_scratch.search.slurm import array_script, submit_array  # noqa: E402

script = array_script(study, list(range(study.size)), 0, partition="batch", time_limit="04:00:00", parallel=8)
print(script)
assert f"#SBATCH --array=0-{study.size - 1}%8" in script and "#SBATCH --cpus-per-task=1" in script
assert "search run-trial" in script and "--index $((SLURM_ARRAY_TASK_ID + 0))" in script
assert submit_array(study, partition="batch", time_limit="04:00:00", parallel=8, dry_run=True)["trials"] == 0

# %% [markdown]
# ## Summary
#
# * The paper's space is log-uniform in η and N, m = 1 − u with u log-uniform, σ uniform; each value is
#   an inverse transform of its own uniform number, shared by the architectures (common random numbers).
# * A study is a directory; workers take trials by lease, train each exactly once, and the table
#   (`to_dataframe`) is the analysis' input.
# * Architectures are compared on their best trials **selected by validation, scored on test**, by
#   Welch's t-test with Welch–Satterthwaite degrees of freedom (and Bonferroni over the comparisons).
# * fANOVA decomposes a random forest's prediction exactly: leaves are boxes, marginals are weighted
#   sums over leaves, shares are finite sums over the cells between leaf edges.
# * Even a one-epoch mini-study shows the paper's main result: the learning rate dominates.
# * Variance is a sum of squares: trials that end worse than knowing nothing can own the pooled shares,
#   so the report shows the pooled analysis with and without the architectures that blow up.

# %%
scratch.cleanup()
print(f"all claims of tutorial 06 hold ({time.perf_counter() - started:.0f} s; the study's "
      f"{study.size} trials took {study_seconds:.0f} s)")
