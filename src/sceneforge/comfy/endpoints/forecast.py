"""When to ask a serverless endpoint about a job: a forecast of its end from what this client saw there.

An endpoint is a FIFO queue in front of some workers. This client knows, for each of its jobs in flight,
when it submitted it and (once a ``/status`` answer said ``IN_PROGRESS``, with its ``delayTime``) when a
worker took it; from finished jobs it knows how long each kind of workflow runs and how many workers ran
its jobs at once. :meth:`Forecast.end` replays the queue: jobs known to run end after their expected
execution time, then the jobs still queued, oldest first, each take the worker that frees first. The
result is when a job should be done, so ``/status`` is asked then, not at a fixed rhythm: a short job is
noticed a few tens of milliseconds after it ends, a queued job is not asked about while the jobs ahead
of it still run, and the queue is refilled as soon as a worker frees.

Everything here is a guess that only decides *when* to ask; the answer decides the rest. A guess that is
early costs one ``/status`` answered "still working" (and the next may come only a second later: see
:func:`next_poll`); other clients of the endpoint, or workers added by its autoscaler, only make it
wrong, never unsafe. Pure: times are the caller's clock (``time.monotonic`` seconds).
"""

from __future__ import annotations

import heapq
from collections import deque
from dataclasses import dataclass

__all__ = ["Forecast", "next_poll", "MIN_GAP", "RECHECK", "SLACK"]

#: Never two ``/status`` requests for one job within this many seconds.
MIN_GAP = 1.0
#: A poll comes this long after the expected end: 5 % of the execution time plus 20 ms (jitter).
SLACK = (0.05, 0.02)
#: The longest wait between two polls of a job thought queued (an autoscaler may add workers),
#: and of a job known to run.
QUEUED_CAP, RUNNING_CAP = 5.0, 30.0
#: Finished jobs whose spans estimate the number of workers, and how much of each end of a span is left
#: out (so that a worker's next job, seen starting a little early, does not count as a second worker).
SPANS, TRIM = 64, 0.05
#: Seconds after which the endpoint's own count of workers (its ``/health``) is asked again.
READY_STALE = 10.0
#: How often a queued job's forecast is worked out again while other jobs in flight may teach something
#: (a job ahead ends, a first run time is learnt): no request, only arithmetic.
RECHECK = 0.25
#: A replay of the queue is reused for this long while nothing new was seen (each job in flight asks).
REUSE = 0.05


@dataclass
class _Job:
    kind: str
    submitted: float
    started: float | None = None


