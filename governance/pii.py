"""PII: Microsoft Presidio's pattern recognizers, entirely offline.

Presidio's default `AnalyzerEngine()` downloads a spaCy model for named entities; Mantle
needs none of that (names and places are not what its rules look for), so the analyzer runs
on a blank spaCy pipeline with only the pattern and checksum recognizers: e-mail, phone
(`phonenumbers`, international formats), credit card (Luhn), US SSN, IBAN (checksum), IP
address, and a few optional ones. The e-mail recognizer checks the domain against the public
suffix list with `tldextract`, which by default fetches the list over the network: here it
uses the snapshot bundled in the package and never connects.

The analyzer is built once per process on first use (about 0.3 s) and warmed with one call,
so no request pays for compiling its regular expressions.
"""

from __future__ import annotations

import re
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any

from governance.findings import Finding

if TYPE_CHECKING:
    from presidio_analyzer import AnalyzerEngine

# Regions whose national formats (no `+` prefix) are recognised; `+`-prefixed numbers parse
# from anywhere. Each region is a pass of `phonenumbers` over the text, so the list stays short.
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "CA", "AU", "ES", "IT", "NL", "BR")
_build_lock = threading.Lock()
# A run of at least seven digits with the separators phone numbers are written with.
_PHONE_CANDIDATE = re.compile(r"\+?\(?\d[\d\s().\-/]{5,}\d")
_PHONE_CONTEXT = 8
# Words that make the dotted number after them a version, not an address ("v" glued to it too).
_VERSION_BEFORE = re.compile(r"(?:\b(?:version|ver|release|build|firmware|rev|revision|update|upgrade to|"
                             r"upgraded to|downgrade to)\.?\s*:?\s*v?|(?<![A-Za-z])v)$", re.IGNORECASE)
# ... or the words after it: "1.5.0.2 of the firmware".
_VERSION_AFTER = re.compile(r"\s+of\s+(?:the\s+)?(?:\w+\s+)?"
                            r"(?:firmware|app|software|release|build|version|sdk)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class _Span:
    start: int
    end: int


@contextmanager
def _without_optional(*names: str) -> Iterator[None]:
    """Make `names` unimportable while Presidio loads, unless this process already has them.

    Presidio (and thinc under it) import Transformers and torch for NER pipes Mantle never
    uses: seconds of start-up and hundreds of MB in the API and run workers. Both handle the
    ImportError as "not installed"."""
    hidden = [n for n in names if n not in sys.modules]
    for name in hidden:
        sys.modules[name] = None  # type: ignore[assignment]
    try:
        yield
    finally:
        for name in hidden:
            if sys.modules.get(name) is None:
                del sys.modules[name]


@lru_cache(maxsize=1)
def _analyzer() -> AnalyzerEngine:
    """Presidio's analyzer with pattern recognizers on a blank pipeline (built once)."""
    with _without_optional("transformers", "torch"):
        import presidio_analyzer  # noqa: F401  (its import is what must not pull them in)
    import phonenumbers
    import spacy
    import tldextract
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        CryptoRecognizer,
        EmailRecognizer,
        IbanRecognizer,
        IpRecognizer,
        MacAddressRecognizer,
        NhsRecognizer,
        PhoneRecognizer,
        UrlRecognizer,
        UsBankRecognizer,
        UsItinRecognizer,
        UsLicenseRecognizer,
        UsPassportRecognizer,
        UsSsnRecognizer,
    )

    # The bundled public suffix snapshot only: no fetch, no cache directory.
    domains = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)

    class OfflineEmailRecognizer(EmailRecognizer):
        """Presidio's e-mail recognizer with a domain check that never touches the network."""

        def validate_result(self, pattern_text: str) -> bool:
            return bool(domains(pattern_text).fqdn)

    class CandidatePhoneRecognizer(PhoneRecognizer):
        """Presidio's phone recognizer, run on the text's digit runs instead of the whole text.

        `phonenumbers`' matcher scans the whole text once per region (over 1 ms per region for
        500 characters here, most of an evaluation); a message has few runs of digits, and each is
        matched with a little of the text around it, so boundaries come out as they would.

        A run written with its country code (`+44 ...`) parses the same whatever the region, so
        it is matched once, not once per region (0.1 ms instead of 1 ms for one number)."""

        def analyze(self, text: str, entities: list[str], nlp_artifacts: Any = None) -> list[Any]:
            results = []
            for candidate in _PHONE_CANDIDATE.finditer(text):
                offset = max(candidate.start() - _PHONE_CONTEXT, 0)
                window = text[offset:candidate.end() + _PHONE_CONTEXT]
                international = candidate.group().lstrip("(").startswith("+") and "+" not in \
                    text[offset:candidate.start()] + text[candidate.end():candidate.end() + _PHONE_CONTEXT]
                for region in self.supported_regions[:1] if international else self.supported_regions:
                    for match in phonenumbers.PhoneNumberMatcher(window, region, leniency=self.leniency or 0):
                        span = _Span(match.start + offset, match.end + offset)
                        results.append(self._get_recognizer_result(  # type: ignore[no-untyped-call]
                            span, text, region, nlp_artifacts))
            found: list[Any] = EntityRecognizer.remove_duplicates(results)
            return found

    class BlankSpacyEngine(SpacyNlpEngine):
        """Tokenisation only: no model to download, no named entities."""

        def load(self) -> None:
            self.nlp = {"en": spacy.blank("en")}  # type: ignore[assignment]

    nlp_engine = BlankSpacyEngine(models=[{"lang_code": "en", "model_name": "blank"}])
    nlp_engine.load()
    registry = RecognizerRegistry(supported_languages=["en"])
    for recognizer in (
        OfflineEmailRecognizer(), CandidatePhoneRecognizer(supported_regions=PHONE_REGIONS),
        CreditCardRecognizer(), UsSsnRecognizer(), IbanRecognizer(), IpRecognizer(), UrlRecognizer(),
        CryptoRecognizer(), MacAddressRecognizer(), UsBankRecognizer(), UsPassportRecognizer(),
        UsLicenseRecognizer(), UsItinRecognizer(), NhsRecognizer(),
    ):
        registry.add_recognizer(recognizer)
    engine = AnalyzerEngine(registry=registry, nlp_engine=nlp_engine, supported_languages=["en"])
    engine.analyze("warm up: a@example.com 4111 1111 1111 1111 +1 415 555 0132", language="en")
    return engine


