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
# # 04 — Connectionist temporal classification (CTC), by hand
#
# The handwriting task of the paper (IAM-OnDB) gives a sequence of pen positions and only the
# *text* of the line — no frame-by-frame labels. CTC (Graves et al. 2006) turns the network's
# per-frame class probabilities into a probability of the whole label sequence by summing over all
# the ways ("alignments") the frames could spell it.
#
# **What you'll learn**
#
# * the blank symbol, the collapse map B and the extended label sequence l′ = (b, l₁, b, l₂, …, b);
# * the forward (α) and backward (β) recursions, written in NumPy for a tiny case, checked against
#   brute-force enumeration of every path and against `lstm_scratch.ctc.ctc_loss`;
# * the gradient with respect to the network outputs, checked with finite differences;
# * why real code works in log space or rescales (long sequences underflow);
# * best-path decoding (and why it is not the most probable labelling), edit distance and the
#   character error rate (CER) the paper reports.
#
# **How to use it.** `python tutorials/04_ctc_by_hand.py`, or
# `jupytext --to notebook tutorials/04_ctc_by_hand.py` and open the notebook. Every claim is an
# `assert`.

# %%
import itertools
import os

import numpy as np

from lstm_scratch import ctc
from lstm_scratch.gradcheck import numerical_gradient, relative_error

FAST = os.environ.get("LSTM_SCRATCH_FAST") == "1"
rng = np.random.default_rng(4)
BLANK = 0
ALPHABET = "-ab"           # class 0 is the blank, written "-"; classes 1, 2 are the letters a, b


