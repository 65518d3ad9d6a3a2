"""bench/peers.py and bench/ab.py read figures right: wrk's report in any unit, with and without
errors; the goals against n8n; medians and new/old ratios per revision (a dict of numbers, as
load.py's CPU per process, counts as its sum)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.ab import summarize, value_at
from bench.peers import Failed, answered, parse_wrk, summary

WRK_CLEAN = """Running 10s test @ http://127.0.0.1:5678/webhook/bench
  1 threads and 1 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    22.45ms    3.21ms  50.00ms   90.00%
    Req/Sec    44.50      5.00    50.00     80.00%
  Latency Distribution
     50%  850.00us
     75%   24.10ms
     90%   26.00ms
     99%    1.82s
  445 requests in 10.01s, 100.00KB read
Requests/sec:     44.45
Transfer/sec:     10.00KB
"""

WRK_ERRORS = """Running 20s test @ http://127.0.0.1:8000/hooks/wh_x
  1 threads and 50 connections
  Latency Distribution
     50%    1.00s
     75%    1.10s
     90%    1.20s
     99%    1.30s
  984 requests in 20.07s, 300.00KB read
  Socket errors: connect 0, read 2, write 0, timeout 7
  Non-2xx or 3xx responses: 3
Requests/sec:     49.04
Transfer/sec:     15.00KB
"""


def test_wrk_figures_in_milliseconds_whatever_the_unit() -> None:
    got = parse_wrk(WRK_CLEAN)
    assert got["requests"] == 445 and got["requests_per_s"] == 44.45 and got["duration_s"] == 10.01
    assert (got["p50_ms"], got["p75_ms"], got["p99_ms"]) == (0.85, 24.1, 1820.0)
    assert got["errors"] == 0 and got["socket_errors"] == {"connect": 0, "read": 0, "write": 0, "timeout": 0}


def test_wrk_errors_are_non_2xx_answers_plus_socket_errors() -> None:
    got = parse_wrk(WRK_ERRORS)
    assert got["non_2xx"] == 3 and got["socket_errors"]["timeout"] == 7 and got["errors"] == 12
    assert got["p50_ms"] == 1000.0


def test_a_wrk_report_without_totals_is_refused() -> None:
    with pytest.raises(Failed, match="no totals"):
        parse_wrk("unable to connect to 127.0.0.1:1 Connection refused\n")


def test_both_answers_count_only_with_the_greeting() -> None:
    assert answered('{"text": "Hello bench!"}')
    assert answered('{"run_id": "r", "status": "succeeded", "outputs": {"text": "Hello bench!"}}')
    assert not answered('{"run_id": "r", "status": "running", "outputs": null}')
    assert not answered('{"run_id": "r", "status": "failed", "outputs": {"text": "Hello bench!"}}')
    assert not answered("Internal Server Error")


def line(system: str, clients: int, p50: float, p99: float, rate: float, errors: int = 0) -> dict[str, Any]:
    return {"system": system, "clients": clients, "p50_ms": p50, "p99_ms": p99, "requests_per_s": rate,
            "cpu_ms_per_request": 10.0, "errors": errors}


def test_the_goals_compare_medians_with_n8ns() -> None:
    lines = [line("n8n", 1, 20, 40, 50), line("n8n", 1, 24, 40, 40), line("n8n", 50, 900, 1800, 40),
             line("mantle-pg", 1, 9, 20, 100), line("mantle-pg", 1, 12, 20, 90),
             line("mantle-pg", 50, 100, 250, 130), line("mantle-pg", 50, 100, 290, 140),
             line("mantle-embedded", 1, 30, 50, 30), line("mantle-embedded", 50, 500, 2000, 60, errors=1)]
    got = summary(lines, rounds=2, start_load=1.0)
    assert got["medians"]["n8n"]["1"]["p50_ms"] == 22 and got["medians"]["mantle-pg"]["50"]["p99_ms"] == 270
    assert got["ratios_mantle_over_n8n"]["mantle-pg"]["50"]["requests_per_s"] == 3.375
    goals = {name: g["met"] for name, g in got["goals"].items()}
    assert goals["mantle-pg 1 client p50 <= 0.5x n8n's"]  # 10.5 / 22
    assert goals["mantle-pg 50 clients requests/s >= 3x n8n's"]
    assert goals["mantle-pg 50 clients p99 <= 300 ms"]
    assert not goals["mantle-embedded 1 client p50 <= n8n's"]
    assert goals["mantle-embedded 50 clients requests/s >= n8n's"]
    assert not goals["mantle-embedded 50 clients p99 <= n8n's"]
    assert not goals["mantle-embedded 50 clients errors <= n8n's"] and got["goals_met"] is False


def test_without_n8n_there_are_medians_but_no_ratios() -> None:
    got = summary([line("mantle-pg", 1, 9, 20, 100)], rounds=1, start_load=0.5)
    assert got["medians"]["mantle-pg"]["1"]["requests_per_s"] == 100 and "goals" not in got


def test_ab_medians_per_revision_and_the_ratio() -> None:
    def tagged(revision: str, cpu: dict[str, float], rate: float) -> dict[str, Any]:
        return {"bench": "api_load", "revision": revision, "cpu_ms_per_request": cpu,
                "saturation": {"requests_per_s": rate}}

    lines = [tagged("old", {"api": 10, "worker": 6}, 100), tagged("old", {"api": 12, "worker": 6}, 110),
             tagged("new", {"api": 5, "worker": 3}, 200), tagged("new", {"api": 7, "worker": 3}, 190)]
    assert value_at(lines[0], "saturation.requests_per_s") == 100 and value_at(lines[0], "nope.x") is None
    got = {g["field"]: g for g in summarize(lines, ["cpu_ms_per_request", "saturation.requests_per_s"],
                                            ["bench", "system"], {"old": "a" * 40, "new": "b" * 40})}
    cpu = got["cpu_ms_per_request"]
    assert cpu["old"]["median"] == 17 and cpu["new"]["median"] == 9
    assert got["cpu_ms_per_request"]["ratio_new_over_old"] == 0.529
    assert got["saturation.requests_per_s"]["ratio_new_over_old"] == 1.857
    assert got["cpu_ms_per_request"]["group"] == {"bench": "api_load"}
