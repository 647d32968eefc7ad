"""Run tasks in a pool of spawned worker processes, with one progress bar fed by the workers.

Used by `metabrain dataset generate` and `metabrain evaluate-directors`. Workers report progress on
a plain multiprocessing queue handed to them at start (no Manager process that could outlive a
killed parent), and die with the parent (sidecar/orphans.py).
"""

from __future__ import annotations

import multiprocessing as mp
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tqdm import tqdm

from sidecar.orphans import die_with_parent

T = TypeVar("T")
R = TypeVar("R")

_progress: Any = None  # in a worker: the queue its progress goes to


def report(units: int = 1) -> None:
    """Called in a worker: `units` more of the total are done."""
    _progress.put(units)


def _init(queue: Any) -> None:
    global _progress
    die_with_parent()
    _progress = queue


def run_pool(fn: Callable[[T], R], tasks: Sequence[T], workers: int, total: int, desc: str, unit: str) -> list[R]:
    """fn(task) in `workers` spawned processes (fn calls report() as it goes); results in task order."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with ctx.Pool(workers, initializer=_init, initargs=(queue,)) as pool:
        pending = pool.map_async(fn, tasks)
        with tqdm(total=total, desc=desc, unit=unit) as bar:
            done = 0
            while done < total:
                n = queue.get()
                done += n
                bar.update(n)
        return pending.get()
