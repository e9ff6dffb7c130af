"""
Encrypted pipeline vs. the stdlib baseline, plus decrypt and verify throughput, in one run.

baseline:   logging.handlers.RotatingFileHandler + python-json-logger JsonFormatter
plain:      our full pipeline without encryption (for what encryption adds per record)
encrypted:  our full pipeline with encrypt="auditor": AES-256-GCM body (fresh nonce, AAD),
            per-file X25519-wrapped data key, then seal/chain/HMAC as usual

All three get the same llm.completion payload through ``logger.info(..., extra=...)`` and
rotate at the same size; rounds alternate (in rotating order) so all see the same machine
state, and the best round of each is reported, with the median of the per-round
encrypted/baseline ratios ("meets" needs both at 1.0 or above). Afterwards the encrypted log of the last round is verified
(signing key only) and decrypted (auditor key), and both are reported in records/s.
Usage: python benchmarks/bench_encrypted.py [--records N] [--rounds R]
"""

from __future__ import annotations

import argparse
import logging
import logging.handlers
import shutil
import statistics
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

from bench_pipeline import PAYLOAD  # the same record as the plain benchmark
from pythonjsonlogger.json import JsonFormatter

from llm_audit_log import AuditFileHandler, AuditFilter, Keyring, verify_paths
from llm_audit_log.verify import DecryptedLine, decrypt_paths

MAX_BYTES = 64 * 1024 * 1024


def _run(logger: logging.Logger, n: int) -> float:
    info = logger.info
    extra = {"audit": PAYLOAD}
    start = time.perf_counter()
    for _ in range(n):
        info("model answered", extra=extra)
    return time.perf_counter() - start


def _logger(name: str, handler: logging.Handler, keyring: Keyring | None) -> logging.Logger:
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if keyring is not None:
        logger.addFilter(AuditFilter(keyring=keyring, environment="bench", service="bench"))
    logger.addHandler(handler)
    return logger


def bench_baseline(directory: Path, n: int, tag: str) -> float:
    handler = logging.handlers.RotatingFileHandler(directory / "baseline.log",
                                                   maxBytes=MAX_BYTES, backupCount=5)
    handler.setFormatter(JsonFormatter())
    logger = _logger(f"bench.baseline.{tag}", handler, None)
    try:
        return n / _run(logger, n)
    finally:
        logger.removeHandler(handler)
        handler.close()


def bench_ours(directory: Path, n: int, tag: str, keyring: Keyring, **options: object) -> float:
    handler = AuditFileHandler(directory / "audit.jsonl", maxBytes=MAX_BYTES, keyring=keyring,
                               **options)  # type: ignore[arg-type]
    logger = _logger(f"bench.ours.{tag}", handler, keyring)
    try:
        return n / _run(logger, n)
    finally:
        logger.removeHandler(handler)
        handler.close()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    auditor_ring = Keyring.generate()
    host_ring = auditor_ring.without_auditor_key()  # the host holds the public half only
    print(f"Python {sys.version.split()[0]} ({sys.implementation.name}); "
          f"records per round: {args.records}, rounds: {args.rounds}; best round reported")
    base, plain, enc = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        last = Path(tmp)
        for r in range(args.rounds):
            d = Path(tmp) / f"r{r}"
            (d / "plain").mkdir(parents=True)
            (d / "enc").mkdir()
            runs = [
                (base, partial(bench_baseline, d, args.records, f"{r}")),
                (plain, partial(bench_ours, d / "plain", args.records, f"p{r}", host_ring)),
                (enc, partial(bench_ours, d / "enc", args.records, f"e{r}", host_ring,
                              encrypt="auditor")),
            ]
            for index in range(3):  # rotate the order: no variant always runs first
                results, run_one = runs[(index + r) % 3]
                results.append(run_one())
            if r + 1 < args.rounds:  # keep page-cache pressure equal: drop finished rounds
                shutil.rmtree(d)
            last = d / "enc"
        sizes = {name: sum(p.stat().st_size for p in (last.parent / sub).glob(pattern))
                 / args.records for name, sub, pattern in (
                     ("baseline", ".", "baseline.log*"), ("plain", "plain", "*.jsonl"),
                     ("encrypted", "enc", "*.jsonl"))}
        b, p, e = max(base), max(plain), max(enc)
        print(f"  baseline   RotatingFileHandler + JsonFormatter : {b:10,.0f} records/s")
        print(f"  plain      our pipeline, no encryption         : {p:10,.0f} records/s")
        print(f"  encrypted  our pipeline, encrypt='auditor'     : {e:10,.0f} records/s")
        median = statistics.median(x / y for x, y in zip(enc, base, strict=True))
        print(f"  ratio encrypted/baseline: {e / b:.2f}x, median round {median:.2f}x  "
              f"({'meets' if min(e / b, median) >= 1.0 else 'misses'} target >= 1.0)")
        print(f"  encryption adds {1e6 / e - 1e6 / p:+.2f} us per record "
              f"(plain {1e6 / p:.2f} us, encrypted {1e6 / e:.2f} us)")
        print("  bytes per record on disk: " + ", ".join(
            f"{name} {size:,.0f}" for name, size in sizes.items()))

        start = time.perf_counter()
        report = verify_paths([last], host_ring)
        verify_s = time.perf_counter() - start
        assert report.exit_code == 0, report.findings[:3]
        start = time.perf_counter()
        run = decrypt_paths([last], auditor_ring)  # verifies first, then decrypts
        verified = time.perf_counter()
        shown = sum(1 for item in run if isinstance(item, DecryptedLine) and item.encrypted)
        decrypt_s = time.perf_counter() - start
        pass_s = time.perf_counter() - verified
        assert run.exit_code == 0
        assert shown == args.records
        print(f"  verify (signing key only, no decryption) : {report.lines_verified / verify_s:10,.0f}"
              " records/s")
        print(f"  decrypt (verify pass + decrypt pass)     : {shown / decrypt_s:10,.0f} records/s")
        print(f"    of which the decrypt pass alone        : {shown / pass_s:10,.0f} records/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
