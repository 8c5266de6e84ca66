"""JZS's generated tasks (memorisation, arithmetic, xml): deterministic, disjoint splits, the documented
formats, the scored positions, the ``next_symbol`` objective, and a training run that records accuracy."""
import re

import numpy as np
import pytest

from lstm_scratch import losses
from lstm_scratch.cli import main
from lstm_scratch.datacheck import check_data
from lstm_scratch.datasets import (TASKS, JzsSettings, SyntheticSettings, TaskData, availability, jzs, load,
                                   load_task)
from lstm_scratch.objectives import objective
from lstm_scratch.train import TrainConfig, train

TASK_NAMES = ("memorisation", "arithmetic", "xml")
SMALL = JzsSettings(seed=0, n_train=600, n_valid=300, n_test=300)
QUESTION = re.compile(r"^(-?\d+)([+-])(-?\d+)=$")


def texts(task, split, settings=SMALL):
    data = load(task, split, settings=settings)
    return [jzs.example_text(data, i) for i in range(len(data))]


def parse_arithmetic(text):
    """(a, op, b, answer, distractor counts per gap) of an arithmetic example, read back from its string."""
    read, answer = text.split("=")
    question = re.sub("[a-z]", "", read) + "="
    a, op, b = QUESTION.match(question).groups()
    gaps = [len(run) for run in re.split(r"[^a-z]", read)[1:]]       # letters after each question character
    return int(a), op, int(b), answer, gaps


def parse_xml(text):
    """The tags of a document in opening order; an AssertionError unless it is well formed."""
    stack, opened, position = [], [], 0
    for match in re.finditer(r"<(/?)([a-z]+)>", text):
        assert match.start() == position, f"stray text at {position} in {text!r}"
        position = match.end()
        if match.group(1):
            assert stack and stack.pop() == match.group(2), f"unbalanced close at {match.start()} in {text!r}"
        else:
            assert opened == [] or stack, f"a second root element in {text!r}"
            stack.append(match.group(2))
            opened.append(match.group(2))
    assert position == len(text) and not stack and opened, text
    return opened


def test_generation_is_deterministic_and_pinned():
    # the first examples of seed 0, pinned: a change to the generator must bump GENERATOR_VERSION
    assert texts("memorisation", "train")[:2] == ["zfltn=zfltn", "cooif=cooif"]
    assert texts("arithmetic", "valid")[:2] == ["-h7sdwa6g9q2mon7i8www11-vo-xx7mc2j2rt9wk=-76920582",
                                               "-7o21o1q9l-n-z11wh9is2o1ep3xjn=47094"]
    assert texts("xml", "test")[:2] == ["<rrblruro></rrblruro>", "<oec></oec>"]
    for task in TASK_NAMES:
        first, again = load(task, "valid", settings=SMALL), load(task, "valid", settings=SMALL)
        assert first.fingerprint == again.fingerprint
        assert all(np.array_equal(x, y) for x, y in zip(first.inputs, again.inputs))
        assert all(np.array_equal(x, y) for x, y in zip(first.targets, again.targets))
        assert texts(task, "train", JzsSettings(seed=1, n_train=50)) != texts(task, "train")[:50]


def test_fingerprints_hold_the_seed_the_size_and_the_task_rules_only():
    prints = {task: [load(task, s, settings=SMALL).fingerprint for s in jzs.SPLITS] for task in TASK_NAMES}
    assert len({p for row in prints.values() for p in row}) == 9
    memorisation = load("memorisation", "test", settings=SMALL).fingerprint
    assert load("memorisation", "test", settings=JzsSettings(n_train=600, n_valid=300, n_test=300,
                                                             distractor_mean=3)).fingerprint == memorisation
    assert load("memorisation", "test", settings=JzsSettings(n_test=300, memorise=6)).fingerprint != memorisation
    assert load("memorisation", "test", settings=JzsSettings(n_test=300, seed=1)).fingerprint != memorisation
    assert load("memorisation", "test", settings=JzsSettings(n_test=299)).fingerprint != memorisation
    arithmetic = load("arithmetic", "test", settings=JzsSettings(n_test=20)).fingerprint
    assert load("arithmetic", "test", settings=JzsSettings(n_test=20, distractor_mean=1)).fingerprint == arithmetic
    assert load("arithmetic", "test", settings=JzsSettings(n_test=20, distractor_mean=2)).fingerprint != arithmetic


@pytest.mark.parametrize("task", TASK_NAMES)
def test_splits_are_disjoint_and_a_smaller_size_is_a_prefix(task):
    def problem(text):
        if task == "arithmetic":
            a, op, b, _, _ = parse_arithmetic(text)
            return f"{a}{op}{b}="
        return text.split("=")[0] if task == "memorisation" else text
    problems = {split: {problem(t) for t in texts(task, split)} for split in jzs.SPLITS}
    assert all(len(problems[s]) > 100 for s in jzs.SPLITS)
    assert not problems["train"] & problems["valid"]
    assert not problems["train"] & problems["test"] and not problems["valid"] & problems["test"]
    assert all(jzs.bucket(task, p) == jzs.SPLITS.index(s) for s in jzs.SPLITS for p in problems[s])
    # another seed draws other examples, from the same side of the partition
    other = {problem(t) for t in texts(task, "test", JzsSettings(seed=5, n_test=300))}
    assert not other & problems["train"] and other != problems["test"]
    assert texts(task, "valid", JzsSettings(n_valid=40)) == texts(task, "valid")[:40]


