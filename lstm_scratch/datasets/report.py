"""Text for ``lstm-odyssey data list | info TASK | fetch TASK``."""
from __future__ import annotations

import os
import time

from . import registry, store


def task_table() -> str:
    rows = [("task", "loss", "n_in", "published train/valid/test", "status")]
    for name, spec in registry.TASKS.items():
        rows.append((name, spec.loss, str(spec.n_in), "/".join(map(str, spec.sizes)), registry.availability(name)))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    lines += ["", "alias: handwriting = iam_ondb when $LSTM_SCRATCH_IAM_ONDB is set, else handwriting_synthetic",
              f"cache: {store.cache_dir()}   mirror: {store.mirror() or '(none: canonical URLs)'}"]
    return "\n".join(lines)


def split_table(splits) -> str:
    """Markdown table of split sizes: sequences, frames (input steps) and target symbols."""
    lines = ["| split | sequences | frames | mean length | target symbols |", "|---|---:|---:|---:|---:|"]
    for s in splits:
        lines.append(f"| {s.name} | {len(s)} | {s.n_frames} | {s.n_frames / len(s):.1f} | {s.n_target_labels} |")
    return "\n".join(lines)


def info_text(task: str, root=None, fetch: bool = False) -> str:
    name = registry.resolve(task, root)
    spec = registry.TASKS[name]
    lines = [f"{name}: {spec.title}", f"  loss {spec.loss}, metric {spec.metric}, n_in {spec.n_in}, "
             f"published sizes {'/'.join(map(str, spec.sizes))}"]
    for group_name in spec.groups:
        group = store.group(group_name)
        size = sum(e["size"] for e in group["files"])
        lines.append(f"  files: {group['title']} — {len(group['files'])} file(s), {size / 1e6:.2f} MB")
        lines.append(f"  licence: {group['licence']}")
    if spec.synthetic:
        lines.append("  SYNTHETIC data: a stand-in, not comparable with published IAM-OnDB results")
    ready = (fetch or spec.access == "generated"
             or (spec.access == "fetch" and all(store.group_is_cached(g) for g in spec.groups))
             or (spec.access == "licensed" and (root or os.environ.get(spec.env))))
    if not ready:
        command = f"lstm-odyssey data fetch {name}" + (" --root DIR" if spec.access == "licensed" else "")
        lines.append(f"  status: {registry.availability(name)} — run '{command}'")
        return "\n".join(lines)
    if fetch:
        for group_name in spec.groups:
            store.fetch_group(group_name)
    splits = []
    for split in registry.SPLITS:
        start = time.perf_counter()
        splits.append(registry.load(name, split, root=root))
        lines.append(f"  {splits[-1].summary()}  [{time.perf_counter() - start:.2f} s]")
    lines += ["", split_table(splits)]
    return "\n".join(lines)
