"""bench/load.py's paced clients: no request starts once the phase is over (a pause cut short by
the end used to send one from every client at the same instant, a burst that made the p99)."""

from __future__ import annotations

import asyncio
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.load import Recorder, Workload, client_loop


class Clock(Recorder):
    """Answers at once and notes when each request started."""

    def __init__(self) -> None:
        super().__init__(session=None)  # type: ignore[arg-type]
        self.started: list[float] = []

    async def call(self, route: str, method: str, url: str, **options: Any) -> Any:
        self.started.append(time.monotonic())
        return {"id": "run"}


class Work(Workload):
    def __init__(self) -> None:  # no cluster: the clients only need ids and a form
        self.app_id, self.path, self.run_ids = "app", "/twilio/sms/route", ["run"]

    def sms_form(self, phone: str, body: str) -> tuple[dict[str, str], dict[str, str]]:
        return {"From": phone, "Body": body}, {}


def test_paced_clients_send_nothing_after_the_end_of_the_phase() -> None:
    clock, work = Clock(), Work()

    async def phase() -> float:
        stop = time.monotonic() + 0.5
        await asyncio.gather(*(client_loop(n, clock, work, stop, rate=10) for n in range(40)))
        return stop

    # A loop of its own, in a thread: a browser test's sync client may hold this thread's loop.
    with ThreadPoolExecutor(1) as pool:
        stop = pool.submit(asyncio.run, phase()).result(timeout=30)

    assert clock.started, "the clients sent nothing"
    late = [t for t in clock.started if t >= stop]
    assert not late, f"{len(late)} requests started after the phase ended"
    # Paced at about 10 requests/s each for half a second: no client fires in a burst.
    assert len(clock.started) < 40 * 10 * 0.5 * 1.6, len(clock.started)