def softmax(a):
    e = np.exp(a - a.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def text(labels):
    return "".join(ALPHABET[k] for k in labels)


# %% [markdown]
# ## 1. Paths, the collapse map B, and the label probability
#
# The network emits, at every frame t, a distribution yᵗ over K classes: the letters plus one
# **blank**. A *path* π picks one class per frame. The collapse map B first merges runs of the
# same class, then deletes blanks:
#
#     B(a a - b) = ab      B(- a - a) = aa      B(a a a a) = a
#
# The blank is what lets a path say "a, then a again" (a - a) as opposed to "one long a" (a a).
# Frames are independent given the input, so p(π | x) = Π_t yᵗ_{πₜ}, and
#
#     p(l | x) = Σ_{π : B(π) = l} p(π | x),        CTC loss = −ln p(l | x).

# %%
def collapse(path):
    merged = [k for j, k in enumerate(path) if j == 0 or k != path[j - 1]]
    return [k for k in merged if k != BLANK]


assert text(collapse([1, 1, 0, 2])) == "ab"
assert text(collapse([0, 1, 0, 1])) == "aa"
assert text(collapse([1, 1, 1, 1])) == "a"


def brute_force(y, labels):
    """p(l | x) by enumerating all K^T paths — only possible for tiny T."""
    T, K = y.shape
    total, count = 0.0, 0
    for path in itertools.product(range(K), repeat=T):
        if collapse(list(path)) == list(labels):
            total += np.prod(y[np.arange(T), path])
            count += 1
    return total, count


T, K = 5, 3
logits = rng.normal(size=(T, K))
y = softmax(logits)
labels = np.array([1, 2])                    # "ab"
p_brute, n_paths = brute_force(y, labels)
print(f"T = {T}, K = {K}: {n_paths} of {K ** T} paths collapse to '{text(labels)}', p = {p_brute:.6f}")

# %% [markdown]
# ## 2. The extended label sequence and the forward recursion α
#
# Every path that collapses to l walks through the **extended** sequence
# l′ = (b, l₁, b, l₂, …, l_L, b) of S = 2L + 1 states, one state per frame, never moving backwards.
# From state s it may stay in s, move to s + 1, or **skip** the blank to s + 2 — but only when
# l′_{s+2} ≠ l′_s (you cannot skip the blank between two equal letters, or "aa" would become "a").
#
# αₜ(s) = total probability of the path prefixes up to frame t that are in state s:
#
#     α₀(0) = y⁰_b,   α₀(1) = y⁰_{l₁},   α₀(s) = 0 otherwise
#     αₜ(s) = yᵗ_{l′_s} · (αₜ₋₁(s) + αₜ₋₁(s−1) + [αₜ₋₁(s−2) if the skip is allowed])
#
# A valid path ends in the last letter or the final blank: p(l | x) = α_{T−1}(S−1) + α_{T−1}(S−2).

# %%
def extend(labels):
    ext = np.full(2 * len(labels) + 1, BLANK)
    ext[1::2] = labels
    return ext


def can_skip(ext, s):
    return s >= 2 and ext[s] != ext[s - 2]


def forward_alpha(y, labels):
    ext = extend(labels)
    T, S = y.shape[0], ext.size
    alpha = np.zeros((T, S))
    alpha[0, 0] = y[0, ext[0]]
    if S > 1:
        alpha[0, 1] = y[0, ext[1]]
    for t in range(1, T):
        for s in range(S):
            a = alpha[t - 1, s] + (alpha[t - 1, s - 1] if s >= 1 else 0.0)
            if can_skip(ext, s):
                a += alpha[t - 1, s - 2]
            alpha[t, s] = y[t, ext[s]] * a
    return alpha


ext = extend(labels)
print("l′ =", text(ext))
assert text(ext) == "-a-b-"
alpha = forward_alpha(y, labels)
p_alpha = alpha[-1, -1] + alpha[-1, -2]
print(f"p from α: {p_alpha:.12f}   brute force: {p_brute:.12f}")
assert abs(p_alpha - p_brute) < 1e-14

# %% [markdown]
# ## 3. The backward recursion β and the gradient
#
# βₜ(s) = total probability of the path *suffixes* after frame t, given state s at frame t (we do
# not include yᵗ itself, so that αₜ(s) βₜ(s) is the probability of all complete paths through
# state s at frame t, with no division needed):
#
#     β_{T−1}(S−1) = β_{T−1}(S−2) = 1
#     βₜ(s) = Σ_{s′ ∈ {s, s+1, s+2 if the skip onto s+2 is allowed}} yᵗ⁺¹_{l′_{s′}} βₜ₊₁(s′)
#
# Every complete path is in exactly one state at frame t, so **p = Σ_s αₜ(s) βₜ(s) for every t**.
#
# With yᵗ = softmax(aᵗ) folded in, the gradient of the loss with respect to the pre-softmax
# outputs a is
#
#     ∂(−ln p)/∂aᵗ_k = yᵗ_k − (1/p) Σ_{s : l′_s = k} αₜ(s) βₜ(s)
#
# — "what the network says" minus "how much of the probability mass of correct paths goes through
# class k at frame t", the same shape as the softmax cross-entropy gradient y − target.

# %%
def backward_beta(y, labels):
    ext = extend(labels)
    T, S = y.shape[0], ext.size
    beta = np.zeros((T, S))
    beta[-1, -1] = 1.0
    if S > 1:
        beta[-1, -2] = 1.0
    for t in range(T - 2, -1, -1):
        for s in range(S):
            b = y[t + 1, ext[s]] * beta[t + 1, s]
            if s + 1 < S:
                b += y[t + 1, ext[s + 1]] * beta[t + 1, s + 1]
            if s + 2 < S and can_skip(ext, s + 2):
                b += y[t + 1, ext[s + 2]] * beta[t + 1, s + 2]
            beta[t, s] = b
    return beta


def ctc_by_hand(logits, labels):
    y = softmax(logits)
    alpha, beta = forward_alpha(y, labels), backward_beta(y, labels)
    p = alpha[-1, -1] + (alpha[-1, -2] if alpha.shape[1] > 1 else 0.0)
    grad = y.copy()
    for s, k in enumerate(extend(labels)):
        grad[:, k] -= alpha[:, s] * beta[:, s] / p
    return -np.log(p), grad, alpha, beta


loss, grad, alpha, beta = ctc_by_hand(logits, labels)
p_every_t = (alpha * beta).sum(axis=1)
print("Σ_s αₜ(s) βₜ(s) for t = 0 … T−1:", np.round(p_every_t, 12))
assert np.allclose(p_every_t, p_brute, rtol=1e-12, atol=0)

loss_lib, grad_lib = ctc.ctc_loss(logits, labels, blank=BLANK)
grad_fd = numerical_gradient(lambda: ctc.ctc_loss(logits, labels, blank=BLANK)[0], logits)
print(f"loss: by hand {loss:.12f}, ctc_loss {loss_lib:.12f}")
print(f"gradient: by hand vs ctc_loss {relative_error(grad, grad_lib):.1e}, "
      f"by hand vs finite differences {relative_error(grad, grad_fd):.1e}")
assert abs(loss - loss_lib) < 1e-12
assert relative_error(grad, grad_lib) < 1e-12
assert relative_error(grad, grad_fd) < 1e-8
# each frame's gradient sums to zero (softmax): probability moves between classes, never created
assert np.allclose(grad.sum(axis=1), 0.0, atol=1e-12)

# %% [markdown]
# ## 4. Repeated letters need a blank in between
#
# "aa" needs at least three frames (a - a). With two frames no path collapses to it: the
# probability is zero and the loss infinite. `ctc_loss` refuses such a target with a clear error
# (or returns an infinite loss with `zero_infinity=True`); `ctc.min_frames` tells you the minimum.

# %%
two_frames = rng.normal(size=(2, K))
assert brute_force(softmax(two_frames), [1, 1]) == (0.0, 0)
assert ctc.min_frames([1, 1]) == 3 and ctc.min_frames([1, 2]) == 2
try:
    ctc.ctc_loss(two_frames, np.array([1, 1]))
    raise AssertionError("an impossible alignment must raise")
except ValueError as error:
    print("ctc_loss says:", str(error)[:90], "…")
assert ctc.ctc_loss(two_frames, np.array([1, 1]), zero_infinity=True)[0] == np.inf

# with three frames, "aa" has exactly one path: a - a
three = softmax(rng.normal(size=(3, K)))
p_aa, n_aa = brute_force(three, [1, 1])
assert n_aa == 1 and np.isclose(p_aa, three[0, 1] * three[1, 0] * three[2, 1])

# %% [markdown]
# ## 5. Long sequences underflow: log space or rescaling
#
# Each path probability is a product of T numbers below one. For a few hundred frames p(l | x)
# drops below the smallest float64 (~1e-308) and the plain recursion returns exactly 0. Two cures:
#
# * **log space**: keep ln αₜ(s) and replace every sum by log-sum-exp;
# * **rescaling** (Graves 2012, §7.3): after each frame divide αₜ by Cₜ = Σ_s αₜ(s);
#   then ln p = Σ_t ln Cₜ + ln(final α̂ mass). `ctc_loss` uses this (it is fast: only multiplies) and
#   falls back to log space when even that is at risk.

# %%
T_long, K_long = (300, 30) if FAST else (600, 30)
long_labels = rng.integers(1, K_long, size=12)
long_logits = rng.normal(size=(T_long, K_long))
y_long = softmax(long_logits)

alpha_plain = forward_alpha(y_long, long_labels)
p_plain = alpha_plain[-1, -1] + alpha_plain[-1, -2]


def log_alpha_loss(y, labels):
    ext, logy = extend(labels), np.log(y)
    T, S = y.shape[0], ext.size
    la = np.full((T, S), -np.inf)
    la[0, :2] = logy[0, ext[:2]]
    for t in range(1, T):
        for s in range(S):
            terms = [la[t - 1, s]] + ([la[t - 1, s - 1]] if s >= 1 else [])
            if can_skip(ext, s):
                terms.append(la[t - 1, s - 2])
            la[t, s] = logy[t, ext[s]] + np.logaddexp.reduce(terms)
    return -np.logaddexp(la[-1, -1], la[-1, -2])


def rescaled_alpha_loss(y, labels):
    ext = extend(labels)
    T, S = y.shape[0], ext.size
    a = np.zeros(S)
    a[:2] = y[0, ext[:2]]
    log_p = 0.0
    for t in range(T):
        if t > 0:
            shifted1 = np.concatenate([[0.0], a[:-1]])
            shifted2 = np.concatenate([[0.0, 0.0], a[:-2]])
            skip = np.array([can_skip(ext, s) for s in range(S)])
            a = y[t, ext] * (a + shifted1 + np.where(skip, shifted2, 0.0))
        C = a.sum()
        a = a / C
        log_p += np.log(C)
    return -(log_p + np.log(a[-1] + a[-2]))


loss_log = log_alpha_loss(y_long, long_labels)
loss_rescaled = rescaled_alpha_loss(y_long, long_labels)
loss_library = ctc.ctc_loss(long_logits, long_labels)[0]
print(f"T = {T_long}: plain α gives p = {p_plain}; log space −ln p = {loss_log:.6f}; "
      f"rescaled {loss_rescaled:.6f}; ctc_loss {loss_library:.6f}")
assert p_plain == 0.0 and loss_log > 708            # e^−708 is about the smallest float64
assert abs(loss_log - loss_library) < 1e-9 * loss_library
assert abs(loss_rescaled - loss_library) < 1e-9 * loss_library
assert abs(ctc.ctc_loss(long_logits, long_labels, method="log")[0] - loss_library) < 1e-9 * loss_library

# %% [markdown]
# ## 6. Decoding: best path
#
# To read a transcription off a trained network, the paper uses **best-path decoding**: take the
# most probable class at every frame, then collapse. It is fast but only approximate: the most
# probable *path* need not belong to the most probable *labelling*, because a labelling's
# probability is spread over many paths. A two-frame example with y = (blank 0.6, a 0.4) at both
# frames: the best path is "- -" → empty, p = 0.36, yet "a" has three paths (a-, -a, aa) with
# total 0.24 + 0.24 + 0.16 = 0.64.

# %%
def best_path_by_hand(logits):
    return np.array(collapse(list(np.argmax(logits, axis=1))), dtype=np.int64)


y_two = np.array([[0.6, 0.4], [0.6, 0.4]])
logits_two = np.log(y_two)
decoded = ctc.best_path(logits_two)
p_empty = np.exp(-ctc.ctc_loss(logits_two, np.array([], dtype=np.int64))[0])
p_a = np.exp(-ctc.ctc_loss(logits_two, np.array([1]))[0])
print(f"best path decodes to {list(decoded)} (p = {p_empty:.2f}); but p('a') = {p_a:.2f}")
assert decoded.size == 0 and np.array_equal(best_path_by_hand(logits_two), decoded)
assert np.isclose(p_empty, 0.36) and np.isclose(p_a, 0.64)
for trial in range(20):                          # our decoder and the library's agree
    random_logits = rng.normal(size=(12, 4))
    assert np.array_equal(best_path_by_hand(random_logits), ctc.best_path(random_logits))

# %% [markdown]
# ## 7. Training pushes the best path onto the target
#
# Minimising the CTC loss by gradient descent on free logits (standing in for a network's outputs)
# concentrates the probability on paths that collapse to the target, and then best-path decoding
# reads the target back.

# %%
target = np.array([1, 2, 2, 1])                  # "abba": the repeated b needs a blank between
free = rng.normal(0, 0.1, size=(10, K))
free_start = free.copy()                         # for the picture in section 9
losses = []
for step in range(60 if FAST else 200):
    loss_value, dlogits = ctc.ctc_loss(free, target)
    losses.append(loss_value)
    free -= 0.5 * dlogits
print(f"CTC loss {losses[0]:.3f} → {losses[-1]:.3f}; best path: '{text(ctc.best_path(free))}'")
assert losses[-1] < 0.1 * losses[0]
assert np.array_equal(ctc.best_path(free), target)

# %% [markdown]
# ## 8. Edit distance and the character error rate
#
# The paper scores handwriting by the **character error rate**: the Levenshtein edit distance
# (fewest insertions, deletions and substitutions) between the decoded and the true text, summed
# over all lines and divided by the total length of the true text, in percent. The distance is a
# small dynamic programme: D[i, j] = distance between the first i symbols of a and the first j of b.

# %%
def edit_distance_by_hand(a, b):
    D = np.zeros((len(a) + 1, len(b) + 1), dtype=int)
    D[:, 0] = np.arange(len(a) + 1)             # delete everything
    D[0, :] = np.arange(len(b) + 1)             # insert everything
    for i in range(1, len(a) + 1):
        for j in range(1, len(b) + 1):
            D[i, j] = min(D[i - 1, j] + 1,                            # deletion
                          D[i, j - 1] + 1,                            # insertion
                          D[i - 1, j - 1] + (a[i - 1] != b[j - 1]))   # substitution or match
    return int(D[-1, -1])


pairs = [("kitten", "sitting"), ("handwriting", "handwritng"), ("lstm", "lstm"), ("", "abc")]
for a, b in pairs:
    assert edit_distance_by_hand(a, b) == ctc.edit_distance(a, b)
assert edit_distance_by_hand("kitten", "sitting") == 3
refs, hyps = ["kitten", "handwriting"], ["sitting", "handwritng"]
cer = ctc.character_error_rate(refs, hyps)
print(f"CER of {hyps} against {refs}: {cer:.2f} %  (= 100 · (3 + 1) / (6 + 11))")
assert np.isclose(cer, 100 * 4 / 17)

# %% [markdown]
# ## 9. Pictures: the lattice, and a pen trajectory read by a network
#
# **The lattice.** Divide αₜ(s) βₜ(s) by p and you get the posterior probability that a correct path
# is in state s of l′ at frame t. Each column sums to one (every path is in exactly one state per
# frame). Below: the "abba" example of section 7 before and after training. Before, the mass is
# smeared over every state the frame can reach; after, it runs along one path through the lattice
# (at every frame one state holds most of it), and that path visits the blank between the two b's.

# %%
import matplotlib.pyplot as plt

from _figures import show

ext_target = extend(target)
fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), sharey=True)
posteriors = {}
for ax, (when, logits_now) in zip(axes, (("before training", free_start), ("after training", free))):
    loss_now, _, alpha_now, beta_now = ctc_by_hand(logits_now, target)
    posteriors[when] = alpha_now * beta_now / np.exp(-loss_now)          # (T, S)
    assert np.allclose(posteriors[when].sum(axis=1), 1.0, atol=1e-12)   # each column sums to one
    image = ax.imshow(posteriors[when].T, aspect="auto", cmap="Greys", vmin=0, vmax=1, origin="upper")
    ax.set_yticks(range(ext_target.size), list(text(ext_target)))
    ax.set_xlabel("frame t")
    ax.set_title(f"αₜ(s)·βₜ(s) / p, {when} (loss {loss_now:.2f})", fontsize=10)
