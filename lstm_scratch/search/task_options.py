"""A study's loader options (``search create … --task-option NAME=VALUE``): what they may be, checked
before anything is written, stored in ``study.json`` as plain JSON, and the data every worker loads
with them.

The options a task takes are the keyword options its row declares (``Task.options`` in
:mod:`lstm_scratch.datasets.registry`), each with the loader's default. An option whose default is a
settings dataclass (``settings=JzsSettings()``, ``mfcc=MfccSettings()``) is opened into its fields, so
the command line names the field itself::

    memorisation, arithmetic, xml    seed, n_train, n_valid, n_test — and the rules that task uses
                                     (memorise; max_digits, signed_operands, distractor_mean; xml_max_steps)
    timit, timit_sample              the MFCC fields (sample_rate, window, hop, …)
    iam_ondb                         subsample
    handwriting_synthetic            seed, writers (40:10:10), lines_per_writer, words_per_line, subsample
    the music sets                   none

A value is read as the default's type (an integer, a number, true/false, a string; a tuple as
colon-separated items, ``writers=20:5:5``), and the loader's own checks run on it (the settings
dataclass is built) before the study is written. ``study.json`` keeps only the options given
(``"task_options": {"n_train": 500}``); the others are the loader's defaults.
"""
from __future__ import annotations

import dataclasses
import functools
import inspect
import json

from ..checks import is_integer, is_real


def declared(task: str) -> dict[str, object]:
    """{option name: default value} of every option ``--task-option`` accepts for ``task`` (a registry
    name), in the loader's order (module docstring)."""
    from ..datasets import jzs
    from ..datasets.registry import TASKS
    spec = TASKS[task]
    parameters = inspect.signature(spec.loader).parameters
    out = {}
    for keyword in spec.options:
        default = parameters[keyword].default
        if not dataclasses.is_dataclass(default):
            out[keyword] = default
            continue
        names = [f.name for f in dataclasses.fields(default)]
        if isinstance(default, jzs.JzsSettings):        # the rules of the other two tasks do nothing here
            others = {name for t, fields in jzs.TASK_FIELDS.items() if t != task for name in fields}
            names = [name for name in names if name not in others]
        out.update({name: getattr(default, name) for name in names})
    return out


def describe(task: str) -> str:
    """One line: the options ``task`` takes, with their defaults."""
    options = declared(task)
    if not options:
        return f"task {task!r} takes no options"
    return f"task {task!r} takes: " + ", ".join(f"{name} (default {_text(value)})" for name, value in options.items())


def _text(value) -> str:
    if isinstance(value, tuple):
        return ":".join(map(str, value))
    return str(value).lower() if isinstance(value, bool) else str(value)


def _read(text: str, default):
    """The command-line ``text`` of an option as a value of its ``default``'s type."""
    if isinstance(default, tuple):
        parts = text.split(":")
        if len(parts) != len(default):
            raise ValueError(f"{len(default)} colon-separated items, like {_text(default)}")
        return tuple(_read(part, item) for part, item in zip(parts, default))
    if isinstance(default, bool):
        lowered = text.strip().lower()
        if lowered not in ("true", "false", "yes", "no", "on", "off", "1", "0"):
            raise ValueError("true or false")
        return lowered in ("true", "yes", "on", "1")
    if isinstance(default, int):
        try:
            return int(text)
        except ValueError:
            raise ValueError("an integer") from None
    if isinstance(default, float):
        try:
            return float(text)
        except ValueError:
            raise ValueError("a number") from None
    return text


def _typed(value, default) -> bool:
    """Whether ``value`` (given through the API) already has ``default``'s type."""
    if isinstance(default, tuple):
        return (isinstance(value, (tuple, list)) and len(value) == len(default)
                and all(_typed(v, d) for v, d in zip(value, default)))
    if isinstance(default, bool):
        return isinstance(value, bool)
    if isinstance(default, int):
        return is_integer(value)
    if isinstance(default, float):
        return is_real(value)
    return isinstance(value, type(default))


