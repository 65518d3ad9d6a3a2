""".env.example documents every setting, and nothing that is not one.

An operator configures a deployment by copying .env.example to .env: a setting missing from it
is one nobody finds, and a name that is no setting is silently ignored (Settings has
`extra="ignore"`). Lines left commented out (`# MANTLE_X=…`) count as documented.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ENV_EXAMPLE = ROOT / ".env.example"
COMPOSE = ROOT / "docker-compose.yml"
ASSIGNMENT = re.compile(r"^#?\s*([A-Z][A-Z0-9_]*)=", re.MULTILINE)
PREFIX = str(Settings.model_config.get("env_prefix", "")).upper()


def documented_names() -> set[str]:
    """Every variable .env.example assigns, set or commented out."""
    return set(ASSIGNMENT.findall(ENV_EXAMPLE.read_text()))


def test_prefix_is_mantle() -> None:
    assert PREFIX == "MANTLE_"


def test_every_setting_is_documented() -> None:
    expected = {PREFIX + name.upper() for name in Settings.model_fields}
    missing = expected - documented_names()
    assert not missing, f".env.example does not document: {sorted(missing)}"


def test_every_documented_mantle_name_is_a_setting() -> None:
    expected = {PREFIX + name.upper() for name in Settings.model_fields}
    unknown = {n for n in documented_names() if n.startswith(PREFIX)} - expected
    assert not unknown, f".env.example names settings that do not exist: {sorted(unknown)}"


def test_other_names_are_used_by_the_compose_file() -> None:
    """The non-Mantle variables in .env.example are docker-compose.yml's, and it uses each one."""
    compose = COMPOSE.read_text()
    others = {n for n in documented_names() if not n.startswith(PREFIX)}
    unused = {n for n in others if "${" + n not in compose}
    assert not unused, f".env.example names variables docker-compose.yml never reads: {sorted(unused)}"


def test_example_values_load(monkeypatch: pytest.MonkeyPatch) -> None:
    """The file as shipped is a valid configuration (local mode; production needs a real secret)."""
    for name in list(Settings.model_fields):
        monkeypatch.delenv(PREFIX + name.upper(), raising=False)
    settings = Settings(_env_file=str(ENV_EXAMPLE))
    assert settings.env == "local"
    assert settings.models_dir is None, "an empty MANTLE_MODELS_DIR would mean the working directory"
