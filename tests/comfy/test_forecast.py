"""When a RunPod job is asked about: the forecast of its end (a FIFO queue in front of the endpoint's
workers) and the poll rule (never two requests for one job within a second)."""

from __future__ import annotations

import pytest

from sceneforge.comfy.endpoints.forecast import MIN_GAP, Forecast, next_poll

IMG = "KSampler|SaveImage"


def finished(fc: Forecast, job_id: str, submitted: float, started: float, work: float) -> None:
    fc.submitted(job_id, IMG, submitted)
    fc.started(job_id, started)
    fc.finished(job_id, queue_s=started - submitted, work_s=work)


def test_nothing_known_no_forecast():
    fc = Forecast()
    fc.submitted("a", IMG, 0.0)
    assert fc.end("a", 0.0) is None  # no run time yet
    finished(fc, "x", 0.0, 0.0, 1.0)  # one worker, busy with "x" until 1.0: "a" runs after it
    assert fc.workers() == 1 and fc.end("a", 0.0) == pytest.approx(2.0)
    assert Forecast().end("never-submitted", 0.0) is None


def test_queued_jobs_take_the_worker_that_frees_first_oldest_first():
    fc = Forecast()
    fc.ready(2, at=0.0)  # /health: two workers
    finished(fc, "warm", 8.0, 8.5, 1.0)  # one worker's last job ended at 9.5
    for jid in "abcd":
        fc.submitted(jid, IMG, 10.0)
    # a and b start at once (one worker idle since 9.5, the other never seen busy), c and d when they end.
    assert [fc.end(j, 10.0) for j in "abcd"] == pytest.approx([11.0, 11.0, 12.0, 12.0])
    fc.started("a", 10.4)  # a /status said IN_PROGRESS with a delayTime: a ends later, and so does c
    assert fc.end("a", 10.5) == pytest.approx(11.4)
    assert [fc.end(j, 10.5) for j in "bcd"] == pytest.approx([11.0, 12.0, 12.4])
    # A job known to run past its expected end holds its worker until now at least: d waits for a's.
    assert [fc.end(j, 11.9) for j in "cd"] == pytest.approx([12.0, 12.9])


def test_a_worker_is_busy_until_its_last_job_ended_even_once_that_job_is_forgotten():
    fc = Forecast()
    fc.ready(1, at=0.0)
    finished(fc, "prev", 0.0, 0.0, 1.0)
    fc.submitted("next", IMG, 0.5)  # submitted while "prev" still ran: it starts when "prev" ends, at 1.0
    assert fc.end("next", 1.2) == pytest.approx(2.0)


def test_workers_from_overlap_without_health_and_a_back_to_back_job_is_the_same_worker():
    fc = Forecast()
    finished(fc, "a", 0.0, 0.0, 1.0)
    finished(fc, "b", 0.0, 0.98, 1.0)  # seen starting 20 ms before "a" ended: the same worker, a little skew
    assert fc.workers() == 1
    finished(fc, "c", 0.0, 0.5, 1.0)  # really alongside
    assert fc.workers() == 2
    fc.ready(8, at=0.0)
    assert fc.workers() == 8  # the endpoint's own count, when it says more


def test_run_time_per_workflow_kind_and_an_unknown_kind_is_the_longest():
    fc = Forecast()
    finished(fc, "img", 0.0, 0.0, 2.0)
    fc.submitted("clip", "WanImageToVideo|SaveImage", 0.0)
    fc.submitted("x", "", 0.0)
    assert fc.work(IMG) == 2.0 and fc.work("") == 2.0 and fc.work("WanImageToVideo|SaveImage") == 2.0
    fc.finished("clip", queue_s=0.0, work_s=60.0)
    assert fc.work("WanImageToVideo|SaveImage") == 60.0 and fc.work("") == 60.0
    finished(fc, "img2", 0.0, 0.0, 4.0)
    assert fc.work(IMG) == pytest.approx(0.7 * 2.0 + 0.3 * 4.0)  # a moving average


def test_health_is_asked_again_while_jobs_run():
    fc = Forecast()
    assert not fc.stale(0.0)  # nothing in flight: nothing to ask
    fc.submitted("a", IMG, 0.0)
    assert fc.stale(0.0)
    fc.ready(4, at=1.0)
    assert not fc.stale(5.0) and fc.stale(11.5)
    fc.finished("a", queue_s=None, work_s=None)  # given up: forgotten, nothing learnt
    assert not fc.stale(20.0) and fc.work(IMG) is None