def _plain(value, default):
    """``value`` as the JSON value of ``default``'s type (1 → 1.0 for a number option; tuples as lists)."""
    if isinstance(default, tuple):
        return [_plain(v, d) for v, d in zip(value, default)]
    if isinstance(default, float):
        return float(value)
    if isinstance(default, int) and not isinstance(default, bool):
        return int(value)
    return value


def check(task: str, options) -> dict:
    """``options`` for ``task`` — a list of ``"NAME=VALUE"`` strings, or a dict {name: value or its
    text} — as the plain JSON dict ``study.json`` stores, sorted by name; a ``ValueError`` naming the
    option and listing the valid ones for an unknown name, and naming the value and the type wanted
    for a bad one; the loader's own checks run too (:func:`loader_options`)."""
    if options is None:
        return {}
    if isinstance(options, (list, tuple)):
        items = {}
        for item in options:
            name, sep, value = str(item).partition("=")
            if not sep or not name.strip():
                raise ValueError(f"task option {item!r}: write NAME=VALUE, e.g. n_train=500 ({describe(task)})")
            if name.strip() in items:
                raise ValueError(f"task option {name.strip()!r} is given twice")
            items[name.strip()] = value.strip()
        options = items
    if not isinstance(options, dict):
        raise ValueError(f"task_options={options!r}: give NAME=VALUE strings or a dict")
    known = declared(task)
    out = {}
    for name, value in options.items():
        if name not in known:
            raise ValueError(f"task option {name!r}: unknown for this task; {describe(task)}")
        default = known[name]
        if isinstance(value, str) and not isinstance(default, str):
            try:
                value = _read(value, default)
            except ValueError as err:
                raise ValueError(f"task option {name}={value!r}: give {err} (default {_text(default)})") from None
        elif not _typed(value, default):
            raise ValueError(f"task option {name}={value!r}: give a value of the type of its default "
                             f"{_text(default)}")
        out[name] = _plain(value, default)
    out = json.loads(json.dumps(dict(sorted(out.items()))))          # as study.json will read back
    loader_options(task, out)                                         # the loader's own checks
    return out


def loader_options(task: str, options: dict) -> dict:
    """The keyword options of ``datasets.load`` for ``options`` (as :func:`check` returns them): a
    dataclass option rebuilt from its default with the given fields (its checks run here), a plain
    option as given. Options not given are left out: the loader's defaults apply."""
    from ..datasets.registry import TASKS
    spec = TASKS[task]
    parameters = inspect.signature(spec.loader).parameters
    out = {}
    for keyword in spec.options:
        default = parameters[keyword].default
        if dataclasses.is_dataclass(default):
            fields = {f.name for f in dataclasses.fields(default)}
            given = {name: tuple(v) if isinstance(v, list) else v for name, v in options.items() if name in fields}
            if given:
                try:
                    out[keyword] = dataclasses.replace(default, **given)
                except (TypeError, ValueError) as err:
                    raise ValueError(f"task {task!r}, option(s) {given}: {err}") from None
        elif keyword in options:
            value = options[keyword]
            out[keyword] = tuple(value) if isinstance(value, list) else value
    return out


def load(task: str, dtype: str, root, options: dict):
    """The task's :class:`~lstm_scratch.datasets.TaskData` loaded with ``options`` (``{}``: exactly
    ``load_task(task, dtype, root)``, memoised there); memoised per process like ``load_task``."""
    from ..datasets import load_task
    if not options:
        return load_task(task, dtype, root)
    from ..datasets import store
    return _load(task, dtype, root, json.dumps(options, sort_keys=True), str(store.cache_dir()))


@functools.lru_cache(maxsize=4)
def _load(task: str, dtype: str, root, options_json: str, cache: str):
    from ..datasets.registry import SPLITS, TaskData
    from ..datasets.registry import load as load_split
    kwargs = loader_options(task, json.loads(options_json))
    return TaskData(*(load_split(task, split, root=root, dtype=dtype, **kwargs) for split in SPLITS))
