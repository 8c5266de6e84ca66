"""The random-search study (SPEC §7): the paper's space, a study directory that is the whole truth,
and executors for local cores, Dask, dask-jobqueue and Slurm job arrays.

    from lstm_scratch.search import Study
    study = Study.create("studies/jsb", task="jsb", archs="all", trials=200, seed=0)
    study.run()                      # all local cores; or run(scheduler="tcp://host:8786"), run(client=...)
    study.status(); study.to_dataframe()

Modules: :mod:`.space` (distributions, sampling), :mod:`.study` (definition, trial states),
:mod:`.lease` (who runs a trial), :mod:`.worker` (one trial in one process), :mod:`.executors`
(local pool, Dask, dask-jobqueue), :mod:`.slurm` (job arrays), :mod:`.summary` (status, DataFrame).

The names are loaded on first use (PEP 562, as the package's own facade does): the space is NumPy
alone, so the analysis reads a study's space (:mod:`.space`) without importing the trainer and Numba,
which :mod:`.study` brings.
"""
import importlib

# public name -> the submodule that defines it
_EXPORTS = {"Dimension": "space", "paper_space": "space", "sample": "space",
            "STATES": "study", "Study": "study", "Trial": "study", "TrialState": "study"}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    """``lstm_scratch.search.NAME``: an exported name, imported now (then cached here)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