axes[0].set_ylabel("state s of l′")
fig.colorbar(image, ax=axes, label="posterior of the state", fraction=0.03)
fig.suptitle("04 — the CTC lattice for the target 'abba'")
show(fig, "04_ctc_lattice")
after = posteriors["after training"]
assert np.all(after.max(axis=1) > 0.5)                # one state per frame holds most of the mass
assert after[:, 4].max() > 0.9                        # l′_4 is the blank between the b's: it is used
print("after training, the most probable state per frame:", text(ext_target[after.argmax(axis=1)]))

# %% [markdown]
# **A pen trajectory.** The paper's handwriting task feeds the network pen movements. We write "abba"
# with one of the project's synthetic writers (`lstm_scratch.datasets.synthetic_handwriting`: Hershey
# fonts, a random slant, size and wobble — the stand-in for IAM-OnDB), turn the points into the
# network's features (Δx, Δy, time in stroke, pen-up; `datasets.strokes`), and fit a small
# bidirectional LSTM network with the CTC loss (`lstm_scratch.Network`, the momentum update of the
# trainer) to this one line until best-path decoding reads "abba". Then we look at its per-frame
# label probabilities. They show the typical CTC picture: **spikes**. The blank is the most probable
# class on most frames (here more than three quarters), and each letter appears as a short burst,
# in the order a, b, b, a. The loss says nothing about *where* a spike goes: a network fitted to a
# single line puts them wherever it found easiest (a bidirectional network sees the whole line at
# every frame); trained on many lines, spikes settle near the pen movements that write the letters.

