"""docker-compose.yml and the Dockerfiles: valid, healthy by construction, and running real commands.

No Docker engine is needed: Debian's `docker-compose` (v1.29) validates the compose file offline,
and the Dockerfiles are read as text. Every `mantle …` command an image or service runs must be
one the CLI has, with options it accepts, so a renamed command breaks this test, not a deploy.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from cli.main import main
from core.settings import Settings
from tests.conftest import IN_CI

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DOCKERFILES = {"api/worker": ROOT / "Dockerfile", "gpu": ROOT / "docker" / "gpu.Dockerfile"}
BUILD_TOOLS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|make|cmake|python3?-dev)\b")
MANTLE_COMMAND = re.compile(r"\bmantle((?:\s+--?[\w-]+|\s+[\w.,-]+)+)")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as YAML (anchors and merge keys resolved)."""
    loaded: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())
    return loaded


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The compose file's services by name."""
    found: dict[str, dict[str, Any]] = compose["services"]
    return found


def check_mantle_command(argv: list[str]) -> None:
    """Fail unless `mantle ARGV` names an existing subcommand that accepts every option given."""
    assert argv and argv[0] == "mantle", argv
    path = [a for a in argv[1:] if not a.startswith("-")]
    group: Any = main
    words: list[str] = []
    for word in path:  # walk down the groups; what follows the last command is its arguments
        if not hasattr(group, "commands") or word not in group.commands:
            break
        group = group.commands[word]
        words.append(word)
    assert words and not hasattr(group, "commands"), f"`{' '.join(argv)}` names no mantle command"
    result = CliRunner().invoke(main, [*words, "--help"])
    assert result.exit_code == 0, result.output
    for option in (a.split("=")[0] for a in argv[1:] if a.startswith("--")):
        assert option in result.output, f"`mantle {' '.join(words)}` has no option {option}"


def mantle_commands_in(text: str) -> list[list[str]]:
    """Each `mantle …` command line inside a shell string."""
    return [["mantle", *shlex.split(m.group(1))] for m in MANTLE_COMMAND.finditer(text)]


