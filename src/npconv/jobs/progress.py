"""What a run tells about its jobs while they train, and a display of it for the terminal.

A runner calls, in the client's main thread: ``begin(jobs)`` once; ``started(job, worker)`` when a
worker takes a job; ``epoch(job, epoch, epochs, logs)`` after each of its epochs; ``finished(job,
result)`` when its result is in (also for a result read from a cache, ``result.cached``); ``end()``
once, also after an error or Ctrl-C. An exception raised by any of them stops the run as Ctrl-C does.
"""

from __future__ import annotations


class Progress:
    """Does nothing: subclass it and override what you want to hear about."""

    def begin(self, jobs) -> None:
        pass

    def started(self, job, worker: dict) -> None:
        pass

    def epoch(self, job, epoch: int, epochs: int, logs: dict) -> None:
        pass

    def finished(self, job, result) -> None:
        pass

    def end(self) -> None:
        pass


class Bars(Progress):
    """tqdm bars: the overall count of finished jobs on the first line, then one bar per running job
    (its epochs, and the last epoch's loss and accuracy)."""

    def __init__(self, file=None):
        self.file = file
        self._overall = None
        self._bars: dict[str, tuple[object, int]] = {}  # job key -> (bar, its line)
        self._free_lines: list[int] = []

    def begin(self, jobs) -> None:
        from tqdm.auto import tqdm

        self._overall = tqdm(total=len(jobs), desc="jobs", unit="job", position=0, file=self.file, dynamic_ncols=True)

    def started(self, job, worker: dict) -> None:
        from tqdm.auto import tqdm

        line = self._free_lines.pop(0) if self._free_lines else len(self._bars) + 1
        where = f" ({worker.get('host')}:{worker.get('pid')})" if worker else ""
        self._bars[job.key] = (
            tqdm(
                total=getattr(job, "epochs", None),
                desc=job.title + where,
                unit="epoch",
                position=line,
                leave=False,
                file=self.file,
                dynamic_ncols=True,
            ),
            line,
        )

    def epoch(self, job, epoch: int, epochs: int, logs: dict) -> None:
        bar, _ = self._bars.get(job.key, (None, 0))
        if bar is not None:
            bar.update(epoch - bar.n)
            bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items() if k in ("loss", "accuracy")})

    def finished(self, job, result) -> None:
        bar, line = self._bars.pop(job.key, (None, 0))
        if bar is not None:
            self._free_lines.append(line)
            self._free_lines.sort()
            bar.close()
        self._overall.update(1)
        if getattr(result, "cached", False):
            self._overall.set_postfix_str("cached: " + job.title)

    def write(self, text: str) -> None:
        """Print a line above the bars without breaking them (each fold's result, say)."""
        from tqdm.auto import tqdm

        tqdm.write(text, file=self.file)

    def end(self) -> None:
        for bar, _ in self._bars.values():
            bar.close()
        self._bars.clear()
        if self._overall is not None:
            self._overall.close()
