"""A/B: one bench script run against two git revisions in turn, to say what a change did.

    .venv/bin/python bench/ab.py OLD NEW bench/peers.py --field cpu_ms_per_request -- --systems mantle-pg

Each revision is checked out once, detached, in its own `git worktree` in a temporary folder (this
checkout's files and index are never touched), sharing this checkout's `.venv` and `.mantle` (the
converted default model) through symlinks; `.` as a revision means this checkout as it is, with its
uncommitted changes. A bench file this checkout has and a revision lacks (a script newer than the
revision, its data) is copied into that revision's worktree, so a new script can measure old code;
the revision's own files are never replaced.

The script runs `--rounds` times per revision (default 2), alternating in ABBA order (old, new, new,
old, ...) so a machine that slowly gets busier does not favour one side, each run from its worktree
with this interpreter and the worktree first on PYTHONPATH. Every JSON line it prints is printed
again tagged with `revision` (old/new), `commit` and `round`; other output goes to stderr. Then one
`ab` line per group of lines (`--key`: the fields that tell lines apart, default bench, system,
clients) and `--field` (a dotted path; a dict of numbers counts as its sum, as load.py's
`cpu_ms_per_request` per process): the median per revision and the ratio new / old.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DEFAULT_FIELDS = ("p50_ms", "p95_ms", "p99_ms", "requests_per_s", "runs_per_s", "cpu_ms_per_request",
                  "errors")
DEFAULT_KEYS = "bench,system,clients"
SHARED = (".venv", ".mantle")  # ignored folders a worktree uses from this checkout


@dataclass(frozen=True)
class Side:
    """One revision under test: its label (old/new), commit (or `.`) and checked-out folder."""

    label: str
    commit: str
    root: Path


def git(*args: str, cwd: Path = REPO) -> str:
    """A git command's standard output; raises on failure."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def resolve(revision: str) -> str:
    """The full commit id of `revision`, or `.` for this checkout as it is."""
    if revision in (".", "WORKTREE"):
        return "."
    try:
        return git("rev-parse", "--verify", f"{revision}^{{commit}}")
    except subprocess.CalledProcessError:
        raise SystemExit(f"{revision!r} is not a commit of this repository") from None


@contextlib.contextmanager
def checked_out(label: str, commit: str, folder: Path) -> Iterator[Side]:
    """`commit` in a detached worktree under `folder` (removed at the end), or this checkout for `.`."""
    if commit == ".":
        yield Side(label, ".", REPO)
        return
    root = folder / f"{label}-{commit[:10]}"
    git("worktree", "add", "--detach", str(root), commit)
    try:
        for name in SHARED:
            if (REPO / name).exists() and not (root / name).exists():
                (root / name).symlink_to(REPO / name)
        copied = overlay_bench(root)
        if copied:
            print(f"ab: {label} ({commit[:10]}) lacks {', '.join(copied)}: copied from this checkout",
                  file=sys.stderr)
        yield Side(label, commit, root)
    finally:
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "remove", "--force", str(root))
        shutil.rmtree(root, ignore_errors=True)
        with contextlib.suppress(subprocess.CalledProcessError):
            git("worktree", "prune")


def overlay_bench(root: Path) -> list[str]:
    """Copy into `root` the files of this checkout's bench/ that `root` lacks; their paths."""
    listed = git("ls-files", "--cached", "--others", "--exclude-standard", "--", "bench").splitlines()
    copied = []
    for path in listed:
        source, target = REPO / path, root / path
        if source.is_file() and not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(path)
    return copied


