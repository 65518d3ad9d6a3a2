"""Fault injection and load on real processes (bench/chaos.py and bench/load.py, small scale).

Run workers SIGKILLed while texts arrive, Redis restarted empty and PostgreSQL crashed in the
middle of runs, review decisions sent twice while no worker runs, and a few seconds of mixed
load: every run ends, exactly once, and nothing a user sent is lost or answered twice.
"""

from __future__ import annotations

from bench.chaos_outages import postgres_restart, redis_restart
from bench.chaos_reviews import review_races
from bench.chaos_sms import worker_kills
from bench.load import measure
from tests.chaos.conftest import Chaos


def test_every_text_gets_exactly_one_reply_while_workers_are_killed(chaos: Chaos) -> None:
    counts = worker_kills(chaos.cluster, runs=16, rate=4, kill_every=1.5, timeout=150)

    report = counts.report()
    assert counts.details["kills"] >= 2, report  # the faults really happened during the texts
    assert counts.details["webhook_not_200"] == 0 and counts.details["texts_without_run"] == 0, report
    assert counts.succeeded == counts.runs == 16, report
    assert counts.lost == 0, report
    assert counts.details["phones_with_extra_replies"] == 0, report  # one SMS per inbound message
    assert counts.duplicates == 0, report  # and no node's completion recorded twice
    assert all(w.alive for w in chaos.cluster.workers)
    # Workers of one process run their tasks in the solo pool: killed mid-task, it is the task's
    # own process that dies, and the runs are still each finished once (above).
    for worker in chaos.cluster.workers:
        assert "(solo pool, concurrency 1)" in worker.log_file.read_text(errors="replace")


def test_runs_survive_a_redis_restart_that_loses_every_message(chaos: Chaos) -> None:
    counts = redis_restart(chaos.cluster, chaos.redis.start, chaos.redis.stop, runs=12, timeout=90)

    report = counts.report()
    assert counts.details["refused"] == {}, report  # the API accepted runs while the broker was down
    assert counts.details["created_while_down"] == 4, report
    assert counts.details["created_while_down_not_succeeded"] == 0, report  # picked up once it was back
    assert counts.succeeded == counts.runs == 12 and counts.lost == 0 and counts.duplicates == 0, report
    assert all(w.alive for w in chaos.cluster.workers), "a worker died with the broker"


def test_the_api_answers_503_while_postgres_is_down_and_nothing_is_half_written(chaos: Chaos) -> None:
    counts = postgres_restart(chaos.cluster, chaos.postgres.stop, chaos.postgres.start, runs=15,
                              down_s=1.5, timeout=90)

    report = counts.report()
    while_down = counts.details["while_down"]
    assert while_down and all(key.endswith(" 503") for key in while_down), report  # never a 500
    assert "the database is unavailable; try again shortly" in counts.details["while_down_messages"], report
    assert counts.details["answers"].get("503", 0) > 0, report  # some run requests hit the outage
    assert set(counts.details["answers"]) <= {"200", "202", "503"}, report
    assert counts.details["half_written"] == 0, report
    # Retried with the same Idempotency-Key: one run per key, each ended succeeded.
    assert counts.succeeded == counts.runs == 15 and counts.lost == 0 and counts.duplicates == 0, report
    assert chaos.cluster.client().get("/readyz").status_code == 200


def test_a_double_decision_while_workers_are_down_resumes_each_run_once(chaos: Chaos) -> None:
    counts = review_races(chaos.cluster, runs=6, timeout=90)

    report = counts.report()
    assert counts.details["decision_answers"] == {"200+409": 6}, report  # one wins, the copy is refused
    assert counts.details["waiting_while_workers_down"] == 6, report
    assert counts.details["decisions_recorded"] == 6, report
    assert counts.details["wrong_outputs"] == 0, report  # each run ended with the decided text
    assert counts.succeeded == counts.runs == 6 and counts.lost == 0 and counts.duplicates == 0, report


def test_mixed_load_with_sse_subscribers_and_sms_webhooks_has_no_errors(chaos: Chaos) -> None:
    figures = measure(chaos.cluster, clients=12, seconds=4, warmup=1)

    assert figures["errors"] == 0, figures["error_kinds"]
    assert {"POST /v1/apps/{app_id}/runs", "GET /v1/runs/{run_id}", "GET /v1/apps",
            "GET /v1/runs/{run_id}/events", "POST /twilio/sms/{target}"} <= set(figures["routes"]), figures
    assert figures["requests"] > 0 and all(v > 0 for v in figures["rss_mib_after"].values()), figures
