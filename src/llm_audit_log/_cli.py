"""llm-audit: keygen, verify, decrypt, demo."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence

from llm_audit_log.context import utc_now
from llm_audit_log.encrypt import kms_client_factory
from llm_audit_log.errors import KeyringError, SourceUnreadableError, VerificationError
from llm_audit_log.keys import (
    DEFAULT_KEYRING_SOURCE,
    AuditorKey,
    Keyring,
    load_auditor_key,
    load_keyring,
)
from llm_audit_log.verify import (
    DecryptedLine,
    Report,
    decrypt_cloudwatch,
    decrypt_paths,
    verify_cloudwatch,
    verify_paths,
)
from llm_audit_log.verify.report import ProgressDisplay, render_json, render_text
from llm_audit_log.verify.verdicts import EXIT_CANNOT_VERIFY, EXIT_OK, EXIT_USAGE

__all__ = ["main"]


def _keygen(args: argparse.Namespace) -> int:
    if args.rotate and args.add_auditor:
        print("llm-audit keygen: use --rotate or --add-auditor, not both", file=sys.stderr)
        return EXIT_USAGE
    if args.auditor_out is not None and args.rotate:
        print("llm-audit keygen: --auditor-out applies to a new keyring or --add-auditor "
              "(--rotate keeps the existing auditor key)", file=sys.stderr)
        return EXIT_USAGE
    if args.retire_old_after is not None and not args.rotate:
        print("llm-audit keygen: --retire-old-after applies with --rotate", file=sys.stderr)
        return EXIT_USAGE
    if args.add_auditor:
        return _add_auditor(args)
    if args.rotate:
        try:
            ring = load_keyring(args.out)
            new = ring.rotated(retire_old_after=args.retire_old_after)
            new.save(args.out, overwrite=True)
        except KeyringError as exc:
            print(f"llm-audit keygen: {exc}", file=sys.stderr)
            return EXIT_USAGE
        except OSError as exc:
            return _cannot_write(args.out, exc)
        print(f"rotated {args.out}: active key {new.active_kid} (old keys still verify)")
        old = new.info(ring.active_kid)
        retired = old.not_after if old is not None else None
        if retired is not None and retired < utc_now():
            print(f"note: {ring.active_kid} is retired as of {retired}, which has passed: "
                  "lines it signed after that are reported as KEY_INVALID (as after a "
                  "compromise)")
        return 0
    if args.auditor_out is not None:
        problem = None
        if os.path.abspath(args.auditor_out) == os.path.abspath(args.out):
            problem = "--auditor-out must differ from --out"
        elif os.path.exists(args.out) and not args.force:
            problem = f"keyring: {args.out} exists (refusing to overwrite keys)"
        if problem is not None:
            print(f"llm-audit keygen: {problem}", file=sys.stderr)
            return EXIT_USAGE
    code = _save_split(Keyring.generate(), args, overwrite=args.force)
    if code == 0:
        print(f"wrote keyring {args.out} (mode 0600). Point configs at it with "
              f"LLM_AUDIT_KEYRING={os.path.abspath(args.out)}")
    return code


def _cannot_write(path: str, exc: OSError) -> int:
    print(f"llm-audit keygen: cannot write {path}: {exc.strerror or type(exc).__name__}",
          file=sys.stderr)
    return EXIT_USAGE


def _save_split(ring: Keyring, args: argparse.Namespace, *, overwrite: bool) -> int:
    """Save ``ring``; with --auditor-out its auditor private key goes to a file of its own."""
    try:
        if args.auditor_out is not None:
            auditor = ring.auditor_key
            assert auditor is not None
            auditor.save(args.auditor_out, overwrite=args.force)
            ring = ring.without_auditor_key()
        ring.save(args.out, overwrite=overwrite)
    except KeyringError as exc:
        print(f"llm-audit keygen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except OSError as exc:  # a directory in the way, a read-only filesystem...
        return _cannot_write(exc.filename or args.out, exc)
    if args.auditor_out is not None:
        print(f"wrote the auditor's private key {args.auditor_out} (mode 0600); the keyring "
              f"keeps only its public half. Move it off this host: it decrypts every "
              f"encrypted log (llm-audit decrypt --auditor-key {args.auditor_out}).")
    return 0


def _add_auditor(args: argparse.Namespace) -> int:
    try:
        ring = load_keyring(args.out)
    except KeyringError as exc:
        print(f"llm-audit keygen: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if ring.auditor_kid is not None and not args.force:
        print(f"llm-audit keygen: {args.out} already names auditor key {ring.auditor_kid} "
              "(--force replaces it; files already written stay wrapped for the old one)",
              file=sys.stderr)
        return EXIT_USAGE
    if args.auditor_out is not None and os.path.abspath(args.auditor_out) == os.path.abspath(
            args.out):
        print("llm-audit keygen: --auditor-out must differ from --out", file=sys.stderr)
        return EXIT_USAGE
    new = ring.with_auditor_key(AuditorKey.generate())
    code = _save_split(new, args, overwrite=True)
    if code == 0:
        print(f"added auditor key {new.auditor_kid} to {args.out}; signing keys unchanged")
    return code


def _verify(args: argparse.Namespace) -> int:
    if args.cloudwatch is None and not args.paths:  # usage first: exit 2, not 4
        print("llm-audit verify: give log paths, or --cloudwatch GROUP", file=sys.stderr)
        return EXIT_USAGE
    if _stray_cloudwatch_options("verify", args):
        return EXIT_USAGE
    try:
        ring = load_keyring(args.keyring or DEFAULT_KEYRING_SOURCE)
    except KeyringError as exc:
        return _keyring_failed("verify", exc)
    if args.cloudwatch is not None:
        return _verify_cloudwatch(args, ring)
    progress = ProgressDisplay(_total_size(args.paths)) if not args.json else None
    try:
        report = verify_paths(args.paths, ring, progress=progress)
    except VerificationError as exc:
        return _verification_failed("verify", exc)
    finally:
        if progress is not None:
            progress.close()
    _print_report(report, as_json=args.json)
    return report.exit_code


def _print_report(report: Report, *, as_json: bool) -> None:
    """Print a report; a reader that went away (``| head``, ``| true``) ends it quietly."""
    try:
        print(render_json(report) if as_json else render_text(report), flush=True)
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _total_size(paths: list[str]) -> int:
    """Bytes to read, for the progress meter; what cannot be listed counts as 0 here."""
    total = 0
    for p in paths:
        try:
            if os.path.isdir(p):
                total += sum(e.stat().st_size for e in os.scandir(p) if e.is_file())
            elif os.path.isfile(p):
                total += os.path.getsize(p)
        except OSError:
            continue  # verify_paths reports it
    return total


def _verify_cloudwatch(args: argparse.Namespace, ring: Keyring) -> int:
    if args.paths:
        print("llm-audit verify: with --cloudwatch, give local files with --against",
              file=sys.stderr)
        return EXIT_USAGE
    try:
        report = verify_cloudwatch(args.cloudwatch, args.stream, ring, against=args.against,
                                   region=args.region, endpoint_url=args.endpoint_url,
                                   profile=args.profile)
    except VerificationError as exc:
        return _verification_failed("verify", exc)
    _print_report(report, as_json=args.json)
    return report.exit_code


def _stray_cloudwatch_options(command: str, args: argparse.Namespace) -> bool:
    """Say so (and return True) if --cloudwatch companions came without --cloudwatch."""
    if args.cloudwatch is not None:
        return False
    given = {"--stream": args.stream, "--region": args.region,
             "--endpoint-url": args.endpoint_url, "--profile": args.profile,
             "--against": getattr(args, "against", None)}
    stray = [name for name, value in given.items() if value is not None]
    if stray:
        verb = "needs" if len(stray) == 1 else "need"
        print(f"llm-audit {command}: {', '.join(stray)} {verb} --cloudwatch GROUP",
              file=sys.stderr)
    return bool(stray)


def _keyring_failed(command: str, exc: KeyringError) -> int:
    print(f"llm-audit {command}: cannot verify: {exc}", file=sys.stderr)
    return EXIT_CANNOT_VERIFY


def _verification_failed(command: str, exc: VerificationError) -> int:
    """Unreadable logs were not checked (4); a missing path or bad usage is 2."""
    print(f"llm-audit {command}: {exc}", file=sys.stderr)
    return EXIT_CANNOT_VERIFY if isinstance(exc, SourceUnreadableError) else EXIT_USAGE


def _decrypt(args: argparse.Namespace) -> int:
    if (args.cloudwatch is None) == (not args.paths):  # usage first: exit 2, not 4
        print("llm-audit decrypt: give log paths, or --cloudwatch GROUP (not both)",
              file=sys.stderr)
        return EXIT_USAGE
    if _stray_cloudwatch_options("decrypt", args):
        return EXIT_USAGE
    try:
        ring = load_keyring(args.keyring or DEFAULT_KEYRING_SOURCE)
        # Without --auditor-key, decrypt_* fall back to the keyring's own auditor key.
        auditor: AuditorKey | None = (load_auditor_key(args.auditor_key)
                                      if args.auditor_key else None)
    except KeyringError as exc:
        return _keyring_failed("decrypt", exc)
    kms = kms_client_factory(args.kms_region, args.kms_endpoint_url)
    try:
        if args.cloudwatch is not None:
            run = decrypt_cloudwatch(args.cloudwatch, args.stream, ring, auditor_key=auditor,
                                     kms_client_factory=kms, region=args.region,
                                     endpoint_url=args.endpoint_url, profile=args.profile)
        else:
            run = decrypt_paths(args.paths, ring, auditor_key=auditor, kms_client_factory=kms)
    except VerificationError as exc:
        return _verification_failed("decrypt", exc)
    out = sys.stdout.buffer
    try:
        for item in run:
            if isinstance(item, DecryptedLine):
                out.write(item.to_json().encode("utf-8") + b"\n")
            else:
                out.flush()
                print(f"llm-audit decrypt: refused {item.describe()}", file=sys.stderr)
        out.flush()
    except BrokenPipeError:  # the reader went away (| head): stop quietly
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return run.exit_code
    code = run.exit_code
    print(f"llm-audit decrypt: {run.lines_shown} line(s) shown, {run.lines_refused} refused",
          file=sys.stderr)
    if code != EXIT_OK:
        print(render_text(run.report), file=sys.stderr)
    return code


def _demo(args: argparse.Namespace) -> int:
    from llm_audit_log._demo import run_demo  # noqa: PLC0415 - imports logging config machinery

    if args.rounds < 1:
        print("llm-audit demo: --rounds must be 1 or more", file=sys.stderr)
        return EXIT_USAGE
    try:
        keyring, dirs = run_demo(args.config, args.rounds)
    except (OSError, ValueError) as exc:  # a missing or malformed --config; bad config values
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"llm-audit demo: cannot use the config {args.config or ''}: {detail}",
              file=sys.stderr)
        return EXIT_USAGE
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
    keygen.add_argument("--add-auditor", action="store_true",
                        help="add an auditor key pair (for encrypt='auditor') to the existing "
                             "keyring, keeping its signing keys")
    keygen.add_argument("--auditor-out", metavar="PATH",
                        help="write the auditor's private key to PATH (0600) and keep only its "
                             "public half in the keyring")
    keygen.set_defaults(func=_keygen)

    verify = sub.add_parser("verify", help="verify log files or directories")
    verify.add_argument("paths", nargs="*", help="log files and/or directories")
    verify.add_argument("--keyring", help="keyring path or source (default: $LLM_AUDIT_KEYRING)")
    verify.add_argument("--json", action="store_true", help="print a JSON report")
    verify.add_argument("--cloudwatch", metavar="GROUP",
                        help="verify CloudWatch Logs streams of GROUP instead of files")
    verify.add_argument("--stream", action="append", metavar="NAME",
                        help="with --cloudwatch: this stream only (repeatable; default: all)")
    verify.add_argument("--against", action="append", metavar="PATH",
                        help="with --cloudwatch: cross-check with these local files or "
                             "directories (repeatable)")
    verify.add_argument("--region", help="AWS region for --cloudwatch (default: the AWS chain)")
    verify.add_argument("--endpoint-url", metavar="URL", help="CloudWatch Logs endpoint")
    verify.add_argument("--profile", help="AWS profile for --cloudwatch")
    verify.set_defaults(func=_verify)

    decrypt = sub.add_parser(
        "decrypt", help="verify encrypted logs, then print every line with its body decrypted "
                        "(JSON lines, chain order); refuses lines that fail")
    decrypt.add_argument("paths", nargs="*", help="log files and/or directories")
    decrypt.add_argument("--cloudwatch", metavar="GROUP",
                         help="read the lines from CloudWatch Logs streams of GROUP instead")
    decrypt.add_argument("--stream", action="append", metavar="NAME",
                         help="with --cloudwatch: this stream only (repeatable; default: all)")
    decrypt.add_argument("--region", help="AWS region for --cloudwatch (default: the AWS chain)")
    decrypt.add_argument("--endpoint-url", metavar="URL", help="CloudWatch Logs endpoint")
    decrypt.add_argument("--profile", help="AWS profile for --cloudwatch")
    decrypt.add_argument("--keyring", help="signing keyring path or source "
                                           "(default: $LLM_AUDIT_KEYRING)")
    decrypt.add_argument("--auditor-key", metavar="PATH",
                         help="the auditor's private key file (default: the keyring's, if it "
                              "holds one)")
    decrypt.add_argument("--kms-region", help="AWS region for KMS-wrapped files "
                                              "(default: the AWS chain)")
    decrypt.add_argument("--kms-endpoint-url", metavar="URL",
                         help="KMS endpoint (VPC endpoints, tests)")
    decrypt.set_defaults(func=_decrypt)

    demo = sub.add_parser("demo", help="log realistic events through the shipped config, "
                                       "then verify them")
    demo.add_argument("--config", help="dictConfig file, JSON or YAML (.yaml/.yml; needs PyYAML) "
                      "(default: logging_configs/local.json)")
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