def test_compose_file_validates_offline(tmp_path: Path) -> None:
    tool = shutil.which("docker-compose")
    if tool is None:
        if IN_CI:
            pytest.fail("docker-compose is required in CI (`make compose-tool` installs it)")
        pytest.skip("docker-compose missing (`make compose-tool` installs it)")
    env = tmp_path / ".env"  # a throwaway .env: the real one holds secrets and may not exist
    env.write_text("POSTGRES_PASSWORD=throwaway\nMANTLE_SECRET_KEY=throwaway-secret\n")
    for profiles in ([], ["--profile", "cpu"], ["--profile", "gpu"]):
        done = subprocess.run([tool, "-f", str(COMPOSE_FILE), "--project-directory", str(tmp_path),
                               "--env-file", str(env), *profiles, "config", "-q"],
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr


def test_services_and_health_checks(services: dict[str, dict[str, Any]]) -> None:
    expected = {"postgres", "redis", "migrate", "api", "worker", "beat", "inference", "inference-cpu"}
    assert expected <= set(services)
    for name in expected - {"migrate"}:
        check = services[name].get("healthcheck", {})
        assert check.get("test") and not check.get("disable"), f"{name} has no health check"
    assert "/readyz" in " ".join(services["api"]["healthcheck"]["test"])
    assert any("postgres-data:" in v for v in services["postgres"]["volumes"]), "postgres needs a volume"


def test_start_order(services: dict[str, dict[str, Any]]) -> None:
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"
    for name in ("api", "worker", "beat", "inference", "inference-cpu"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully", name
        assert depends["redis"]["condition"] == "service_healthy", name
    assert services["migrate"].get("restart") == "no", "a one-shot migration must not loop forever"


def test_scaling_and_single_scheduler(services: dict[str, dict[str, Any]]) -> None:
    worker = services["worker"]
    assert "container_name" not in worker and "ports" not in worker, "worker must scale with --scale"
    with_beat = [n for n, s in services.items() if "--beat" in json.dumps(s.get("command", ""))]
    assert with_beat == ["beat"], f"exactly one scheduler, found {with_beat}"
    assert services["beat"].get("deploy", {}).get("replicas", 1) == 1


def test_inference_on_gpu_and_cpu_profile(services: dict[str, dict[str, Any]]) -> None:
    gpu = services["inference"]
    device = gpu["deploy"]["resources"]["reservations"]["devices"][0]
    assert device["driver"] == "nvidia" and device["count"] == 1 and device["capabilities"] == ["gpu"]
    assert gpu["build"]["dockerfile"] == "docker/gpu.Dockerfile"
    deployments = json.loads(gpu["environment"]["MANTLE_MODEL_DEPLOYMENTS"])
    gptj = next(d for d in deployments if d["name"] == "gpt-j-6b")
    assert (gptj["backend"], gptj["dtype"], gptj["device"]) == ("deepspeed", "float16", "cuda")
    assert any(v.endswith(":/models:ro") for v in gpu["volumes"]), "weights come from a mounted folder"
    assert gpu["environment"]["MANTLE_MODELS_DIR"] == "/models"
    assert services["inference-cpu"]["profiles"] == ["cpu"]
    assert "MANTLE_MODEL_DEPLOYMENTS" not in services["inference-cpu"]["environment"]


def test_compose_settings_are_real_settings(services: dict[str, dict[str, Any]]) -> None:
    known = {"MANTLE_" + name.upper() for name in Settings.model_fields}
    for name, service in services.items():
        env = service.get("environment") or {}
        unknown = {k for k in env if k.startswith("MANTLE_")} - known
        assert not unknown, f"{name} sets unknown settings {sorted(unknown)}"
        if "build" in service:  # Mantle's own images
            assert service.get("env_file") == ".env", f"{name} must read its secrets from .env"


def test_compose_commands_exist(services: dict[str, dict[str, Any]]) -> None:
    checked = 0
    for service in services.values():
        command = service.get("command")
        if isinstance(command, list) and command and command[0] == "mantle":
            check_mantle_command(command)
            checked += 1
        elif isinstance(command, list) and command[:2] == ["sh", "-c"]:
            for argv in mantle_commands_in(command[2]):
                check_mantle_command(argv)
                checked += 1
    assert checked >= 6


def stages(path: Path) -> list[list[str]]:
    """A Dockerfile's stages as lists of instructions (continuation lines joined, comments dropped)."""
    lines = [line for line in path.read_text().splitlines() if not line.lstrip().startswith("#")]
    instructions = re.sub(r"\\\n", " ", "\n".join(lines)).splitlines()
    result: list[list[str]] = []
    for instruction in (i.strip() for i in instructions if i.strip()):
        if instruction.upper().startswith("FROM "):
            result.append([])
        if result:
            result[-1].append(instruction)
    return result


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_dockerfile_is_multi_stage_and_non_root(name: str) -> None:
    found = stages(DOCKERFILES[name])
    assert len(found) >= 2, f"{name}: a builder stage and a final stage"
    final = found[-1]
    users = [i.split(None, 1)[1].strip() for i in final if i.upper().startswith("USER ")]
    assert users and users[-1] not in ("root", "0"), f"{name}: the final stage must run as a user"
    assert any(i.startswith("COPY --from=") for i in final), f"{name}: final stage copies the build"
    cmd = next(i for i in reversed(final) if i.upper().startswith("CMD "))
    check_mantle_command(json.loads(cmd[4:]))


def test_api_image_has_no_build_tools() -> None:
    found = stages(DOCKERFILES["api/worker"])
    assert any(BUILD_TOOLS.search(i) for i in found[0] if i.startswith("RUN ")), "builder builds"
    installs = [i for i in found[-1] if i.startswith("RUN ")]
    assert not [i for i in installs if BUILD_TOOLS.search(i)], installs
    assert any(i.startswith("HEALTHCHECK ") for i in found[-1])
    assert "torch==2.13.0" in " ".join(found[0]) and "/whl/cpu" in " ".join(found[0])


def test_gpu_image_runs_deepspeed_on_cuda() -> None:
    text = DOCKERFILES["gpu"].read_text()
    assert re.search(r"^ARG CUDA_IMAGE=nvidia/cuda:", text, re.MULTILINE)
    assert all(s[0].startswith("FROM ${CUDA_IMAGE}") for s in stages(DOCKERFILES["gpu"]))
    assert "deepspeed==" in text and "torch==2.13.0" in text
    assert not re.search(r"build-essential", text), "only the compilers DeepSpeed's JIT needs"


@pytest.mark.parametrize("name", sorted(DOCKERFILES))
def test_images_contain_every_package(name: str) -> None:
    """Each package pyproject.toml installs is copied in, and .dockerignore does not hide it."""
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = {p.rstrip("*") for p in pyproject["tool"]["setuptools"]["packages"]["find"]["include"]}
    copied = {i.split()[1] for i in stages(DOCKERFILES[name])[0] if i.startswith("COPY ")}
    assert packages <= copied, f"{name} image lacks {sorted(packages - copied)}"
    ignored = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()
               if line.strip() and not line.startswith(("#", "!"))]
    hidden = {p for p in copied for pattern in ignored if fnmatch.fnmatch(p, pattern.rstrip("/"))}
    assert not hidden, f".dockerignore hides {sorted(hidden)} from the build"