def analyzer() -> AnalyzerEngine:
    """The process's analyzer; the first caller builds it while others wait."""
    with _build_lock:
        return _analyzer()


def find_pii(text: str, entities: list[str], min_score: float) -> list[Finding]:
    """Every PII span of the wanted kinds scoring at least `min_score` (overlaps not yet resolved)."""
    if not text.strip():
        return []
    results: list[Any] = analyzer().analyze(text, language="en", entities=entities,
                                            score_threshold=min_score)
    return [Finding("pii", r.entity_type, r.start, r.end, float(r.score)) for r in results
            if _plausible(text, r.entity_type, r.start, r.end)]


def _plausible(text: str, kind: str, start: int, end: int) -> bool:
    """Drop the pattern matches that measured as false alarms on short messages: a span that is
    only part of a longer code (`SKU 400-12-7781-B` is no SSN), phone "numbers" of fewer than
    eight digits (decimals, times and prices that happen to be valid somewhere), and dotted
    version numbers that read as IPv4 addresses (`version 1.2.3.4`, `v10.0.0.1`, `build 4.2.0.17`,
    `1.5.0.2 of the firmware`).

    Presidio's context words can only raise a score, not lower it, so the words around a match
    that say it is not PII are checked here."""
    before, after = text[max(start - 2, 0):start], text[end:end + 2]
    if (len(before) == 2 and before[1] in "-/_" and before[0].isalnum()) or \
            (len(after) == 2 and after[0] in "-/_" and after[1].isalnum()):
        return False
    if kind == "IP_ADDRESS" and (_VERSION_BEFORE.search(text[max(start - 24, 0):start])
                                 or _VERSION_AFTER.match(text, end)):
        return False
    return kind != "PHONE_NUMBER" or sum(ch.isdigit() for ch in text[start:end]) >= 8
