"""The random-search study (SPEC §7): the paper's space, a study directory that is the whole truth,
and executors for local cores, Dask, dask-jobqueue and Slurm job arrays.

    from lstm_scratch.search import Study
    study = Study.create("studies/jsb", task="jsb", archs="all", trials=200, seed=0)
    study.run()                      # all local cores; or run(scheduler="tcp://host:8786"), run(client=...)
    study.status(); study.to_dataframe()

Modules: :mod:`.space` (distributions, sampling), :mod:`.study` (definition, trial states),
:mod:`.lease` (who runs a trial), :mod:`.worker` (one trial in one process), :mod:`.executors`
(local pool, Dask, dask-jobqueue), :mod:`.slurm` (job arrays), :mod:`.summary` (status, DataFrame).
"""
from .space import Dimension, paper_space, sample
from .study import STATES, Study, Trial, TrialState

__all__ = ["Dimension", "STATES", "Study", "Trial", "TrialState", "paper_space", "sample"]
