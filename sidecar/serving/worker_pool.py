"""Run tasks in a pool of spawned worker processes, with one progress bar fed by the workers.

Used by `metabrain dataset generate`, `dataset build` and `evaluate-directors`. Workers report
progress on a plain multiprocessing queue handed to them at start (no Manager process that could
outlive a killed parent), and die with the parent (sidecar/operations/orphans.py).
"""

from __future__ import annotations

import contextlib
import multiprocessing as mp
from collections.abc import Callable, Sequence
from queue import Empty
from typing import Any, TypeVar

from tqdm import tqdm

from sidecar.operations.orphans import die_with_parent

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
    """fn(task) in `workers` spawned processes (fn calls report() as it goes); results in task order.

    A task that raises stops the pool and re-raises here (the progress it never reported is not
    waited for)."""
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    with ctx.Pool(workers, initializer=_init, initargs=(queue,)) as pool:
        pending = pool.map_async(fn, tasks)
        with tqdm(total=total, desc=desc, unit=unit) as bar:
            while not pending.ready():
                with contextlib.suppress(Empty):
                    bar.update(queue.get(timeout=0.2))
            with contextlib.suppress(Empty):  # reports still in flight when the last task returned
                while pending.successful() and bar.n < total:
                    bar.update(queue.get(timeout=1.0))
        return pending.get()
