"""Retention's pure rules: whose policy an app follows, the age cutoff, and what a reader is told."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from models.retention import AppToPrune, Policy, age_cutoff, effective_policy, gone_message, selection

NOW = datetime(2030, 3, 31, 12, 0, tzinfo=UTC)


def test_an_apps_own_policy_replaces_its_organizations_whole() -> None:
    org = Policy(keep_days=30)
    assert effective_policy(org, None) == Policy(keep_days=30)
    assert effective_policy(org, Policy(keep_runs=5)) == Policy(keep_runs=5)  # not 30 days and 5 runs
    assert effective_policy(org, Policy()).forever  # an app may keep forever under a pruning org
    assert effective_policy(None, None).forever


def test_the_age_cutoff_is_keep_days_before_now() -> None:
    assert age_cutoff(Policy(keep_days=30), NOW) == datetime(2030, 3, 1, 12, 0, tzinfo=UTC)
    assert age_cutoff(Policy(keep_runs=10), NOW) is None


def test_the_policy_in_words() -> None:
    assert Policy(keep_days=30).describe() == "keep 30 days"
    assert Policy(keep_days=1).describe() == "keep 1 day"
    assert Policy(keep_runs=1).describe() == "keep the last 1 run"
    assert Policy(keep_days=7, keep_runs=100).describe() == "keep 7 days and keep the last 100 runs"
    assert Policy().describe() == "keep forever"


def test_a_pruned_run_says_when_and_by_which_policy() -> None:
    run_id = uuid.UUID(int=7)
    message = gone_message(run_id, NOW, Policy(keep_days=30), "organization")
    assert message == (f"run {run_id} was deleted on 2030-03-31 by the organization's retention policy "
                       "(keep 30 days)")


def test_nothing_is_selected_without_a_limit_that_applies() -> None:
    app = AppToPrune(uuid.uuid4(), uuid.uuid4(), Policy(keep_runs=10), "organization")
    # Fewer than 10 runs: no boundary, and no age limit either.
    assert selection(app, now=NOW, boundary=None, limit=100) is None
    assert selection(app, now=NOW, boundary=(NOW, uuid.uuid4()), limit=100) is not None
