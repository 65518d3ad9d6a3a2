"""Sign-in attempts counted per account and per client address, in the database.

Every password attempt (sign-in, or accepting an invitation for an existing account) is counted
before the password is checked, by one atomic upsert per counter, so the limit holds across API
processes and concurrent requests: the attempt past the limit is refused without any hashing. A
counter is named by a digest of what it counts (`account:<email>`, `address:<ip>`), so the table
never holds an email or an address in clear. A successful sign-in clears its account's counter.

Counts are kept per fixed window (models/shares.py's `Limit`), but the limit is checked over a
sliding one: the current window's count plus the previous window's, weighted by how much of it
the sliding window still covers (the estimate Cloudflare's rate limiter uses). With fixed windows
alone, attempts just before and just after a window's end were counted apart: twice the limit in a
moment. Two rows per counter at most, one upsert and one read per attempt.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import String, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Mapped, Session, mapped_column

from models.base import Base
from models.shares import Limit


class SignInAttempt(Base):
    """How many attempts one account or one address made in one window."""

    __tablename__ = "sign_in_attempts"

    scope: Mapped[str] = mapped_column(String(64), primary_key=True)
    window_start: Mapped[int] = mapped_column(primary_key=True)
    count: Mapped[int] = mapped_column(default=0)


def scope(kind: str, value: str) -> str:
    """The counter's name for an account (`kind="account"`) or an address."""
    return hashlib.sha256(f"{kind}:{value}".encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True, slots=True)
class Refusal:
    """A limit an attempt went over, and in how many seconds an attempt would be let in again
    (if none is made meanwhile)."""

    limit: Limit
    retry_after_s: int


def count_attempt(session: Session, *, scopes: list[tuple[str, Limit]], now: datetime) -> Refusal | None:
    """Count one attempt against each (counter, limit); the first limit it goes over, or None."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    refused = None
    for name, limit in scopes:
        window = limit.window(now)
        stmt = insert(SignInAttempt).values(scope=name, window_start=window, count=1).on_conflict_do_update(
            index_elements=["scope", "window_start"], set_={"count": SignInAttempt.count + 1},
        ).returning(SignInAttempt.count)
        count = session.execute(stmt).scalar_one()
        previous = session.scalar(select(SignInAttempt.count).where(
            SignInAttempt.scope == name, SignInAttempt.window_start == window - limit.window_s)) or 0
        if count == 1:  # a new window: only the one before it still counts
            session.execute(delete(SignInAttempt).where(SignInAttempt.scope == name,
                                                        SignInAttempt.window_start < window - limit.window_s))
        elapsed = now.timestamp() - window
        if estimate(count, previous, elapsed, limit.window_s) > limit.maximum and refused is None:
            refused = Refusal(limit, retry_after(count, previous, elapsed, limit))
    return refused


def estimate(count: int, previous: int, elapsed_s: float, window_s: int) -> float:
    """The attempts in the sliding window that ends now: this window's `count` (`elapsed_s` into it)
    and the share of the previous window's that it still covers."""
    return count + previous * max(0.0, 1 - elapsed_s / window_s)


def retry_after(count: int, previous: int, elapsed_s: float, limit: Limit) -> int:
    """Seconds until one more attempt would be within the limit, if none is made meanwhile."""
    w, room = limit.window_s, limit.maximum - 1  # what the others may add up to, with the next one
    if count <= room and previous:  # later in this window, once enough of the previous one slid out
        # count + previous * (1 - t / w) <= room  <=>  t >= w * (1 - (room - count) / previous)
        wait = w * (1 - (room - count) / previous) - elapsed_s
    else:  # in the next window, where this one is the previous: previous * (1 - t / w) <= room
        wait = (w - elapsed_s) + w * max(0.0, 1 - room / count)
    return max(1, math.ceil(wait))


def clear(session: Session, *, name: str) -> None:
    """Forget a counter (an account that just signed in)."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.scope == name))
