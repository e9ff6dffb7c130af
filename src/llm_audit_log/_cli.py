"""``llm-audit``: keygen, verify, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from llm_audit_log.errors import KeyringError, VerificationError
from llm_audit_log.keys import DEFAULT_KEYRING_SOURCE, Keyring, load_keyring
from llm_audit_log.verify import verify_paths
from llm_audit_log.verify.report import ProgressDisplay, render_json, render_text
from llm_audit_log.verify.verdicts import EXIT_CANNOT_VERIFY, EXIT_USAGE

__all__ = ["main"]


def _keygen(args: argparse.Namespace) -> int:
    if args.rotate:
        try:
            ring = load_keyring(args.out)
        except KeyringError as exc:
            print(f"llm-audit keygen: {exc}", file=sys.stderr)
            return EXIT_USAGE
        new = ring.rotated(retire_old_after=args.retire_old_after)
        new.save(args.out, overwrite=True)
        print(f"rotated {args.out}: active key {new.active_kid} (old keys still verify)")
        return 0
    try:
        Keyring.generate().save(args.out, overwrite=args.force)
    except KeyringError as exc:
        print(f"llm-audit keygen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote keyring {args.out} (mode 0600). Point configs at it with "
          f"LLM_AUDIT_KEYRING={args.out}")
    return 0


def _verify(args: argparse.Namespace) -> int:
    source = args.keyring or DEFAULT_KEYRING_SOURCE
    try:
        ring = load_keyring(source)
    except KeyringError as exc:
        print(f"llm-audit verify: cannot verify: {exc}", file=sys.stderr)
        return EXIT_CANNOT_VERIFY
    total = 0
    for p in args.paths:
        if os.path.isdir(p):
            total += sum(e.stat().st_size for e in os.scandir(p) if e.is_file())
        elif os.path.isfile(p):
            total += os.path.getsize(p)
    progress = ProgressDisplay(total) if not args.json else None
    try:
        report = verify_paths(args.paths, ring, progress=progress)
    except VerificationError as exc:
        print(f"llm-audit verify: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        if progress is not None:
            progress.close()
    print(render_json(report) if args.json else render_text(report))
    return report.exit_code


def _demo(args: argparse.Namespace) -> int:
    from llm_audit_log._demo import run_demo  # noqa: PLC0415 - imports logging config machinery

    keyring, dirs = run_demo(args.config, args.rounds)
    print(f"logged {args.rounds} round(s) of demo events into {', '.join(dirs)}")
    print(f"$ llm-audit verify --keyring {keyring} {' '.join(dirs)}")
    report = verify_paths(dirs, keyring)
    print(render_text(report))
    return report.exit_code


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for the docs and tests)."""
    parser = argparse.ArgumentParser(prog="llm-audit", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    keygen = sub.add_parser("keygen", help="create (or rotate) a keyring file, mode 0600")
    keygen.add_argument("--out", required=True, help="keyring file to write")
    keygen.add_argument("--force", action="store_true", help="overwrite an existing file")
    keygen.add_argument("--rotate", action="store_true",
                        help="add a new active signing key to the existing keyring")
    keygen.add_argument("--retire-old-after", metavar="ISO8601Z",
                        help="with --rotate: end the old key's validity window at this time")
    keygen.set_defaults(func=_keygen)

    verify = sub.add_parser("verify", help="verify log files or directories")
    verify.add_argument("paths", nargs="+", help="log files and/or directories")
    verify.add_argument("--keyring", help="keyring path or source (default: $LLM_AUDIT_KEYRING)")
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.set_defaults(func=_verify)

    demo = sub.add_parser("demo", help="log realistic events through the shipped config, "
                                       "then verify them")
    demo.add_argument("--config", help="dictConfig JSON (default: logging_configs/local.json)")
    demo.add_argument("--rounds", type=int, default=1, help="how many times to log the set")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``llm-audit`` and ``python -m llm_audit_log``."""
    args = build_parser().parse_args(argv)
    code: int = args.func(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
