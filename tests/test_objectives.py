"""The objectives table: one row per loss, looked up by the network, the data check, the task table and
the trainer — a fourth loss is one row. Also: a parameter file that is not one is a clear error."""
import numpy as np
import pytest

from lstm_scratch import losses, objectives
from lstm_scratch.datacheck import check_data
from lstm_scratch.datasets import TASKS, Split, TaskData
from lstm_scratch.network import Network
from lstm_scratch.objectives import OBJECTIVES, Objective, objective
from lstm_scratch.train import TrainConfig, train


def test_rows_keep_the_names_records_and_the_task_table_use():
    # record["task"]["metric"] holds the label, the task table the metric name: both are data, pinned here
    assert {name: (row.metric_name, row.label) for name, row in OBJECTIVES.items()} == {
        "bernoulli": ("nll_per_step", "NLL per time step (nats)"),
        "softmax": ("frame_error", "framewise classification error %"),
        "ctc": ("cer", "character error rate %"),
        "next_symbol": ("accuracy", "next-symbol accuracy (scored positions)")}
    # early stopping keeps the minimum, except for accuracy
    assert [name for name, row in OBJECTIVES.items() if not row.lower_is_better] == ["next_symbol"]
    assert [name for name, row in OBJECTIVES.items() if row.real_targets] == ["bernoulli"]
    for task in TASKS.values():
        assert task.objective is OBJECTIVES[task.loss] and task.metric == task.objective.metric_name


@pytest.mark.parametrize("loss, n_out, target", [
    ("bernoulli", 4, (np.arange(24).reshape(6, 4) % 3 == 0).astype(float)),
    ("softmax", 4, np.array([0, 3, 1, 1, 2, 0])),
    ("ctc", 4, np.array([2, 3])),
], ids=["bernoulli", "softmax", "ctc"])
def test_the_network_computes_what_its_row_says(loss, n_out, target):
    net = Network("V", 3, 4, n_out, loss=loss, bidirectional=loss != "bernoulli", seed=5, blank=0)
    x = np.random.default_rng(1).normal(size=(6, 3))
    logits = net.logits(x)
    row = objective(loss)
    assert net.objective is row
    assert net.loss_and_grad(x, target)[0] == row.loss_of(logits, target)[0]
    assert np.array_equal(net.predict(x), row.predict(logits))
    assert net.evaluate([x, x], [target, target]) == row.score([logits, logits], [target, target])


def test_the_ctc_row_passes_the_blank_and_scores_best_path_cer():
    logits = np.zeros((5, 4))
    logits[[0, 1, 2, 3, 4], [3, 3, 1, 2, 2]] = 5.0        # best path 3 3 b 2 2 -> [3, 2] with blank 1
    row = objective("ctc")
    assert row.predict(logits, blank=1).tolist() == [3, 2]
    assert row.score([logits], [np.array([3, 2])], blank=1) == 0.0
    assert row.score([logits], [np.array([3, 0, 2])], blank=1) == pytest.approx(100 / 3)


def _squared_error(logits, targets):
    """½ Σ (a − z)²: a loss the package does not have, to show that adding one is one row."""
    diff = logits - np.asarray(targets, dtype=logits.dtype)
    return 0.5 * float(np.sum(diff * diff, dtype=np.float64)), diff


def _mean_squared_error(logits_seqs, target_seqs):
    return sum(_squared_error(a, z)[0] for a, z in zip(logits_seqs, target_seqs)) / sum(len(a) for a in logits_seqs)


def _shape_problem(y, frames, n_out):
    y = np.asarray(y)
    return None if y.shape == (frames, n_out) else f"a squared-error target must be ({frames}, {n_out}), got {y.shape}"


SQUARED = Objective("squared", _squared_error, lambda a: a, _mean_squared_error, "mse", "squared error per step",
                    lower_is_better=True, uses_blank=False, real_targets=True, target_problem=_shape_problem,
                    bidirectional=False)


def _regression_task(loss="squared"):
    rng = np.random.default_rng(3)

    def split(name, count):
        inputs = [rng.normal(size=(int(rng.integers(5, 9)), 2)) for _ in range(count)]
        return Split(task="made-up", name=name, inputs=inputs, targets=[x[:, ::-1].copy() for x in inputs],
                     ids=list(range(count)), n_in=2, n_out=2, loss=loss, metric="mse", labels=("u", "v"),
                     synthetic=True, source="SYNTHETIC regression")
    return TaskData(split("train", 6), split("valid", 3), split("test", 3))


def test_a_fourth_loss_is_one_row(monkeypatch):
    with pytest.raises(ValueError, match="loss 'squared' not one of"):
        _regression_task()
    monkeypatch.setitem(OBJECTIVES, "squared", SQUARED)           # the one edit
    data = _regression_task()
    check_data(data)
    record = train(TrainConfig("made-up", hidden=3, lr=0.1, max_epochs=3, patience=3, dtype="float32"),
                   data=data, threads=1, progress=False)
    assert record["outcome"] == "finished" and record["error"] is None
    assert record["task"]["metric"] == "squared error per step" and record["task"]["name"] == "made-up"
    assert record["network"]["bidirectional"] is False and record["task"]["fingerprint"] is None
    assert np.isfinite(record["test_metric"]) and record["history"]["valid_metric"][-1] < record["history"]["valid_metric"][0]
    bad = data._replace(valid=Split(**{**vars(data.valid), "targets": [np.zeros((1, 2))] * 3}))
    with pytest.raises(ValueError, match=r"valid split, sequence 0 \(id 0\): a squared-error target must be"):
        check_data(bad)


def test_an_unknown_loss_is_refused_everywhere():
    with pytest.raises(ValueError, match="unknown loss 'mse'; choose one of bernoulli, softmax, ctc"):
        objective("mse")
    with pytest.raises(ValueError, match="unknown loss 'mse'"):
        Network("V", 2, 2, 2, loss="mse")
    with pytest.raises(ValueError, match="loss 'mse' not one of"):
        _regression_task("mse")


def test_losses_no_longer_imports_ctc():
    # the old losses.loss_function imported ctc inside a function while ctc imports losses: a cycle
    assert not hasattr(losses, "loss_function") and objectives.OBJECTIVES["ctc"].loss.__module__ == "lstm_scratch.ctc"


@pytest.mark.parametrize("content", [
    b"this is not an npz file at all\n",
    b"PK\x03\x04 truncated zip",
    "npy",
], ids=["junk", "truncated-zip", "npy"])
def test_a_file_that_is_no_parameter_file_is_a_value_error_naming_it(tmp_path, content):
    path = tmp_path / "params.npz"
    if content == "npy":
        with open(path, "wb") as handle:
            np.save(handle, np.zeros(3))
    else:
        path.write_bytes(content)
    with pytest.raises(ValueError, match=rf"{path}: not a readable lstm_scratch parameter file"):
        Network.from_file(path)
    net = Network("V", 2, 2, 2)
    before = net.flat.copy()
    with pytest.raises(ValueError, match=rf"{path}: not a readable lstm_scratch parameter file"):
        net.load(path)
    assert np.array_equal(net.flat, before)


def test_a_damaged_parameter_file_is_a_value_error_naming_it(tmp_path):
    path = tmp_path / "params.npz"
    Network("V", 2, 3, 2, seed=1).save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 40] = b"\xff" * 40        # flipped bytes inside the archive
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match=rf"{path}: not a readable lstm_scratch parameter file"):
        Network.from_file(path)
    with pytest.raises(FileNotFoundError):
        Network.from_file(tmp_path / "missing.npz")
