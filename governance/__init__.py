"""Governance: the policy engine that screens text before and after a model sees it.

A policy is a set of rules (`governance.rules.PolicyRules`), each with an action:

* `allow` — record what the rule found, change nothing (monitoring);
* `redact` — replace what it found with a typed placeholder (`<EMAIL_ADDRESS>`);
* `review` — send the text to a person in the human review queue before it goes on;
* `block` — stop: the run ends `blocked` (or takes the policy block's `blocked` port).

The rules: PII (Presidio pattern recognizers, offline), toxicity (`alt-profanity-check`),
keyword and regex deny lists, prompt-injection heuristics, and length limits.
`governance.evaluate.evaluate(rules, text)` applies them all and returns one `Decision`:
the strongest action wins (block > review > redact > allow), the text with every redaction
applied, and findings `{rule, kind, start, end, score}` that never contain the text found.

The heavy parts (Presidio's analyzer, the profanity model) are built once per process, on
first use, so importing this package costs nothing.
"""
