"""A study of JZS's regime (protocol jzs): JZS's space and cells, trial ids with dashes (LSTM-F-0001)
through every state derivation, the CLI's run-trial and the local executor, the DataFrame's JZS
columns, and the analysis on it (Welch against LSTM in accuracy's sense, fANOVA over JZS's dimensions)."""
import json

import numpy as np
import pytest
from search_helpers import assert_each_trial_ended_once, search_env  # noqa: F401

from lstm_scratch import cli
from lstm_scratch.analysis import importance, stats
from lstm_scratch.analysis.table import load, task_info
from lstm_scratch.search import Study
from lstm_scratch.search.slurm import array_script
from lstm_scratch.search.space import jzs_draws, jzs_sample, jzs_space
from lstm_scratch.search.summary import COLUMNS
from lstm_scratch.variants import JZS_ARCHITECTURES

pytestmark = pytest.mark.usefixtures("search_env")

# Tiny trials: memorisation (2,000 training sequences of 11 steps), a budget of 1,500 parameters (N ≈ 10),
# one layer, one epoch; η, the init scale and the clipping norm come from JZS's space.
TINY_JZS = dict(task="memorisation", archs="LSTM,LSTM-F,LSTM-B", trials=2, seed=0, protocol="jzs",
                space="params=1500,layers=1", max_epochs=1)


def test_a_jzs_study_draws_jzs_space_for_jzs_cells(tmp_path):
    study = Study.create(tmp_path / "s", task="xml", archs="jzs", trials=3, protocol="jzs")
    saved = json.loads((tmp_path / "s" / "study.json").read_text())
    assert saved["archs"] == list(JZS_ARCHITECTURES) and set(saved["space"]) == set(jzs_space("xml"))
    assert saved["protocol"]["protocol"] == "jzs" and saved["protocol"]["batch"] == 20
    assert saved["protocol"]["unroll"] == 35 and saved["protocol"]["lr_decay"] == 0.5
    for trial in study.trials():
        c = trial.config
        drawn = jzs_sample(jzs_space("xml"), seed=0, task="xml", arch=trial.arch, k=trial.k, n_in=29, n_out=29)
        assert {name: getattr(c, name) for name in drawn} == drawn
        assert c.protocol == "jzs" and c.batch == 20 and c.momentum == 0 and c.noise == 0
        assert c.forget_bias == (1.0 if trial.arch == "LSTM-B" else 0.0)
    gru, lstm = study.trial("GRU-0002").config, study.trial("LSTM-0002").config
    assert (gru.lr, gru.layers, gru.init_scale, gru.clip_norm) == (lstm.lr, lstm.layers, lstm.init_scale,
                                                                   lstm.clip_norm)   # common random numbers
    frame = study.to_dataframe()
    assert list(frame.columns) == list(COLUMNS) and set(frame.protocol) == {"jzs"}
    assert list(frame.budget) == [jzs_draws(study.space, seed=0, task="xml", arch=a, k=k)["params"]
                                  for a, k in zip(frame.arch, frame.k)]
    assert (frame.layers == [t.config.layers for t in study.trials()]).all()
    with pytest.raises(ValueError, match="not inside JZS's"):
        Study.create(tmp_path / "t", task="xml", archs="jzs", trials=1, protocol="jzs", space="lr=1e-3:1")
    with pytest.raises(ValueError, match="JZS's tasks"):
        Study.create(tmp_path / "t", task="timit_sample", archs="LSTM", trials=1, protocol="jzs")
    with pytest.raises(ValueError, match="FGR"):
        Study.create(tmp_path / "t", task="xml", archs="LSTM,FGR", trials=1, protocol="jzs")
    assert not (tmp_path / "t").exists()


def test_trial_ids_with_dashes_map_to_their_index_and_back(tmp_path):
    study = Study.create(tmp_path / "s", **TINY_JZS)
    ids = [t.id for t in study.trials()]
    assert ids == ["LSTM-0000", "LSTM-F-0000", "LSTM-B-0000", "LSTM-0001", "LSTM-F-0001", "LSTM-B-0001"]
    for index, trial_id in enumerate(ids):
        assert study.trial(trial_id).index == index and study.trial(index).id == trial_id
    with pytest.raises(ValueError, match="no trial 'LSTM-O-0000'"):
        study.trial("LSTM-O-0000")
    with pytest.raises(ValueError, match="no trial 'LSTM-F-0002'"):
        study.trial("LSTM-F-0002")
    script = array_script(study, [4, 5], 0, partition="p", time_limit="1:00", parallel=1)
    assert "--array=4-5%1" in script and "--index $((SLURM_ARRAY_TASK_ID + 0))" in script


def test_a_tiny_jzs_study_runs_and_the_analysis_reads_it(tmp_path, capsys):
    path = tmp_path / "s"
    assert cli.main(["search", "create", str(path), "--task", "memorisation", "--archs", "LSTM,LSTM-F,LSTM-B",
                     "--trials", "2", "--protocol", "jzs", "--space", "params=1500", "--space", "layers=1",
                     "--max-epochs", "1"]) == 0
    capsys.readouterr()
    study = Study.open(path)
    assert study.definition == Study.create(tmp_path / "s", **TINY_JZS).definition     # CLI = API
    # the Slurm element's command: run-trial --index of a dashed id
    index = study.trial("LSTM-F-0001").index
    assert cli.main(["search", "run-trial", str(path), "--index", str(index)]) == 0
    assert capsys.readouterr().out.strip() == "trial LSTM-F-0001: done"
    assert [s.trial.id for s in study.states() if s.state == "done"] == ["LSTM-F-0001"]
    info = study.run(workers=2, progress=False)
    assert_each_trial_ended_once(study)
    assert info["total"]["done"] == 6
    frame = study.to_dataframe()
    assert set(frame.outcome) <= {"finished", "early_stopped"} and set(frame.metric) == {study.objective.label}
    assert (frame.protocol == "jzs").all() and (frame.layers == 1).all() and (frame.budget == 1500).all()
    assert frame.clip_norm.notna().all() and (frame.n_params <= 1500).all()
    best = frame.loc[frame.valid_metric.idxmax()]                      # accuracy: the highest is the best
    assert info["total"]["best"]["trial"] == best.trial and info["total"]["best"]["valid_metric"] == best.valid_metric
    # the analysis, from the study directory as the report reads it
    definition, df = load(path)
    direction = task_info("memorisation")["lower_is_better"]
    assert direction is False and definition["protocol"]["protocol"] == "jzs"
    table = stats.compare(df, baseline="LSTM", top=1.0, lower_is_better=direction)
    assert list(table.arch) == ["LSTM", "LSTM-F", "LSTM-B"] and (table.trials == 2).all()
    for _, row in table[table.arch != "LSTM"].iterrows():
        mine, base = df[df.arch == row.arch].test_metric.mean(), df[df.arch == "LSTM"].test_metric.mean()
        assert row.best10_mean == pytest.approx(mine)
        if row.significant:
            assert row.direction == ("better" if mine > base else "worse")
    dims = importance.study_space(df)
    assert set(dims) == {"lr", "init_scale", "clip_norm"}            # budget and layers fixed: dropped
    assert dims["lr"][1] == (0.1, 5.0) and dims["clip_norm"][2] is True
    results = importance.study_importance(df, lower_is_better=direction, min_trials=2, n_trees=8)
    assert ("memorisation", "pooled") in results                     # test accuracies differ across η
    for imp in results.values():
        assert set(imp.names) <= set(dims) and np.isfinite(imp.higher_order)
