"""The worker process of the import sweeps (import_sweep.py, hf_sweep.py): one model at a time in a process of its
own, killed and started again when a model takes longer than the time limit, so that neither a hang nor a crash
stops a sweep. Each script gives `one(*job) -> dict` (the outcome of one model) and `label(job) -> dict` (the
fields that name the model in a result, for the crashed and timed-out ones); both are module-level functions, so
that the spawned process can import them."""

from __future__ import annotations

import multiprocessing as mp
import queue
import sys
import time
from collections.abc import Callable

from helpers.import_check import first_line  # the scripts put tests/ on sys.path before importing this


def _serve(one: Callable[..., dict], label: Callable[[tuple], dict], inbox, outbox) -> None:
    while True:
        job = inbox.get()
        if job is None:
            return
        start = time.monotonic()
        try:
            result = one(*job)
        except BaseException as error:  # never lose the worker's answer
            detail = f"{type(error).__name__}: {first_line(error)} (outside from_torch)"
            result = {**label(job), "outcome": "crashed", "detail": detail}
        result["seconds"] = round(time.monotonic() - start, 1)
        outbox.put(result)


class Worker:
    def __init__(self, one: Callable[..., dict], label: Callable[[tuple], dict]):
        self.label = label
        ctx = mp.get_context("spawn")
        self.inbox, self.outbox = ctx.Queue(), ctx.Queue()
        self.process = ctx.Process(target=_serve, args=(one, label, self.inbox, self.outbox), daemon=True)
        self.process.start()

    def run(self, job: tuple, timeout: float) -> dict:
        self.inbox.put(job)
        try:
            return self.outbox.get(timeout=timeout)
        except queue.Empty:
            self.process.kill()
            self.process.join()
            return {**self.label(job), "outcome": "timeout", "detail": f"over {timeout:.0f} s", "seconds": timeout}

    def close(self) -> None:
        if self.process.is_alive():
            self.inbox.put(None)
            self.process.join(10)


def run_all(jobs: list[tuple], one: Callable[..., dict], label: Callable[[tuple], dict], timeout: float) -> list[dict]:
    """The result of each job, in order; a line for each on standard error as it ends."""
    results, pool = [], Worker(one, label)
    for i, job in enumerate(jobs, 1):
        result = pool.run(job, timeout)
        if result["outcome"] == "timeout":
            pool = Worker(one, label)
        results.append(result)
        print(
            f"[{i}/{len(jobs)}] {':'.join(label(job).values())} {result['outcome']} {result['seconds']}s "
            f"{result.get('detail', '')[:150]}",
            file=sys.stderr,
            flush=True,
        )
    pool.close()
    return results