def test_arithmetic_answers_are_the_true_sum_or_difference():
    assert parse_arithmetic("3e36d9-h1h39f94eeh43keg3c=-13991064")[:4] == (3369, "-", 13994433, "-13991064")
    examples = [parse_arithmetic(t) for split in jzs.SPLITS for t in texts("arithmetic", split)]
    for a, op, b, answer, _ in examples:
        assert answer == str(a + b if op == "+" else a - b)
        assert len(str(abs(a))) <= 8 and len(str(abs(b))) <= 8
    operands = [v for a, _, b, _, _ in examples for v in (a, b)]
    assert {op for _, op, _, _, _ in examples} == {"+", "-"}
    assert min(operands) < 0 < max(operands) and max(len(str(abs(v))) for v in operands) == 8
    assert any(answer.startswith("-") for *_, answer, _ in examples)
    gaps = [g for *_, counts in examples for g in counts]
    assert abs(np.mean(gaps) - 1.0) < 0.05 and max(gaps) >= 5       # geometric, mean 1 (our choice)
    plain = [parse_arithmetic(t) for t in texts("arithmetic", "train", JzsSettings(
        n_train=200, signed_operands=False, distractor_mean=0, max_digits=3))]
    assert all(a >= 0 and b >= 0 and not any(g) and a < 1000 and b < 1000 for a, _, b, _, g in plain)


def test_every_xml_document_is_well_formed():
    documents = [t for split in jzs.SPLITS for t in texts("xml", split)]
    tags = [parse_xml(t) for t in documents]
    assert all(2 <= len(tag) <= 10 for row in tags for tag in row)
    assert {len(tag) for row in tags for tag in row} == set(range(2, 11))
    single = sum(len(row) == 1 for row in tags) / len(tags)
    assert 0.45 < single < 0.55                         # the first step closes the root tag half the time
    assert max(len(row) for row in tags) > 10           # and some documents nest deeply
    # after xml_max_steps steps every step closes: at most 1 + max_steps tags
    capped = [parse_xml(t) for t in texts("xml", "train", JzsSettings(n_train=300, xml_max_steps=3))]
    assert max(len(row) for row in capped) == 4


def test_memorisation_reproduces_five_letters():
    for text in texts("memorisation", "train"):
        word, copy = text.split("=")
        assert word == copy and len(word) == 5 and re.fullmatch("[a-z]{5}", word)
    assert texts("memorisation", "test", JzsSettings(n_test=3, memorise=2))[0][2] == "="


@pytest.mark.parametrize("task", TASK_NAMES)
def test_inputs_are_one_hot_and_targets_the_next_symbol_scored_where_the_paper_scores(task):
    data = load(task, "valid", dtype="float32", settings=SMALL)
    vocabulary = jzs.VOCABULARIES[task]
    assert data.n_in == data.n_out == len(vocabulary) == TASKS[task].n_in and data.labels == tuple(vocabulary)
    assert data.loss == "next_symbol" and data.metric == "accuracy" and not data.synthetic
    scored_total = 0
    for x, y, text in zip(data.inputs, data.targets, texts(task, "valid")):
        assert x.dtype == np.float32 and y.dtype == np.int64 and x.shape == (len(text) - 1, len(vocabulary))
        assert np.array_equal(x.sum(axis=1), np.ones(len(x))) and set(np.unique(x)) == {0, 1}
        symbols = np.array([vocabulary.index(c) for c in text])
        assert np.array_equal(x.argmax(axis=1), symbols[:-1])
        scored = y != losses.UNSCORED
        assert np.array_equal(y[scored], symbols[1:][scored])             # target t = symbol t + 1
        first = int(np.argmax(scored))
        assert scored[first:].all() and not scored[:first].any()           # one scored run, to the end
        answer = text[first + 1:]
        if task == "xml":
            assert first == 0                                              # every character but the first
        else:
            assert text[first] == "=" and "=" not in answer                # the answer, after "="
            if task == "memorisation":
                assert answer == text[:5]
        scored_total += int(scored.sum())
    assert data.notes["scored_frames"] == scored_total
    check_data(TaskData(data, data, data))                                 # −1 passes the data check


