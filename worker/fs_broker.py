"""The embedded broker: kombu's filesystem transport, with messages that appear whole.

kombu's `filesystem` transport creates a message file and then writes it, while a consumer
polling the folder moves and reads any file it sees without a lock: it can take a message
before it is written and die on the empty file ("Unrecoverable error: JSONDecodeError",
celery/kombu#1551). Writing beside the folder's message names and renaming into place
(atomic on one filesystem) means a consumer only ever sees complete messages.
"""

from __future__ import annotations

import os
import uuid
from time import monotonic
from typing import Any

from kombu.exceptions import ChannelError
from kombu.transport import TRANSPORT_ALIASES, filesystem
from kombu.transport.virtual import BrokerState
from kombu.utils.encoding import str_to_bytes
from kombu.utils.json import dumps


class Channel(filesystem.Channel):
    """A filesystem channel whose `_put` is atomic."""

    def _put(self, queue: Any, payload: Any, **kwargs: Any) -> None:  # type: ignore[override]
        """Write the message under a name consumers ignore, then rename it into the queue."""
        name = f"{int(round(monotonic() * 1000))}_{uuid.uuid4()}.{queue}.msg"
        final = os.path.join(self.data_folder_out, name)
        partial = f"{final}.part"  # consumers match `<time>_<id>.<queue>.msg` exactly
        try:
            with open(partial, "wb") as f:
                f.write(str_to_bytes(dumps(payload)))
            os.replace(partial, final)
        except OSError as exc:
            raise ChannelError(f"Cannot add file {final!r} to directory") from exc


class Transport(filesystem.Transport):
    """kombu's filesystem transport with the atomic channel."""

    Channel = Channel

    def __init__(self, client: Any, **kwargs: Any) -> None:
        super().__init__(client, **kwargs)
        # kombu keeps one broker state per process and skips declaring an exchange it has seen,
        # so a second broker folder in the same process (tests, several apps) would never get
        # its routing table written and its messages would be dropped: one state per folder.
        folder = os.path.abspath(client.transport_options.get("control_folder", "control"))
        self.state = _states.setdefault(folder, BrokerState())


_states: dict[str, BrokerState] = {}


def install() -> None:
    """Make `filesystem://` broker URLs use this transport in this process."""
    TRANSPORT_ALIASES["filesystem"] = f"{__name__}:Transport"