# %%
from lstm_scratch import Network
from lstm_scratch.datasets import strokes, synthetic_handwriting
from lstm_scratch.momentum import Momentum

writer = synthetic_handwriting.make_writer(0, seed=0)
pen = strokes.subsample(synthetic_handwriting.render_line(
    synthetic_handwriting.hershey_font(writer.font), "abba", writer, np.random.default_rng(0)), 2)
features = strokes.point_features(pen, "abba")
features = (features - features.mean(axis=0)) / features.std(axis=0)    # standardise, as the data sets do
points = np.concatenate(pen)[:, :2]

net = Network("V", n_in=4, n_hidden=12, n_out=K, loss="ctc", bidirectional=True, seed=0)
update = Momentum(net.flat, lr=0.1, momentum=0.9)
for step in range(3000):
    pen_loss, pen_grad = net.loss_and_grad(features, target)
    update.step(pen_grad)
    if pen_loss < 0.1:
        break
y_pen = softmax(net.logits(features))
winner = y_pen.argmax(axis=1)
print(f"{writer.font} writer, {len(features)} frames: CTC loss {pen_loss:.3f} after {step + 1} updates; "
      f"best path '{text(ctc.best_path(net.logits(features)))}'; blank wins on {np.mean(winner == BLANK):.0%} "
      f"of the frames")
