"""
Scrubber vs. Presidio on one generated corpus, measured in one run.

ours:     llm_audit_log.scrub.Scrubber (keyword gate, exact patterns, validators)
presidio: presidio-analyzer AnalyzerEngine with its predefined pattern recognizers and
          the no-op NLP engine (no spaCy model), then presidio-anonymizer's
          AnonymizerEngine; the spaCy NER recognizer sees no entities and adds nothing.

Both get the same ~300-character LLM-app sentences (most clean, 20 % with one planted
value, built by ``tests/scrub/corpus.py`` at run time). The script prints strings/s
for each and the ratio, our per-call timings, and per kind the recall on planted values
and the false positives on hard negatives, for both.

Presidio is not a dependency of the library; install it in its own venv:

    python3 -m venv /tmp/presidio-venv
    /tmp/presidio-venv/bin/pip install -e . -r benchmarks/presidio-requirements.txt
    /tmp/presidio-venv/bin/python benchmarks/bench_scrub.py [--strings 2000]

Run with the dev venv (``.venv/bin/python benchmarks/bench_scrub.py``) and Presidio is
reported as skipped.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests" / "scrub"))

import corpus

from llm_audit_log.scrub import Scrubber

KEY = b"bench-scrub-pseudonymisation-key"
CLEAN_300 = (
    "User u-1842 asked gpt-4o-mini to summarise the refund policy for order ord_55120; the "
    "model answered in 830 ms with 512 input tokens and 64 output tokens (finish_reason=stop, "
    "session s-77c1, trace 4bf92f3577b34da6a3ce929d0e0e4736) at 2024-07-18T10:22:01Z via "
    "https://api.example.com/v1/chat."
)
CLEAN_PROSE = (
    "Retrieved 4 chunks from the policy index for the user's question about late deliveries; "
    "the top match scored 0.87 and cites section 4.2 of the shipping terms. The assistant "
    "drafted a two-paragraph answer, the guardrail passed it, and the response was streamed "
    "back to the web client in 1.4 seconds."
)
WITH_EMAIL = (
    "User u-1842 asked gpt-4o-mini to summarise the refund policy; please reply to "
    "maria.lopez@example.org with the answer. The model answered in 830 ms with 512 input "
    "tokens and 64 output tokens (finish_reason=stop, session s-77c1) at "
    "2024-07-18T10:22:01Z via https://api.example.com/v1/chat for the support team."
)
PAYLOAD = {
    "event_type": "llm.completion", "user_id": "u-1842", "status": "success",
    "model": "gpt-4o-mini", "model_version": "2024-07-18", "provider": "openai",
    "prompt": "Summarise the refund policy for order ord_55120 in two sentences please.",
    "tokens_input": 512, "tokens_output": 64, "latency_ms": 830.2, "finish_reason": "stop",
    "session_id": "s-77c1", "rag_documents": ["doc_1201", "doc_0932"],
    "tools_called": ["order_lookup"], "timestamp": "2024-07-18T10:22:01.123Z",
}


def digest(value: str) -> str:
    return hmac.new(KEY, value.encode(), hashlib.sha256).hexdigest()


def presidio_scrubber() -> Callable[[str], str] | None:
    """Analyzer (pattern recognizers, no-op NLP engine) + anonymizer, or None."""
    try:
        import tldextract  # noqa: PLC0415
        from presidio_analyzer import AnalyzerEngine  # noqa: PLC0415
        from presidio_analyzer.nlp_engine import NlpEngineProvider  # noqa: PLC0415
        from presidio_anonymizer import AnonymizerEngine  # noqa: PLC0415
    except ImportError:
        return None
    # Presidio's email recognizer calls tldextract, which would fetch the public suffix
    # list over the network; use the snapshot bundled with tldextract instead.
    tldextract.extract = tldextract.TLDExtract(suffix_list_urls=(), cache_dir=None)
    provider = NlpEngineProvider(nlp_configuration={
        "nlp_engine_name": "no_op", "models": [{"lang_code": "en", "model_name": "no_op"}]})
    analyzer = AnalyzerEngine(nlp_engine=provider.create_engine(), supported_languages=["en"])
    anonymizer = AnonymizerEngine()

    def scrub(text: str) -> str:
        results = analyzer.analyze(text=text, language="en")
        return anonymizer.anonymize(text=text, analyzer_results=results).text

    scrub("warm up: ops@example.com 4111 1111 1111 1111")
    return scrub


def strings_per_second(scrub: Callable[[str], str], strings: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter()
        for text in strings:
            scrub(text)
        best = min(best, time.perf_counter() - start)
    return len(strings) / best


def per_call_us(call: Callable[[], object], number: int = 100_000) -> float:
    return min(timeit.repeat(call, number=number, repeat=7)) / number * 1e6


def quality(scrub: Callable[[str], str]) -> tuple[dict[str, tuple[int, int]], Counter[str],
                                                   Counter[str]]:
    """
    Per kind: (found, planted) on planted values; hard negatives whose value was altered;
    hard-negative sentences changed at all (the filler around them included).
    """
    found: Counter[str] = Counter()
    planted: Counter[str] = Counter()
    for item in corpus.planted():
        planted[item.kind] += 1
        if item.secret not in scrub(item.text):
            found[item.kind] += 1
    values: Counter[str] = Counter()
    sentences: Counter[str] = Counter()
    for negative in corpus.negatives():
        out = scrub(negative.text)
        values[negative.kind] += negative.value not in out
        sentences[negative.kind] += out != negative.text
    return {kind: (found[kind], planted[kind]) for kind in planted}, values, sentences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--strings", type=int, default=2000)
    args = parser.parse_args()

    strings = corpus.mixed_strings(args.strings)
    lengths = [len(s) for s in strings]
    print(f"corpus: {len(strings)} strings, mean {sum(lengths) / len(lengths):.0f} chars, "
          f"20 % with a planted value")

    ours = Scrubber(digest=digest)
    ours_ip = Scrubber(digest=digest, ip_addresses=True)

    def scrub_ours(text: str) -> str:
        return ours.scrub_text(text, {})

    ours_rate = strings_per_second(scrub_ours, strings, rounds=7)
    print(f"\nours:     {ours_rate:12,.0f} strings/s")
    presidio = presidio_scrubber()
    if presidio is None:
        print("presidio: skipped (presidio-analyzer / presidio-anonymizer not importable; "
              "see the module docstring)")
    else:
        presidio_rate = strings_per_second(presidio, strings, rounds=1)
        print(f"presidio: {presidio_rate:12,.0f} strings/s")
        print(f"ratio:    {ours_rate / presidio_rate:12,.0f}x")

    counts: dict[str, int] = {}
    print("\nours, per call (timeit, best of 7):")
    for label, call in (
        (f"scrub_text, clean {len(CLEAN_300)}-char structured line",
         lambda: ours.scrub_text(CLEAN_300, counts)),
        (f"scrub_text, clean {len(CLEAN_PROSE)}-char prose line",
         lambda: ours.scrub_text(CLEAN_PROSE, counts)),
        (f"scrub_value, clean {len(PAYLOAD)}-field payload",
         lambda: ours.scrub_value(PAYLOAD, counts)),
        (f"scrub_text, {len(WITH_EMAIL)}-char line with one email",
         lambda: ours.scrub_text(WITH_EMAIL, counts)),
    ):
        print(f"  {label:48s} {per_call_us(call):7.2f} us")

    def scrub_quality(text: str) -> str:  # IP detection is opt-in: measure it switched on
        return ours_ip.scrub_text(text, {})

    our_recall, _, _ = quality(scrub_quality)
    _, our_values, our_sentences = quality(scrub_ours)
    _, our_ip_values, _ = quality(scrub_quality)
    if presidio:
        their_recall, their_values, their_sentences = quality(presidio)

    print("\nrecall on planted values (ours with ip_addresses=True)")
    print(f"  {'kind':20s} {'ours':>9s} {'presidio':>9s}")
    for kind in corpus.PLANTED_KINDS:
        mine, total = our_recall[kind]
        theirs = f"{their_recall[kind][0]}/{total}" if presidio else "-"
        print(f"  {kind:20s} {f'{mine}/{total}':>9s} {theirs:>9s}")
    per_kind = corpus.PER_KIND
    print("\nfalse positives on hard negatives: the value itself altered (ours: default options)")
    print(f"  {'kind':20s} {'ours':>9s} {'presidio':>9s}")
    for kind in corpus.NEGATIVE_KINDS:
        theirs = f"{their_values[kind]}/{per_kind}" if presidio else "-"
        print(f"  {kind:20s} {f'{our_values[kind]}/{per_kind}':>9s} {theirs:>9s}")
    total = per_kind * len(corpus.NEGATIVE_KINDS)
    print(f"  {'total':20s} {f'{sum(our_values.values())}/{total}':>9s} "
          f"{f'{sum(their_values.values())}/{total}' if presidio else '-':>9s}")
    print(f"  {'sentences changed':20s} {f'{sum(our_sentences.values())}/{total}':>9s} "
          f"{f'{sum(their_sentences.values())}/{total}' if presidio else '-':>9s}"
          "   (timestamps, URLs and ids in the filler count too)")
    if our_ip_values != our_values:
        print(f"  with ip_addresses=True ours alters: {dict(our_ip_values - our_values)}")


if __name__ == "__main__":
    main()
