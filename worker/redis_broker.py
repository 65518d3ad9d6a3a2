"""The Redis broker: kombu's Redis transport, surviving a broker that restarts under load.

When Redis goes away while a worker holds unacknowledged messages, Celery closes the broken
connection and kombu detaches the channel's transport from it; but kombu still uses that
channel afterwards (to put the unacknowledged messages back in Redis, to acknowledge a task
that finished meanwhile) and fails with `AttributeError: 'NoneType' object has no attribute
'hostname'` (or `'client'`). Celery calls that an unrecoverable error and the worker exits:
every busy worker died when Redis restarted (the same failure as celery/kombu#582, there on
closing the gossip channel).

Here a detached channel raises Redis's `ConnectionError` instead, which kombu and Celery
treat as the connection loss it is: the acknowledgement or restore is logged and dropped, and
the worker reconnects. Nothing is lost: the database, not the broker, is the record of runs,
and the run reaper re-sends every run that has been quiet too long.
"""

from __future__ import annotations

from typing import Any

from kombu.transport import TRANSPORT_ALIASES, redis
from redis.exceptions import ConnectionError as RedisConnectionError


class Channel(redis.Channel):
    """A Redis channel that reports a detached transport as a lost connection."""

    def _connparams(self, asynchronous: bool = False) -> Any:
        if self.connection is None or self.connection.client is None:
            raise RedisConnectionError("the broker connection was closed")
        return super()._connparams(asynchronous=asynchronous)


class Transport(redis.Transport):
    """kombu's Redis transport with the channel above."""

    Channel = Channel


def install() -> None:
    """Make `redis://` and `rediss://` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["redis"] = f"{__name__}:Transport"
    TRANSPORT_ALIASES["rediss"] = f"{__name__}:Transport"
