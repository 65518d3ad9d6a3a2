"""docker-compose.yml's services as commands this machine can run without Docker.

A service's `command` (and its health check) is taken verbatim; only what must differ outside
a container changes: the ports it listens on (each container has its own network, processes on
one machine do not) and compose's `$$` escape, which the container's shell would see as `$`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"


def services() -> dict[str, dict[str, Any]]:
    """The compose file's services by name (anchors and merge keys resolved)."""
    found: dict[str, dict[str, Any]] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return found


def image_services() -> dict[str, dict[str, Any]]:
    """The services that run one of Mantle's own images (those with a `build`)."""
    return {name: s for name, s in services().items() if "build" in s}


def listen_port(argv: list[str]) -> int | None:
    """The port a `mantle api --port` or `mantle worker --health-port` command listens on."""
    for flag in ("--port", "--health-port"):
        if flag in argv:
            return int(argv[argv.index(flag) + 1])
    return None


@dataclass
class LocalCommand:
    """A service's command and health check, rewritten for this machine."""

    name: str
    argv: list[str]  # what runs; `mantle` must resolve to this virtualenv's script through PATH
    port: int | None  # the port it listens on here (None: a one-shot job)
    healthcheck: list[str] | None  # the compose health check, runnable here


def _rewrite(text: str, container_port: int | None, port: int | None) -> str:
    text = text.replace("$$", "$")
    if container_port is not None and port is not None:
        text = re.sub(rf"(?<![\w.]){container_port}(?!\w)", str(port), text)
    return text


def local_command(name: str, service: dict[str, Any], port: int | None) -> LocalCommand:
    """`service`'s command (a list, or a shell string) with its listening port changed to `port`."""
    command = service["command"]
    argv = command if isinstance(command, list) else ["sh", "-c", command]
    container_port = listen_port(argv) or next(
        (listen_port(a.split()) for a in argv if isinstance(a, str) and " --" in a), None)
    argv = [_rewrite(str(a), container_port, port) for a in argv]
    check = (service.get("healthcheck") or {}).get("test")
    healthcheck: list[str] | None = None
    if check and not (service.get("healthcheck") or {}).get("disable"):
        if isinstance(check, str):
            check = ["CMD-SHELL", check]
        kind, rest = check[0], [_rewrite(str(a), container_port, port) for a in check[1:]]
        healthcheck = ["sh", "-c", rest[0]] if kind == "CMD-SHELL" else rest
    return LocalCommand(name, argv, port if container_port is not None else None, healthcheck)