def test_next_poll_never_within_a_second_of_the_last():
    # Nothing forecast: a second after submission, then once a second, every two once queued 10 s.
    assert next_poll(now=0.0, submitted=0.0, last=None, end=None, work=None, running=False) == 1.0
    assert next_poll(now=1.02, submitted=0.0, last=1.02, end=None, work=None, running=False) == pytest.approx(2.02)
    assert next_poll(now=12.0, submitted=0.0, last=12.0, end=None, work=None, running=False) == 14.0
    assert next_poll(now=12.0, submitted=0.0, last=12.0, end=None, work=None, running=True) == 13.0
    # Forecast: just after the expected end (5 % of the run time + 20 ms) ...
    assert next_poll(now=0.0, submitted=0.0, last=None, end=0.5, work=0.5, running=False) == pytest.approx(0.545)
    # ... but never within a second of the previous poll ...
    at = next_poll(now=0.6, submitted=0.0, last=0.55, end=0.7, work=0.5, running=True)
    assert at == pytest.approx(0.55 + MIN_GAP)
    # ... a job thought queued is asked at least every 5 s (workers may have been added) ...
    assert next_poll(now=1.0, submitted=0.0, last=None, end=40.0, work=20.0, running=False) == 5.0
    # ... and a long clip that runs, near its end rather than every second (at least every 30 s).
    assert next_poll(now=3.0, submitted=0.0, last=3.0, end=23.0, work=20.0, running=True) == pytest.approx(24.02)
    assert next_poll(now=3.0, submitted=0.0, last=3.0, end=93.0, work=90.0, running=True) == 33.0
    # A poll overdue is made now.
    assert next_poll(now=9.0, submitted=0.0, last=2.0, end=3.0, work=1.0, running=True) == 9.0


def test_a_job_behind_the_workers_waits_for_a_forecast_rather_than_asking_early():
    fc = Forecast()
    fc.ready(2, at=0.0)
    for jid in "abc":
        fc.submitted(jid, IMG, 0.0)
    assert [fc.behind(j, 0.0) for j in "abc"] == [False, False, True]  # two workers: c runs after a or b
    assert all(fc.revisable(j) for j in "abc")  # queued, and the others may teach something
    # No run time known yet: a and b are asked after a second, c (behind) after two ...
    assert next_poll(now=0.0, submitted=0.0, last=None, end=None, work=None, running=False) == 1.0
    assert next_poll(now=0.0, submitted=0.0, last=None, end=None, work=None, running=False, behind=True) == 2.0
    # ... and once a finished job teaches the run time (0.5 s), c has a forecast: it starts at 0.5, ends at 1.0.
    fc.started("a", 0.0)
    fc.finished("a", queue_s=0.0, work_s=0.5)
    assert not fc.behind("c", 0.6) and fc.end("c", 0.6) == pytest.approx(1.0)
    fc.started("c", 0.5)
    assert not fc.revisable("c")  # known to run: its end is known
    fc.finished("b", queue_s=None, work_s=None)
    fc.finished("c", queue_s=None, work_s=None)
    fc.submitted("alone", IMG, 2.0)
    assert not fc.revisable("alone")  # nothing else in flight can change its forecast


def test_a_hostile_worker_count_costs_nothing():
    fc = Forecast()
    fc.ready(10**12, at=0.0)  # a /health that claims a trillion workers: no list of a trillion slots
    finished(fc, "warm", 0.0, 0.0, 1.0)
    for jid in "abc":
        fc.submitted(jid, IMG, 2.0)
    assert [fc.end(j, 2.0) for j in "abc"] == pytest.approx([3.0, 3.0, 3.0])
    assert not fc.behind("c", 2.0)


def test_a_health_that_fails_is_asked_again_only_when_stale_again():
    fc = Forecast()
    fc.submitted("a", IMG, 0.0)
    assert fc.stale(0.0)
    fc.asked(0.0)  # and no answer came (404, a bad body)
    assert not fc.stale(0.3) and not fc.stale(9.0) and fc.stale(10.5)