class Forecast:
    """This client's view of one endpoint: its jobs in flight, its workers, each workflow kind's run time."""

    def __init__(self) -> None:
        self._jobs: dict[str, _Job] = {}  # in submission order
        self._work: dict[str, float] = {}  # kind -> recent execution seconds (a moving average)
        self._spans: deque[tuple[float, float]] = deque(maxlen=SPANS)  # (start, end) of finished jobs
        self._ready: tuple[int, float] | None = None  # workers idle or running per /health, and when
        self._asked: float | None = None  # when /health was last asked for them (answered or not)
        self._seen = 0  # bumped by everything seen: a replay of the queue is reused until it changes
        self._replayed: tuple[int, float, dict[str, tuple[float | None, bool]]] | None = None

    def submitted(self, job_id: str, kind: str, at: float) -> None:
        self._jobs[job_id] = _Job(kind, at)
        self._seen += 1

    def started(self, job_id: str, at: float) -> None:
        job = self._jobs.get(job_id)
        if job is not None and job.started is None:
            job.started = at
            self._seen += 1

    def finished(self, job_id: str, *, queue_s: float | None, work_s: float | None) -> None:
        """The job ended (``queue_s`` / ``work_s`` from the endpoint when it gave them) or was given up."""
        job = self._jobs.pop(job_id, None)
        self._seen += 1
        if job is None or work_s is None:
            return
        start = job.started if job.started is not None else job.submitted + (queue_s or 0.0)
        self._spans.append((start, start + work_s))
        known = self._work.get(job.kind)
        self._work[job.kind] = work_s if known is None else 0.7 * known + 0.3 * work_s

    def ready(self, workers: int, at: float) -> None:
        """The endpoint's ``/health`` counted ``workers`` idle or running at ``at``."""
        self._ready = (max(0, workers), at)
        self._seen += 1

    def asked(self, at: float) -> None:
        """``/health`` is being asked for the count of workers (a failed answer waits as long as a good one)."""
        self._asked = at

    def stale(self, now: float) -> bool:
        """Jobs are in flight and the endpoint's count of workers is missing or old, and was not asked for
        lately: ask ``/health``."""
        times = [t for t in (self._asked, self._ready[1] if self._ready is not None else None) if t is not None]
        return bool(self._jobs) and (not times or now - max(times) > READY_STALE)

    def workers(self) -> int:
        """How many jobs run at once: the endpoint's count, or the most of this client's jobs seen running
        at once (recent finished jobs, and those running now), whichever is more."""
        edges = []
        for start, end in self._spans:
            trim = min(TRIM, (end - start) / 4)
            edges += [(start + trim, 1), (end - trim, -1)]
        best = run = 0
        for _, step in sorted(edges):
            run += step
            best = max(best, run)
        running = sum(1 for j in self._jobs.values() if j.started is not None)
        return max(best, running, self._ready[0] if self._ready is not None else 0)

    def kind(self, job_id: str) -> str:
        job = self._jobs.get(job_id)
        return job.kind if job is not None else ""

    def behind(self, job_id: str, now: float) -> bool:
        """At least as many of this client's jobs as there are workers were submitted before this one and
        are not known finished: it cannot run before one of them ends."""
        return self._replay(now).get(job_id, (None, False))[1]

    def revisable(self, job_id: str) -> bool:
        """The job is not known to run and other jobs in flight may yet change its forecast."""
        job = self._jobs.get(job_id)
        return job is not None and job.started is None and len(self._jobs) > 1

    def work(self, kind: str) -> float | None:
        """Expected execution seconds of a kind (an unknown kind: the longest known, a cautious guess)."""
        return self._work.get(kind, max(self._work.values(), default=None))

    def end(self, job_id: str, now: float) -> float | None:
        """When ``job_id`` should be done, or ``None`` when nothing seen yet says (no run time, no workers)."""
        job = self._jobs.get(job_id)
        if job is None or (work := self.work(job.kind)) is None:
            return None
        if job.started is not None:
            return job.started + work
        return self._replay(now).get(job_id, (None, False))[0]

    def _replay(self, now: float) -> dict[str, tuple[float | None, bool]]:
        """Every queued job's forecast end and whether it is behind the workers, in one pass (reused while
        nothing new was seen, for :data:`REUSE` s: every job in flight asks, each a few times a second)."""
        memo = self._replayed
        if memo is not None and memo[0] == self._seen and 0.0 <= now - memo[1] < REUSE:
            return memo[2]
        workers = self.workers()
        slots = min(workers, len(self._jobs))  # more workers than jobs in flight change nothing
        out: dict[str, tuple[float | None, bool]] = {}
        # Each worker is free from the end of its last job: the latest ends, of jobs known to run (by now at
        # the earliest) and of jobs finished, stand for the workers' last jobs.
        ends = [max(now, j.started + (self.work(j.kind) or 0.0)) for j in self._jobs.values() if j.started is not None]
        ends += [end for _, end in self._spans]
        free = heapq.nlargest(slots, ends)
        free += [float("-inf")] * (slots - len(free))
        heapq.heapify(free)
        for ahead, (jid, queued) in enumerate(self._jobs.items()):
            if queued.started is not None:
                continue
            work = self.work(queued.kind)
            if not free or work is None:
                out[jid] = (None, workers > 0 and ahead >= workers)
                continue
            done = max(queued.submitted, heapq.heappop(free)) + work
            heapq.heappush(free, done)
            out[jid] = (done, ahead >= workers)
        self._replayed = (self._seen, now, out)
        return out


def next_poll(*, now: float, submitted: float, last: float | None, end: float | None, work: float | None,
              running: bool, behind: bool = False) -> float:
    """The clock time of a job's next ``/status``: just after its forecast ``end``, never within
    :data:`MIN_GAP` of the ``last`` one, at least every :data:`QUEUED_CAP` s while it is thought queued;
    without a forecast once a second, or every two seconds for a job ``behind`` the endpoint's workers
    (a forecast comes sooner) or once it has waited 10 s for a worker (a cold start)."""
    floor = now if last is None else max(now, last + MIN_GAP)
    if end is None or work is None:
        gap = 2.0 if not running and (behind or now - submitted > 10.0) else MIN_GAP
        return max(floor, (last if last is not None else submitted) + gap)
    target = end + work * SLACK[0] + SLACK[1]
    cap = (RUNNING_CAP if running else QUEUED_CAP) + (last if last is not None else submitted)
    return max(floor, min(target, cap))