def test_bad_settings_and_options_are_clear_errors():
    for field, value, message in [("n_train", 0, "n_train=0 must be an integer ≥ 1"),
                                  ("n_test", 2.5, "n_test=2.5 must be an integer ≥ 1"),
                                  ("seed", -1, "seed=-1 must be an integer ≥ 0"),
                                  ("memorise", True, "memorise=True must be an integer ≥ 1"),
                                  ("max_digits", 16, "max_digits=16 must be ≤ 15"),
                                  ("signed_operands", 1, "signed_operands=1 must be True or False"),
                                  ("distractor_mean", -0.5, "distractor_mean=-0.5 must be a finite number ≥ 0"),
                                  ("distractor_mean", float("nan"), "distractor_mean=nan must be a finite")]:
        with pytest.raises(ValueError, match=re.escape(f"JzsSettings: {message}")):
            JzsSettings(**{field: value})
    with pytest.raises(TypeError, match=r"task 'arithmetic' does not take option\(s\) \['digits'\]"):
        load("arithmetic", "train", digits=3)
    with pytest.raises(ValueError, match="xml: settings=SyntheticSettings.* must be a JzsSettings"):
        load("xml", "train", settings=SyntheticSettings())
    with pytest.raises(ValueError, match="unknown split 'dev'"):
        jzs.load("xml", "dev")
    with pytest.raises(ValueError, match="unknown JZS task 'parity'"):
        jzs.load("parity", "train")


def test_the_next_symbol_objective_counts_scored_frames_only():
    rng = np.random.default_rng(4)
    logits = rng.normal(size=(6, 5))
    labels = np.array([-1, -1, 3, 0, -1, 4])
    row = objective("next_symbol")
    loss, dlogits = row.loss(logits, labels)
    scored = labels >= 0
    reference, dreference = losses.softmax_xent(logits[scored], labels[scored])
    assert loss == reference and np.array_equal(dlogits[scored], dreference) and not dlogits[~scored].any()
    step = 1e-6                                                 # and the gradient is the loss's
    for t, k in [(2, 3), (3, 1), (1, 2)]:
        bumped = logits.copy()
        bumped[t, k] += step
        assert (row.loss(bumped, labels)[0] - loss) / step == pytest.approx(dlogits[t, k], abs=1e-5)
    nothing, zeros = row.loss(logits, np.full(6, -1))
    assert nothing == 0.0 and zeros.shape == logits.shape and not zeros.any()
    hits = logits[scored].argmax(axis=1) == labels[scored]
    assert row.score([logits, logits], [labels, labels]) == hits.mean()
    assert losses.symbol_nll([logits], [labels]) == pytest.approx(reference / 3)
    assert not row.lower_is_better and row.improves(0.6, 0.5) and not row.improves(0.5, 0.5)
    assert objective("softmax").improves(0.5, 0.6)
    assert "label -2 at frame 1 is out of range" in row.target_problem(np.array([0, -2]), 2, 5)
    assert "label 5 at frame 0" in row.target_problem(np.array([5, 0]), 2, 5)
    assert "must have shape (3,)" in row.target_problem(np.array([0, 1]), 3, 5)
    assert row.target_problem(np.array([-1, 4]), 2, 5) is None
    with pytest.raises(ValueError, match="needs at least one scored frame"):
        row.score([logits], [np.full(6, -1)])


def test_a_short_training_run_records_accuracy_and_keeps_its_highest_epoch():
    tiny = JzsSettings(seed=2, n_train=60, n_valid=30, n_test=30)
    data = TaskData(*(load("memorisation", split, settings=tiny) for split in jzs.SPLITS))
    record = train(TrainConfig("memorisation", hidden=12, lr=0.3, momentum=0.5, max_epochs=4, patience=4,
                               seed=3), data=data, threads=1, progress=False)
    assert record["outcome"] == "finished" and record["error"] is None
    assert record["task"]["name"] == "memorisation" and record["task"]["loss"] == "next_symbol"
    assert record["task"]["metric"] == "next-symbol accuracy (scored positions)"
    assert record["network"]["bidirectional"] is False and record["task"]["fingerprint"] == data.fingerprint
    history = record["history"]["valid_metric"]
    assert all(0 <= v <= 1 for v in history) and 0 <= record["test_metric"] <= 1
    assert max(history) > min(history)                           # so the direction of early stopping shows
    assert record["best_epoch"] == 1 + int(np.argmax(history)) and record["best_valid_metric"] == max(history)


def test_the_tasks_are_listed_and_described(capsys, monkeypatch, tmp_path):
    monkeypatch.setenv("LSTM_SCRATCH_DATA", str(tmp_path))
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    for task in TASK_NAMES:
        assert re.search(rf"\n{task} +next_symbol +{len(jzs.VOCABULARIES[task])} +2000/500/500 +generated on the "
                         r"fly \(seeded\)", out), out
        assert availability(task) == "generated on the fly (seeded)"
    assert main(["data", "info", "arithmetic"]) == 0
    out = capsys.readouterr().out
    assert "loss next_symbol, metric accuracy, n_in 39" in out and "| test | 500 |" in out
    assert not any(tmp_path.iterdir())                            # generated, nothing cached
    load_task.cache_clear()
    assert load_task("xml").valid.fingerprint == load("xml", "valid").fingerprint
    load_task.cache_clear()
