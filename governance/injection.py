"""Prompt-injection heuristics: a documented list of patterns, each with a weight.

These catch the common, cheap attacks; a determined attacker can word around any fixed list,
so treat the score as a tripwire, not a proof. The heuristics (kind: weight):

* `ignore_instructions` (0.9): "ignore / disregard / forget ... previous / all / your ...
  instructions / rules / prompt" — the classic override.
* `system_prompt_extraction` (0.85): "reveal / print / repeat / what is ... your system /
  hidden / initial prompt / instructions", "repeat everything above".
* `role_play` (0.8): "you are / act as / answer as / pretend to be ... DAN / unrestricted /
  without rules",
  "do anything now", "developer mode" — jailbreak personas.
* `override_safety` (0.7): "disable / bypass ... safety / content filters / guidelines".
* `role_markers` (0.6): chat-template markup in user text: a line starting `system:`,
  `<|im_start|>`, `[INST]`, `### Instruction`.
* `new_instructions` (0.6): "your new instructions are ...", "new instructions:".
* `from_now_on` (0.45): "from now on you will ..." — weak alone (it is also how people
  write), it tips the score when it comes with another signal.
* `encoded:<kind>`: any of the above inside a base64 or hex payload, with that heuristic's
  weight; `encoded_payload` (0.3): a long base64 run that decodes to readable text.

The score of a text is the noisy-or of the strongest hit of each kind: 1 − Π(1 − weight).
Matching is case-insensitive on the text as written (no Unicode normalisation: offsets must
point into the original text).
"""

from __future__ import annotations

import base64
import binascii

import regex

from governance.findings import Finding

_QUALIFIER = r"(?:previous|prior|above|earlier|preceding|foregoing|all|any|your|system|initial|original)"
_ORDERS = (r"(?:instructions?|prompts?|rules|directions?|guidelines|guardrails|constraints|directives?"
           r"|programming|restrictions|context)")
_GAP = r"[\w\s,'’-]{0,40}?"

HEURISTICS: dict[str, tuple[float, list[str]]] = {
    "ignore_instructions": (0.9, [
        rf"\b(?:ignore|disregard|forget|skip|override|bypass|neglect|abandon)\b{_GAP}\b{_QUALIFIER}\b"
        rf"{_GAP}\b{_ORDERS}\b",
    ]),
    "system_prompt_extraction": (0.85, [
        r"\b(?:reveal|show|print|repeat|display|output|leak|dump|tell|give|share"
        r"|what(?:'s| is| are| was| were))\b.{0,30}?"
        r"\b(?:system|hidden|initial|secret|internal|developer|original)\s+"
        r"(?:prompts?|instructions|message|configuration)\b",
        r"\b(?:repeat|print|output)\b.{0,20}?"
        r"\b(?:everything|all(?: the)? (?:text|words)|the (?:text|words))\b"
        r".{0,20}?\b(?:above|before this|preceding)\b",
    ]),
    "role_play": (0.8, [
        r"\b(?:you are|you're|act as|pretend (?:to be|you are|you're)|role-?play as|play the role of|simulate"
        r"|(?:answer|respond|reply|behave) as)"
        r"\b.{0,40}?(?:\bDAN\b|\bjailbr(?:oken|eak)|\bunrestricted|\bunfiltered|\buncensored|\bevil\b"
        r"|\b(?:without|no) (?:any )?(?:rules|restrictions|limits|filters|guidelines|morals|ethics))",
        r"\bdo anything now\b",
        r"\b(?:developer|god|jailbreak|sudo|unrestricted) mode\b",
    ]),
    "override_safety": (0.7, [
        r"\b(?:disable|turn off|switch off|bypass|ignore|remove|deactivate)\b.{0,20}?"
        r"\b(?:safety|content|moderation)\s+(?:filters?|guidelines|policies|policy|checks?|settings)\b",
    ]),
    "role_markers": (0.6, [
        r"(?:^|\n)\s*(?:system|assistant)\s*:",
        r"<\|?(?:im_start|im_end|system|endoftext)\|?>",
        r"\[/?(?:INST|SYS)\]",
        r"#{2,}\s*(?:system|instructions?)\b",
    ]),
    "new_instructions": (0.6, [
        r"\byour new (?:instructions|directives|orders|system prompt) (?:is|are)\b",
        r"\bnew (?:instructions|directives)\s*:",
    ]),
    "from_now_on": (0.45, [
        r"\b(?:from now on|henceforth|starting now)\b.{0,30}?"
        r"\b(?:you (?:are|will|must|shall)|act|respond|answer)\b",
    ]),
}
ENCODED_PAYLOAD_WEIGHT = 0.3
_COMPILED = {kind: (weight, [regex.compile(p, regex.IGNORECASE) for p in patterns])
             for kind, (weight, patterns) in HEURISTICS.items()}
_BASE64 = regex.compile(r"(?<![A-Za-z0-9+/=_-])[A-Za-z0-9+/_-]{16,}={0,2}(?![A-Za-z0-9+/=_-])")
_HEX = regex.compile(r"\b(?:[0-9a-fA-F]{2}){12,}\b")


def _plain(text: str, offset: int = 0, length: int | None = None, prefix: str = "") -> list[Finding]:
    """Hits of the plain heuristics; with `length`, each is reported over the encoded span instead."""
    found = []
    for kind, (weight, patterns) in _COMPILED.items():
        for pattern in patterns:
            for match in pattern.finditer(text):
                start, end = (offset, offset + length) if length is not None else match.span()
                found.append(Finding("injection", prefix + kind, start, end, weight))
    return found


def _decoded(token: str, hexadecimal: bool) -> str | None:
    """The readable text a token encodes, or None."""
    try:
        raw = bytes.fromhex(token) if hexadecimal else base64.b64decode(
            token.replace("-", "+").replace("_", "/") + "=" * (-len(token) % 4), validate=True)
        text = raw.decode("utf-8")
    except (binascii.Error, ValueError):
        return None
    printable = sum(ch.isprintable() or ch.isspace() for ch in text)
    return text if text and printable / len(text) > 0.95 and " " in text else None


def find_injection(text: str) -> list[Finding]:
    """Every heuristic hit, encoded payloads included."""
    found = _plain(text)
    for pattern, hexadecimal in ((_BASE64, False), (_HEX, True)):
        for match in pattern.finditer(text):
            decoded = _decoded(match.group(), hexadecimal)
            if decoded is None:
                continue
            start, end = match.span()
            inner = _plain(decoded, start, end - start, prefix="encoded:")
            found += inner or [Finding("injection", "encoded_payload", start, end, ENCODED_PAYLOAD_WEIGHT)]
    return found


def injection_score(findings: list[Finding]) -> float:
    """The noisy-or of the strongest finding of each kind."""
    strongest: dict[str, float] = {}
    for f in findings:
        strongest[f.kind] = max(strongest.get(f.kind, 0.0), f.score)
    remaining = 1.0
    for weight in strongest.values():
        remaining *= 1.0 - weight
    return 1.0 - remaining
