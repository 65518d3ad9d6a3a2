"""Governance benchmark: quality on the labelled set and the latency of one evaluation.

Runs every rule over `tests/data/governance_eval.jsonl` (short SMS-like texts labelled with
the PII kinds they hold, and whether they are toxic, an injection attempt, or on the deny
list) and prints one JSON line:

* per rule, text-level precision and recall (did the rule fire on the texts it should);
  for PII also `pii_entities`, over (text, entity kind) pairs, so a phone labelled as an SSN
  counts as a miss and a false alarm. Goals: PII recall ≥ 0.95 and precision ≥ 0.9.
* the median and p95 of one `evaluate` of a 500-character text with every rule on (goal:
  p95 under 20 ms, models loaded once), beside the baseline measured in the same process: the
  PII rule alone, the cost Presidio sets.

Run from the repository root: `.venv/bin/python bench/governance.py`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.timing import p95, timings_ms  # noqa: E402
from governance.evaluate import evaluate  # noqa: E402
from governance.rules import PolicyRules  # noqa: E402

DATA = REPO / "tests" / "data" / "governance_eval.jsonl"
GOAL_P95_MS = 20
# The deny list the set's `deny` labels were written for.
RULES = {
    "pii": {"action": "redact"},
    "toxicity": {"action": "block", "threshold": 0.8},
    "deny_list": {"action": "block", "keywords": ["crypto giveaway", "wire transfer", "lottery"],
                  "regexes": [r"promo[\s-]*code\W*\w+"]},
    "injection": {"action": "block", "threshold": 0.5},
    "length": {"action": "block", "max_chars": 4000, "max_tokens": 1000},
}
LABELS = {"pii": lambda row: bool(row["pii"]), "toxicity": lambda row: row["toxic"],
          "injection": lambda row: row["injection"], "deny_list": lambda row: row["deny"]}
TEXT_500 = (
    "Hi Maria, thanks for the quick turnaround on the contract. Before we sign, could you send the "
    "final copy to legal@northwind-traders.com and copy me? If anything is unclear, call me on "
    "+1 415 555 0132 after 3pm. The deposit will come from our usual account, so no need to ask for "
    "card details again. Also, the delivery window moved to next Thursday between 9 and 11; please "
    "let the warehouse team know so they can book the loading bay. Looking forward to working "
    "together on this one. Best regards, Tom from the procurement office at Northwind."
)[:500]


def scores(pairs: list[tuple[bool, bool]]) -> dict[str, Any]:
    """Precision and recall of (expected, predicted) pairs."""
    tp = sum(e and p for e, p in pairs)
    fp = sum(p and not e for e, p in pairs)
    fn = sum(e and not p for e, p in pairs)
    return {"precision": round(tp / (tp + fp), 4) if tp + fp else 1.0,
            "recall": round(tp / (tp + fn), 4) if tp + fn else 1.0, "tp": tp, "fp": fp, "fn": fn}


def quality(rules: PolicyRules, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Per-rule precision and recall over the labelled set."""
    pairs: dict[str, list[tuple[bool, bool]]] = {name: [] for name in LABELS}
    entity_pairs: list[tuple[bool, bool]] = []
    for row in rows:
        decision = evaluate(rules, row["text"])
        fired = {r.rule: r for r in decision.fired}
        for name, label in LABELS.items():
            pairs[name].append((bool(label(row)), name in fired))
        found = {f.kind for f in fired["pii"].findings} if "pii" in fired else set()
        expected = set(row["pii"])
        entity_pairs += [(kind in expected, kind in found) for kind in expected | found]
    result = {name: scores(p) for name, p in pairs.items()}
    result["pii_entities"] = scores(entity_pairs)
    return result


def main() -> None:
    """Measure and print one JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=300)
    args = parser.parse_args()
    rows = [json.loads(line) for line in DATA.read_text().splitlines() if line.strip()]
    rules = PolicyRules.model_validate(RULES)
    started = time.perf_counter()
    evaluate(rules, "warm up")  # loads Presidio and the profanity model: once per process
    load_s = time.perf_counter() - started
    measured = quality(rules, rows)
    everything = timings_ms(lambda: evaluate(rules, TEXT_500), args.runs, warmup=20)
    pii_only = PolicyRules.model_validate({"pii": RULES["pii"]})
    baseline = timings_ms(lambda: evaluate(pii_only, TEXT_500), args.runs, warmup=20)
    print(json.dumps({
        "bench": "governance", "texts": len(rows), "rules": measured,
        "text_chars": len(TEXT_500), "runs": args.runs, "load_s": round(load_s, 3),
        "evaluate_median_ms": round(statistics.median(everything), 3),
        "evaluate_p95_ms": round(p95(everything), 3),
        "baseline_pii_only_median_ms": round(statistics.median(baseline), 3),
        "baseline_pii_only_p95_ms": round(p95(baseline), 3),
        "goal_p95_ms": GOAL_P95_MS, "meets_goal": p95(everything) < GOAL_P95_MS
        and measured["pii"]["recall"] >= 0.95 and measured["pii"]["precision"] >= 0.9,
    }))


if __name__ == "__main__":
    main()