def run_once(side: Side, script: str, args: list[str], round_number: int) -> tuple[list[dict[str, Any]], int]:
    """Run the script once from `side`'s folder; its JSON lines (tagged and printed as they come)
    and its exit status."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        [str(side.root), *filter(None, [os.environ.get("PYTHONPATH")])])}
    tag = {"revision": side.label, "commit": side.commit[:10], "round": round_number}
    print(f"ab: round {round_number}, {side.label} ({side.commit[:10]}): {script} {' '.join(args)}",
          file=sys.stderr, flush=True)
    lines = []
    with subprocess.Popen([sys.executable, str(side.root / script), *args], cwd=side.root, env=env,
                          stdout=subprocess.PIPE, text=True) as process:
        assert process.stdout is not None
        for raw in process.stdout:
            try:
                parsed = json.loads(raw)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                line = {**parsed, **tag}
                lines.append(line)
                print(json.dumps(line), flush=True)
            else:
                print(raw, end="", file=sys.stderr, flush=True)
    if process.returncode:
        print(f"ab: {script} exited with status {process.returncode} ({side.label}, round {round_number})",
              file=sys.stderr)
    return lines, process.returncode


def value_at(line: dict[str, Any], dotted: str) -> float | None:
    """The number at `dotted` in `line` (a dict of numbers: their sum), or None."""
    value: Any = line
    for part in dotted.split("."):
        if not isinstance(value, dict) or part not in value:
            return None
        value = value[part]
    if isinstance(value, dict):
        numbers = [v for v in value.values() if isinstance(v, int | float) and not isinstance(v, bool)]
        return float(sum(numbers)) if numbers else None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def summarize(lines: list[dict[str, Any]], fields: list[str], keys: list[str],
              commits: dict[str, str]) -> list[dict[str, Any]]:
    """One line per group and field: the median per revision and new / old."""
    groups: dict[str, dict[str, Any]] = {}
    for line in lines:
        group = {k: line[k] for k in keys if k in line}
        entry = groups.setdefault(json.dumps(group, sort_keys=True), {"group": group, "lines": []})
        entry["lines"].append(line)
    result = []
    for entry in groups.values():
        for field in fields:
            sides: dict[str, dict[str, Any]] = {}
            for label in ("old", "new"):
                values = [v for line in entry["lines"] if line["revision"] == label
                          and (v := value_at(line, field)) is not None]
                if values:
                    sides[label] = {"commit": commits[label][:10],
                                    "median": round(statistics.median(values), 3), "values": values}
            if len(sides) < 2:
                continue
            old, new = sides["old"]["median"], sides["new"]["median"]
            result.append({"bench": "ab", "group": entry["group"], "field": field, **sides,
                           "ratio_new_over_old": round(new / old, 3) if old else None})
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("old", help="The revision before (a commit, branch or tag; `.`: this checkout).")
    parser.add_argument("new", help="The revision after.")
    parser.add_argument("script", help="The bench script, relative to the repository root (bench/load.py).")
    parser.add_argument("--rounds", type=int, default=2, help="Runs per revision.")
    parser.add_argument("--field", action="append", default=[],
                        help=f"A field to compare, dotted for nested ones (repeatable; default: "
                             f"{', '.join(DEFAULT_FIELDS)} where present).")
    parser.add_argument("--key", default=DEFAULT_KEYS,
                        help=f"Fields that tell one measurement's lines apart (default {DEFAULT_KEYS}).")
    parser.epilog = "Arguments after `--` are the script's own."
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args, script_args = parser.parse_args(argv[:split]), argv[split + 1:]
    commits = {"old": resolve(args.old), "new": resolve(args.new)}
    if not (REPO / args.script).is_file():
        raise SystemExit(f"{args.script} is not a file of this checkout")
    lines: list[dict[str, Any]] = []
    failures = 0
    with tempfile.TemporaryDirectory(prefix="mantle-ab-") as tmp, \
            checked_out("old", commits["old"], Path(tmp)) as old, \
            checked_out("new", commits["new"], Path(tmp)) as new:
        for round_number in range(1, args.rounds + 1):
            for side in (old, new) if round_number % 2 else (new, old):
                got, status = run_once(side, args.script, script_args, round_number)
                lines += got
                failures += status != 0
    fields = args.field or list(DEFAULT_FIELDS)
    for line in summarize(lines, fields, [k for k in args.key.split(",") if k], commits):
        print(json.dumps(line), flush=True)
    if failures:
        raise SystemExit(f"ab: {failures} run(s) of {args.script} failed")


if __name__ == "__main__":
    main()
