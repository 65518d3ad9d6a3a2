"""Sign-in attempts counted per account and per client address, in the database.

Every password attempt (sign-in, or accepting an invitation for an existing account) is counted
before the password is checked, by one atomic upsert per counter, so the limit holds across API
processes and concurrent requests: the attempt past the limit is refused without any hashing. A
counter is named by a digest of what it counts (`account:<email>`, `address:<ip>`), so the table
never holds an email or an address in clear, and it counts in fixed windows (models/shares.py's
`Limit`). A successful sign-in clears its account's counter; an address's counter runs out with
its window.
"""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy import String, delete
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


def count_attempt(session: Session, *, scopes: list[tuple[str, Limit]], now: datetime) -> Limit | None:
    """Count one attempt against each (counter, limit); the first limit it goes over, or None."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    exceeded = None
    for name, limit in scopes:
        window = limit.window(now)
        stmt = insert(SignInAttempt).values(scope=name, window_start=window, count=1).on_conflict_do_update(
            index_elements=["scope", "window_start"], set_={"count": SignInAttempt.count + 1},
        ).returning(SignInAttempt.count)
        count = session.execute(stmt).scalar_one()
        if count == 1:  # a new window: the counter's older windows are spent
            session.execute(delete(SignInAttempt).where(SignInAttempt.scope == name,
                                                        SignInAttempt.window_start < window))
        if count > limit.maximum and exceeded is None:
            exceeded = limit
    return exceeded


def clear(session: Session, *, name: str) -> None:
    """Forget a counter (an account that just signed in)."""
    session.execute(delete(SignInAttempt).where(SignInAttempt.scope == name))
