"""The task table owns its facts (loader, options, objective, direction); load_task loads three splits
once per process; every split carries a fingerprint of its data, and a run records it."""
import inspect

import numpy as np
import pytest

from lstm_scratch.datasets import (TASKS, SyntheticSettings, TaskData, availability, default_bidirectional,
                                   iam_ondb, load, load_task, report, store)
from lstm_scratch.train import TrainConfig, train

TINY = SyntheticSettings(seed=3, writers=(4, 2, 2), lines_per_writer=3)


@pytest.fixture(autouse=True)
def fresh(monkeypatch):
    monkeypatch.delenv(iam_ondb.ENV_ROOT, raising=False)
    load_task.cache_clear()
    yield
    load_task.cache_clear()


def test_every_row_names_its_loader_its_options_and_its_direction():
    for task in TASKS.values():
        keywords = [name for name, p in inspect.signature(task.loader).parameters.items()
                    if p.default is not inspect.Parameter.empty]
        assert list(task.options) == keywords, task.name
        # the papers' choice per task: next-step prediction must not see the future
        assert task.bidirectional == (task.loss not in ("bernoulli", "next_symbol")), task.name
    with pytest.raises(TypeError, match=r"task 'jsb' does not take option\(s\) \['subsample'\]"):
        load("jsb", "train", subsample=2)


@pytest.mark.parametrize("dtype", [np.float16, "int32", "complex128"])
def test_only_float32_and_float64_are_loaded(dtype, data_env):
    with pytest.raises(ValueError, match=r"dtype=\w+: data load as float32 or float64 only"):
        load("jsb", "train", dtype=dtype)
    with pytest.raises(ValueError, match="data load as float32 or float64 only"):
        load_task("jsb", dtype=dtype)
    assert not data_env.exists()                      # refused before anything was fetched or written


def test_load_task_loads_once_per_task_dtype_and_cache(data_env, monkeypatch, tmp_path):
    first = load_task("jsb")
    assert isinstance(first, TaskData) and [s.name for s in first] == ["train", "valid", "test"]
    assert load_task("jsb", dtype=np.float64) is first
    narrow = load_task("jsb", dtype="float32")
    assert narrow is not first and narrow.train.inputs[0].dtype == np.float32
    assert narrow.fingerprint == first.fingerprint                      # the dtype is not part of the data
    assert load_task("handwriting", dtype="float32") is load_task("handwriting_synthetic", dtype="float32")
    monkeypatch.setenv(store.ENV_CACHE, str(tmp_path / "another-cache"))
    elsewhere = load_task("jsb")
    assert elsewhere is not first and elsewhere.fingerprint == first.fingerprint


def test_fingerprints_name_the_data(data_env):
    jsb = load_task("jsb")
    prints = [s.fingerprint for s in jsb]
    assert all(len(p) == 16 and int(p, 16) >= 0 for p in prints) and len(set(prints)) == 3
    assert len(jsb.fingerprint) == 16 and jsb.fingerprint not in prints
    assert load_task("nottingham").fingerprint != jsb.fingerprint
    assert [s.metric for s in jsb] == ["nll_per_step"] * 3          # from the objective's row, not the loader
    tiny = [load("handwriting_synthetic", s, settings=TINY) for s in ("train", "valid", "test")]
    other = load("handwriting_synthetic", "valid", settings=SyntheticSettings(seed=4, writers=(4, 2, 2),
                                                                            lines_per_writer=3))
    assert other.fingerprint != tiny[1].fingerprint                     # the settings are part of it
    assert TaskData(*tiny).fingerprint not in (None, load_task("handwriting").fingerprint)
    assert tiny[0].metric == "cer" and load("timit_sample", "test").metric == "frame_error"
    made_by_hand = TaskData(*(s.__class__(**{**vars(s), "fingerprint": None}) for s in tiny))
    assert made_by_hand.fingerprint is None


def test_a_generated_set_already_cached_is_listed_as_cached(data_env):
    assert availability("handwriting_synthetic") == "generated on first use (cached)"
    load_task("handwriting_synthetic")
    assert availability("handwriting_synthetic") == "cached"
    row = next(line for line in report.task_table().splitlines() if line.startswith("handwriting_synthetic"))
    assert row.endswith("  cached")


def test_the_direction_comes_from_the_task_row(data_env):
    jsb = load("jsb", "valid")
    assert default_bidirectional(jsb) is False
    assert default_bidirectional(load("handwriting_synthetic", "valid", settings=TINY)) is True
    foreign = jsb.__class__(**{**vars(jsb), "task": "my-music"})           # no row: the objective's default
    assert default_bidirectional(foreign) is False


def test_a_run_records_the_resolved_task_and_the_data_fingerprint(data_env):
    record = train(TrainConfig("handwriting", hidden=2, max_epochs=1, lr=0.0), threads=1, progress=False)
    assert record["config"]["task"] == "handwriting"                    # as given
    assert record["task"]["name"] == "handwriting_synthetic"            # the data actually used
    assert record["task"]["fingerprint"] == load_task("handwriting").fingerprint
    assert record["task"]["synthetic"] is True and record["network"]["bidirectional"] is True


def test_the_uninformed_level_is_what_knowing_nothing_scores(data_env):
    # p = ½ for every key (logits 0) on JSB's real test split scores exactly the music rows' level, and
    # every row with an unbounded metric (NLL) has one; the bounded ones (error %, accuracy) have none.
    from lstm_scratch.objectives import objective
    test = load("jsb", "test")
    knowing_nothing = objective("bernoulli").score([np.zeros((len(y), test.n_out)) for y in test.targets],
                                                   test.targets)
    assert knowing_nothing == pytest.approx(TASKS["jsb"].uninformed, rel=1e-12)
    assert TASKS["jsb"].uninformed == pytest.approx(88 * np.log(2))
    for task in TASKS.values():
        assert (task.uninformed is not None) == (task.loss == "bernoulli"), task.name