assert np.array_equal(ctc.best_path(net.logits(features)), target)
assert np.mean(winner == BLANK) > 0.75

fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), gridspec_kw={"height_ratios": [1.2, 1]})
colors = {1: "tab:red", 2: "tab:blue"}
for stroke in pen:
    top.plot(stroke[:, 0], -stroke[:, 1], "-", color="lightgrey", linewidth=1)
top.plot(points[:, 0], -points[:, 1], ".", color="grey", markersize=3)
for k, color in colors.items():
    spike = winner == k
    top.scatter(points[spike, 0], -points[spike, 1], s=200 * y_pen[spike, k], color=color,
                label=f"frames where '{ALPHABET[k]}' is the most probable class", zorder=3)
top.set_aspect("equal")
top.axis("off")
top.legend(fontsize=8, loc="upper left", bbox_to_anchor=(0, -0.02), ncol=2)
top.set_title("the pen trajectory (grey: blank wins), network trained by CTC on 'abba'", fontsize=10)
for k, color in ((BLANK, "grey"), *colors.items()):
    bottom.plot(y_pen[:, k], color=color, label=f"p('{ALPHABET[k]}')" if k else "p(blank)")
bottom.set_xlabel("frame (pen point, every second one kept)")
bottom.set_ylabel("per-frame probability")
bottom.legend(fontsize=8, ncol=3)
fig.suptitle("04 — CTC spikes: per-frame label probabilities along a written word")
show(fig, "04_pen_trajectory")

# %% [markdown]
# ## Summary
#
# * p(l | x) sums over all paths that collapse to l; the α/β recursions over the extended sequence
#   l′ compute it in O(T · S) instead of O(K^T), and p = Σ_s αₜ(s) βₜ(s) at every frame.
# * The gradient w.r.t. the logits is y − (posterior occupancy of each class), checked against
#   brute force, `ctc_loss` and finite differences.
# * Long sequences need log space or rescaling; `ctc_loss` rescales and falls back to log space.
# * Best-path decoding is not the most probable labelling, but after training they coincide here.
# * CER = 100 · Σ edit distances / Σ reference lengths.
# * After training the posterior αβ/p runs along one path of the lattice, and a network reading a
#   pen trajectory emits each letter as a short spike among blanks.

# %%
print("all claims of tutorial 04 hold")
