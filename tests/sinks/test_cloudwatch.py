"""CloudWatch sink and handler, in process (moto's mock_aws): limits, chunks, spill, counters."""

from __future__ import annotations

import json
import logging
import os
import secrets
import stat
import threading
import time
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from llm_audit_log import AuditFileHandler, AuditFilter, Verdict, verify_paths
from llm_audit_log.sinks._batching import (
    MAX_BATCH_EVENTS,
    MAX_EVENT_BYTES,
    BatchBuilder,
    Event,
    batch_problems,
    parse_chunk,
    split_line,
)
from llm_audit_log.sinks._delivery import cloudwatch_retention
from llm_audit_log.sinks._sender import IGNORED_LOGGERS
from llm_audit_log.sinks._spill import Spill
from llm_audit_log.sinks.cloudwatch import CloudWatchHandler, CloudWatchSink
from llm_audit_log.verify import verify_cloudwatch
from llm_audit_log.verify._cloudwatch import (
    StreamLines,
    cross_check,
    read_streams,
    verify_streams,
)

REGION = "us-east-1"


@pytest.fixture
def aws(monkeypatch):
    """moto in process, with dummy credentials; yields a logs client."""
    for name, value in (("AWS_ACCESS_KEY_ID", "testing"), ("AWS_SECRET_ACCESS_KEY", "testing"),
                        ("AWS_DEFAULT_REGION", REGION)):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        yield boto3.client("logs", region_name=REGION)


class Recorder:
    """A client factory wrapping moto's client: records every batch, can fail or reject."""

    def __init__(self, fail_until: float = 0.0, reject_last: int = 0,
                 error: str = "ThrottlingException") -> None:
        self.batches: list[list[Event]] = []
        self.fail_until = fail_until
        self.reject_last = reject_last
        self.error = error
        self.failures = 0

    def __call__(self) -> Any:
        real = boto3.client("logs", region_name=REGION)
        recorder = self

        class Client:
            exceptions = real.exceptions

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

            def put_log_events(self, **kw: Any) -> Any:
                events = [Event(e["timestamp"], e["message"].encode()) for e in kw["logEvents"]]
                if time.monotonic() < recorder.fail_until:
                    recorder.failures += 1
                    raise ClientError({"Error": {"Code": recorder.error, "Message": "x"}},
                                      "PutLogEvents")
                recorder.batches.append(events)
                if recorder.reject_last:
                    n, recorder.reject_last = recorder.reject_last, 0
                    keep = len(kw["logEvents"]) - n
                    kw["logEvents"] = kw["logEvents"][:keep]
                    response = real.put_log_events(**kw) if kw["logEvents"] else {}
                    response["rejectedLogEventsInfo"] = {"tooNewLogEventStartIndex": keep}
                    return response
                return real.put_log_events(**kw)

        return Client()


def line_of(size: int, seq: int = 0) -> bytes:
    """A line-shaped blob of exactly ``size`` bytes."""
    head = b'{"alg":"HS256","body":{"seq":%d,"x":"' % seq
    return head + b"a" * (size - len(head) - 3) + b'"}}'


NOW = int(time.time() * 1000)


@pytest.fixture
def cw_logger(aws, keyring, tmp_path):
    """Make a uniquely named logger with a CloudWatchHandler; closes them afterwards."""
    made: list[logging.Logger] = []

    def make(group: str = "audit", **options: Any) -> logging.Logger:
        options.setdefault("spill_dir", str(tmp_path / "spill"))
        options.setdefault("create_group", True)
        options.setdefault("region", REGION) if "client_factory" not in options else None
        logger = logging.getLogger(f"tests.cw.{secrets.token_hex(6)}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(CloudWatchHandler(group, keyring=keyring, **options))
        made.append(logger)
        return logger

    yield make
    for logger in made:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


class TestBatchBuilder:
    def test_burst_over_10000_events_is_split(self):
        """A burst of 25,000 small events becomes batches of at most 10,000, none lost."""
        builder = BatchBuilder()
        batches = []
        for i in range(25_000):
            event = Event(1_000 + i, b"x" * 10)
            if not builder.add(event):
                batches.append(builder.take())
                assert builder.add(event)
        batches.append(builder.take())
        assert 25_000 == sum(len(b) for b in batches)
        assert all(not batch_problems(b) for b in batches)
        assert MAX_BATCH_EVENTS == max(len(b) for b in batches)

    def test_bytes_limit_counts_26_bytes_per_event(self):
        """A batch stops before message bytes plus 26 per event pass 1,048,576."""
        builder = BatchBuilder()
        size = 1000
        added = 0
        while builder.add(Event(1, b"y" * size)):
            added += 1
        assert added == 1_048_576 // (size + 26)

    def test_timestamps_sorted_and_24h_span_refused(self):
        """take() sorts by time; an event 24 h + 1 ms away from the first starts a new batch."""
        builder = BatchBuilder()
        assert builder.add(Event(5, b"b"))
        assert builder.add(Event(3, b"a"))
        assert not builder.add(Event(5 + 24 * 3600 * 1000 + 1, b"c"))
        assert [3, 5] == [e.ts_ms for e in builder.take()]


class TestChunking:
    def test_line_that_fits_is_one_event(self):
        """A line of exactly the event limit (minus 26) is sent whole."""
        line = line_of(MAX_EVENT_BYTES - 26)
        assert [Event(7, line)] == split_line(line, 3, 7)

    def test_line_over_the_limit_becomes_chunks_that_reassemble(self):
        """Over 1 MB: chunks i of n with the whole line's hash; joined, they give the line back."""
        line = ("é" * 700_000).encode()  # 1.4 MB of two-byte characters
        events = split_line(line, 9, 1)
        assert len(events) > 1
        parts = [parse_chunk(e.message) for e in events]
        assert all(p is not None for p in parts)
        assert [p[0].position for p in parts] == list(range(1, len(events) + 1))
        assert line == b"".join(p[1] for p in parts)
        for e in events:
            e.message.decode("utf-8")  # every chunk cut on a UTF-8 boundary
        assert not batch_problems(events[:1])


class TestSenderLimits:
    def test_every_batch_within_limits_near_and_over_1mb(self, aws, tmp_path):
        """Lines near and over 1 MB and a burst over 10,000: every batch put is valid."""
        rec = Recorder()
        sink = CloudWatchSink("g", client_factory=rec, create_group=True,
                              spill_dir=tmp_path / "spill", send_interval=0.2)
        lines = [line_of(MAX_EVENT_BYTES - 26), line_of(MAX_EVENT_BYTES - 20),
                 line_of(MAX_EVENT_BYTES + 10_000), line_of(900_000)]
        lines += [line_of(60, i) for i in range(12_000)]
        for seq, line in enumerate(lines):
            sink.submit(line + b"\n", seq, NOW + seq)
        assert sink.flush(30)
        sink.close()
        assert rec.batches
        for batch in rec.batches:
            assert [] == batch_problems(batch)
        counters = sink.counters
        assert 2 == counters["chunked"]  # the two lines over the event limit
        assert counters["sent"] == sum(len(b) for b in rec.batches)
        assert 0 == counters["dropped"] + counters["spilled"]


class TestDurability:
    def test_outage_spills_then_replays_in_order(self, aws, tmp_path):
        """Throttled puts go to a 0600 spill; flush() is False until the service returns."""
        rec = Recorder(fail_until=time.monotonic() + 1.5)
        sink = CloudWatchSink("g", client_factory=rec, create_group=True,
                              spill_dir=tmp_path / "spill", send_interval=0.05, max_backoff=0.3)
        for seq in range(500):
            sink.submit(line_of(100, seq), seq, NOW + seq)
        assert not sink.flush(0.5)
        spills = list((tmp_path / "spill").glob("*.spill"))
        assert spills
        assert 0o600 == stat.S_IMODE(os.stat(spills[0]).st_mode)
        assert 0o700 == stat.S_IMODE(os.stat(tmp_path / "spill").st_mode)
        assert sink.flush(15)
        counters = sink.counters
        sink.close()
        assert counters["retried"] >= 1
        assert counters["spilled"] >= 1
        assert 500 == sum(len(b) for b in rec.batches)
        assert [] == list((tmp_path / "spill").glob("*.spill"))

    def test_a_hung_put_at_close_loses_nothing_not_even_a_full_batch_s_overflow(
            self, aws, tmp_path):
        """
        More lines than one batch holds, and the put of the full batch never answers:
        close() spills the batch, the line that did not fit it and the queue, every one.
        """
        release = threading.Event()

        class Hanging:
            exceptions = boto3.client("logs", region_name=REGION).exceptions

            def put_log_events(self, **kw: Any) -> Any:
                release.wait(30)
                return {}

            def __getattr__(self, name: str) -> Any:
                return lambda **kw: {}

        sink = CloudWatchSink("g", client_factory=Hanging, spill_dir=tmp_path / "spill",
                              send_interval=0.05)
        total = MAX_BATCH_EVENTS + 5
        for seq in range(total):
            sink.submit(line_of(60, seq), seq, NOW + seq)
        time.sleep(0.5)  # the first full batch is now in the hanging put
        try:
            assert not sink.close(0.5)
        finally:
            release.set()
        replay = Spill(str(tmp_path / "spill"), sink._spill.destination)  # its own files
        assert 1 == replay.adopt_orphans()
        seqs = []
        while (batch := replay.next_batch()) is not None:
            seqs += [json.loads(e.message[e.message.index(b'"seq":') + 6:].split(b",")[0])
                     for e in batch.events]
            replay.ack(batch)
        replay.close()
        assert list(range(total)) == sorted(set(seqs))
        assert 0 == sink.counters["dropped"]

    def test_orphan_spill_is_replayed_by_the_next_sender(self, aws, tmp_path):
        """What one sender left in its spill (service down at close) arrives with the next."""
        down = Recorder(fail_until=time.monotonic() + 3600)
        first = CloudWatchSink("g", client_factory=down, create_group=True,
                               spill_dir=tmp_path / "spill", send_interval=0.05,
                               close_timeout=1.0)
        for seq in range(50):
            first.submit(line_of(100, seq), seq, NOW + seq)
        assert not first.close()
        assert list((tmp_path / "spill").glob("*.spill"))
        up = Recorder()
        second = CloudWatchSink("g", client_factory=up, create_group=True,
                                spill_dir=tmp_path / "spill", send_interval=0.05)
        assert second.flush(10)
        second.close()
        assert 50 == sum(len(b) for b in up.batches)
        assert [] == list((tmp_path / "spill").glob("*.spill"))

    def test_queue_full_blocks_up_to_block_timeout_then_spills(self, aws, tmp_path):
        """on_full='block' (the default): the caller waits up to block_timeout, then spills."""
        rec = Recorder()
        slow = rec()
        real_put = slow.put_log_events

        sending = threading.Event()

        def put_slowly(**kw: Any) -> Any:
            if not sending.is_set():
                sending.set()
                time.sleep(0.5)  # a slow first put: the sender is busy, the queue fills
            return real_put(**kw)

        slow.put_log_events = put_slowly
        sink = CloudWatchSink("g", client_factory=lambda: slow, create_group=True,
                              queue_size=10, block_timeout=0.2, spill_dir=tmp_path / "spill",
                              send_interval=0.05)
        for seq in range(5):
            sink.submit(line_of(100, seq), seq, NOW + seq)
        assert sending.wait(10)  # the first batch is on its way (0.5 s)
        waits = []
        for seq in range(5, 60):
            started = time.monotonic()
            sink.submit(line_of(100, seq), seq, NOW + seq)
            waits.append(time.monotonic() - started)
        assert max(waits) >= 0.15  # some callers waited for room ...
        assert max(waits) < 2.0  # ... but never much past block_timeout
        assert sink.counters["spilled"] > 0  # then the line went to the spill
        assert sink.flush(20)
        sink.close()
        assert 0 == sink.counters["dropped"]
        assert 60 == sum(len(b) for b in rec.batches)

    def test_queue_full_spills_instead_of_dropping(self, aws, tmp_path):
        """on_full='spill': past queue_size, lines go to the spill; nothing is dropped."""
        rec = Recorder()
        sink = CloudWatchSink("g", client_factory=rec, create_group=True, queue_size=10,
                              on_full="spill", spill_dir=tmp_path / "spill", send_interval=5)
        for seq in range(200):
            sink.submit(line_of(100, seq), seq, NOW + seq)
        assert sink.flush(15)
        sink.close()
        assert sink.counters["spilled"] > 0  # the queue did overflow, into the spill
        assert 0 == sink.counters["dropped"]
        assert 200 == sum(len(b) for b in rec.batches)


class TestHandler:
    def test_records_verify_and_counters(self, cw_logger, aws, keyring, payload):
        """Header, events, footer: the stream verifies with exit 0; flush() reports delivery."""
        logger = cw_logger()
        for _ in range(300):
            logger.info("login", extra={"audit": payload()})
        handler = logger.handlers[0]
        assert handler.flush(10) is True
        assert handler.close() is True
        counters = handler.counters
        assert 302 == counters["sent"]
        report = verify_cloudwatch("audit", None, keyring, client=aws)
        assert 0 == report.exit_code, report.findings
        assert 300 == report.logs[0].events

    def test_rejected_events_become_a_signed_delivery_gap(self, cw_logger, aws, keyring, payload):
        """An event the service rejects is named by a gap line: DELIVERY_GAP (exit 3), not GAP."""
        rec = Recorder(reject_last=1)
        logger = cw_logger(client_factory=rec, send_interval=0.05)
        logger.info("login", extra={"audit": payload()})
        handler = logger.handlers[0]
        assert handler.flush(10)
        logger.info("login", extra={"audit": payload()})
        handler.close()
        assert 1 == handler.counters["rejected"]
        report = verify_cloudwatch("audit", None, keyring, client=aws)
        verdicts = {f.verdict for f in report.findings}
        assert Verdict.DELIVERY_GAP in verdicts
        assert Verdict.GAP not in verdicts
        assert 3 == report.exit_code

    def test_a_rejection_in_the_batch_close_sends_is_still_sealed(self, cw_logger, aws,
                                                                  keyring, payload):
        """close() delivers before it writes the footer: what is rejected then gets a gap line."""
        rec = Recorder(reject_last=1)
        logger = cw_logger(client_factory=rec, send_interval=60)  # nothing sent before close
        logger.info("login", extra={"audit": payload()})
        handler = logger.handlers[0]
        handler.close()
        assert 1 == handler.counters["rejected"]
        report = verify_cloudwatch("audit", None, keyring, client=aws)
        assert Verdict.DELIVERY_GAP in {f.verdict for f in report.findings}
        assert Verdict.GAP not in {f.verdict for f in report.findings}
        assert 3 == report.exit_code

    def test_a_record_too_large_for_a_line_is_rejected_visibly(self, cw_logger, aws, keyring):
        """Over the line limit, a record becomes a rejected record saying so; all verifies."""
        logger = cw_logger()
        logger.addFilter(AuditFilter(keyring=keyring, max_payload_bytes=8_000_000))
        logger.info("big", extra={"audit": {
            "event_type": "rag.query", "user_id": "u-1", "status": "success", "source": "s",
            "documents": [{"id": "😀" * 150, "score": 1.0, "source": "€" * 150}] * 1000}})
        handler = logger.handlers[0]
        assert handler.close(30)
        report = verify_cloudwatch("audit", None, keyring, client=aws)
        assert 0 == report.exit_code, report.findings
        assert 1 == report.logs[0].rejected

    def test_a_short_close_timeout_still_sends_the_footer(self, cw_logger, aws, keyring,
                                                          payload):
        """close(2): the footer goes to the service, not to the spill."""
        logger = cw_logger(close_timeout=2)
        logger.info("login", extra={"audit": payload()})
        handler = logger.handlers[0]
        assert handler.close()
        assert 0 == handler.counters["spilled"]
        assert 0 == verify_cloudwatch("audit", None, keyring, client=aws).exit_code

    def test_botocore_records_never_reach_the_handler(self, cw_logger, aws, payload):
        """Records from botocore/urllib3 loggers (and from the sender thread) are ignored."""
        logger = cw_logger()
        handler = logger.handlers[0]
        root = logging.getLogger()
        root.addHandler(handler)
        try:
            for name in IGNORED_LOGGERS:  # every library the sender itself logs through
                logging.getLogger(name).warning("noise")
                logging.getLogger(f"{name}.child").warning("noise")
            assert 0 == handler.counters["submitted"]
            logger.info("login", extra={"audit": payload()})
            assert handler.flush(10)
        finally:
            root.removeHandler(handler)
        assert 2 == handler.counters["submitted"]  # header and the one event

    def test_forked_child_gets_its_own_stream_and_log(self, cw_logger, aws, keyring, payload):
        """After fork the child starts its own log in its own stream, which verifies alone."""
        logger = cw_logger(send_interval=0.05)
        logger.info("parent", extra={"audit": payload()})
        handler = logger.handlers[0]
        assert handler.flush(10)
        parent_stream = handler.sink.stream_name
        pid = os.fork()
        if pid == 0:  # child: in-process moto state is the child's own copy, so check here
            code = 1
            try:
                for _ in range(20):
                    logger.info("child", extra={"audit": payload()})
                stream = handler.sink.stream_name
                code = 9 if stream == parent_stream or not handler.close() else 0
                if code == 0:
                    report = verify_cloudwatch("audit", [stream], keyring,
                                               client=boto3.client("logs", region_name=REGION))
                    code = report.exit_code if report.logs[0].events == 20 else 8
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        handler.close()
        report = verify_cloudwatch("audit", [parent_stream], keyring, client=aws)
        assert 0 == report.exit_code, report.findings
        assert 1 == report.logs[0].events

    def test_bad_options_name_the_key(self, aws, keyring, tmp_path):
        """Configuration errors name the option."""
        with pytest.raises(ValueError, match="on_full"):
            CloudWatchHandler("g", keyring=keyring, on_full="drop", spill_dir=tmp_path)
        with pytest.raises(ValueError, match="unknown option"):
            AuditFileHandler(tmp_path / "a.jsonl", keyring=keyring,
                             cloudwatch={"log_group": "g", "nope": 1})

    def test_retention_rounds_up_to_an_allowed_value(self):
        """A 183-day class becomes 365 days in CloudWatch (never shorter)."""
        assert 365 == cloudwatch_retention(183)
        assert 400 == cloudwatch_retention(366)
        assert 2192 == cloudwatch_retention(2192)


class TestMirror:
    def test_files_and_stream_hold_the_same_lines(self, aws, keyring, tmp_path, payload):
        """One chain, two sinks: both verify alone, and the cross-check finds nothing."""
        handler = AuditFileHandler(tmp_path / "logs" / "audit.jsonl", keyring=keyring,
                                   maxBytes=8192, cloudwatch={
                                       "log_group": "mirror", "create_group": True,
                                       "region": REGION, "send_interval": 0.1})
        logger = logging.getLogger(f"tests.mirror.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        for _ in range(200):
            logger.info("login", extra={"audit": payload()})
        handler.close()
        assert [] == list((tmp_path / "logs").glob("*.spill"))  # hidden spill dir unused
        files = verify_paths([tmp_path / "logs"], keyring)
        assert 0 == files.exit_code, files.findings
        stream = verify_cloudwatch("mirror", None, keyring, client=aws,
                                   against=[tmp_path / "logs"])
        assert 0 == stream.exit_code, stream.findings
        assert files.logs[0].lines == stream.logs[0].lines

    def test_cross_check_finds_lines_missing_locally(self, aws, keyring, tmp_path, payload):
        """Lines cut from the local file are reported by --against."""
        target = tmp_path / "logs" / "audit.jsonl"
        handler = AuditFileHandler(target, keyring=keyring, cloudwatch={
            "log_group": "mirror", "create_group": True, "region": REGION})
        logger = logging.getLogger(f"tests.mirror.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        for _ in range(20):
            logger.info("login", extra={"audit": payload()})
        handler.close()
        path = next((tmp_path / "logs").glob("audit-*.jsonl"))
        lines = path.read_bytes().splitlines(keepends=True)
        path.write_bytes(b"".join(lines[:-3]))  # attacker cuts the end (footer included)
        report = verify_cloudwatch("mirror", None, keyring, client=aws,
                                   against=[tmp_path / "logs"])
        assert any(f.verdict is Verdict.GAP and "missing from the local files" in f.detail
                   for f in report.findings)
        assert 1 == report.exit_code


    @staticmethod
    def _run(logs: Path, keyring: Any, payload: Any, group: str | None,
             handler_class: type[AuditFileHandler] = AuditFileHandler, records: int = 1) -> None:
        options = {"cloudwatch": {"log_group": group, "create_group": True,
                                  "region": REGION}} if group else {}
        handler = handler_class(logs / "audit.jsonl", keyring=keyring, **options)
        logger = logging.getLogger(f"tests.mirror.{secrets.token_hex(6)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        for _ in range(records):
            logger.info("login", extra={"audit": payload()})
        handler.close()

    def test_mirroring_added_to_a_running_log_verifies_from_where_it_began(
            self, aws, keyring, tmp_path, payload):
        """
        CloudWatch added to a log that already has lines: the first mirrored file's signed
        header says so, and the stream verifies alone from there (MIRROR_START, exit 0).
        The local files never get that excuse: cut to the same file, they miss a prefix.
        """
        logs = tmp_path / "logs"
        for group in (None, "late", "late"):
            self._run(logs, keyring, payload, group)

        stream = verify_cloudwatch("late", None, keyring, client=aws)
        crossed = verify_cloudwatch("late", None, keyring, client=aws, against=[logs])
        files = sorted(logs.glob("audit-*.jsonl"))
        headers = [json.loads(p.read_bytes().split(b"\n")[0])["body"] for p in files]

        assert 0 == verify_paths([logs], keyring).exit_code
        assert [None, ["cloudwatch:late"], None] == [h.get("mirror_starts") for h in headers]
        assert 0 == stream.exit_code, stream.findings
        assert [Verdict.MIRROR_START] == [f.verdict for f in stream.findings
                                          if f.verdict is not Verdict.RESUMED]
        assert 0 == crossed.exit_code, crossed.findings
        files[0].unlink()  # the local copy cut to the first mirrored file: not excused
        assert Verdict.MISSING_PREFIX in {f.verdict for f in
                                          verify_paths([logs], keyring).findings}

    def test_a_header_of_an_earlier_release_never_yields_a_mirror_start(self, aws, keyring,
                                                                       tmp_path, payload):
        """Mirrored since genesis by a release that did not say so: no excuse is signed."""

        class EarlierRelease(AuditFileHandler):
            def _write_body(self, kind: str, body: dict[str, Any]) -> None:
                body.pop("mirrored_to", None)
                super()._write_body(kind, body)

        logs = tmp_path / "logs"
        self._run(logs, keyring, payload, "g", EarlierRelease)
        self._run(logs, keyring, payload, "g")
        headers = [json.loads(p.read_bytes().split(b"\n")[0])["body"]
                   for p in sorted(logs.glob("audit-*.jsonl"))]
        assert [None, None] == [h.get("mirror_starts") for h in headers]
        assert [None, ["cloudwatch:g"]] == [h.get("mirrored_to") for h in headers]

    def test_an_excuse_covers_only_its_own_group_and_only_unmirrored_files(
            self, aws, keyring, tmp_path, payload):
        """
        Mirrored to /audit/prod, then a run without mirroring, then /audit/prod again (a
        mirror start). Lines cut from the stream before that start are found by --against,
        and the copy passed off under another group gets no excuse.
        """
        logs = tmp_path / "logs"
        for group in ("/audit/prod", None, "/audit/prod"):
            self._run(logs, keyring, payload, group)
        streams = read_streams(aws, "/audit/prod", None)
        (last,) = [s for s in streams if b'"mirror_starts"' in s.lines[0]]
        cut = StreamLines("/audit/prod", last.stream, lines=list(last.lines))  # run 1 deleted
        report = verify_streams([cut], keyring)
        cross_check(report, [cut], [str(logs)], keyring)
        elsewhere = verify_streams([StreamLines("/audit", "s", lines=list(last.lines))],
                                   keyring)

        assert 2 == len(streams)
        assert Verdict.MIRROR_START in {f.verdict for f in report.findings}
        missing = [f for f in report.findings if f.verdict is Verdict.GAP]
        assert 1 == len(missing) and "missing from CloudWatch" in missing[0].detail
        assert "seq 0..2" in missing[0].detail  # the first run's file, not the second's
        assert Verdict.MISSING_PREFIX in {f.verdict for f in elsewhere.findings}

    def test_a_log_cut_back_to_a_clean_close_is_caught_by_the_stream(self, aws, keyring,
                                                                    tmp_path, payload):
        """
        Every file of the second run deleted: the files alone end in a signed close and
        verify (nothing on the host can tell); the CloudWatch copy reports what is missing.
        """
        logs = tmp_path / "logs"
        self._run(logs, keyring, payload, "mirror", records=10)
        first_run = sorted(logs.glob("audit-*.jsonl"))
        self._run(logs, keyring, payload, "mirror", records=10)
        for path in sorted(logs.glob("audit-*.jsonl")):
            if path not in first_run:
                path.unlink()

        alone = verify_paths([logs], keyring)
        crossed = verify_cloudwatch("mirror", None, keyring, client=aws, against=[logs])

        assert 0 == alone.exit_code and alone.logs[0].closed  # the documented limit
        assert any(f.verdict is Verdict.GAP and "missing from the local files" in f.detail
                   for f in crossed.findings)
        assert 1 == crossed.exit_code


class TestStreamAttacks:
    def _stream(self, cw_logger, payload, n=10):
        logger = cw_logger()
        for _ in range(n):
            logger.info("login", extra={"audit": payload()})
        handler = logger.handlers[0]
        handler.close()
        return handler.sink.stream_name

    def _put(self, aws, stream, message, ts=None):
        aws.put_log_events(logGroupName="audit", logStreamName=stream, logEvents=[
            {"timestamp": ts or int(time.time() * 1000), "message": message}])

    def _messages(self, aws, stream):
        return [e["message"] for e in aws.get_log_events(
            logGroupName="audit", logStreamName=stream, startFromHead=True)["events"]]

    def test_byte_identical_duplicates_are_benign(self, cw_logger, aws, keyring, payload):
        """A retried put leaves duplicates: no alarm (item 29)."""
        stream = self._stream(cw_logger, payload)
        for message in self._messages(aws, stream)[3:6]:
            self._put(aws, stream, message)
        assert 0 == verify_cloudwatch("audit", [stream], keyring, client=aws).exit_code

    def test_same_seq_other_bytes_is_a_fork_or_tampering(self, cw_logger, aws, keyring, payload):
        """A forged event with a taken sequence number is reported (items 28-29)."""
        stream = self._stream(cw_logger, payload)
        message = self._messages(aws, stream)[4]
        self._put(aws, stream, message.replace('"status":"success"', '"status":"failure"'))
        report = verify_cloudwatch("audit", [stream], keyring, client=aws)
        assert 1 == report.exit_code
        assert Verdict.TAMPERED in {f.verdict for f in report.findings}

    def test_events_out_of_sequence_order_are_fine(self, cw_logger, aws, keyring, payload):
        """The service orders by timestamp; the verifier orders by seq (item 30)."""
        stream = self._stream(cw_logger, payload, n=3)
        group = "audit"
        messages = self._messages(aws, stream)
        aws.create_log_stream(logGroupName=group, logStreamName="shuffled")
        now = int(time.time() * 1000)
        aws.put_log_events(logGroupName=group, logStreamName="shuffled", logEvents=[
            {"timestamp": now, "message": m} for m in reversed(messages)])
        assert 0 == verify_cloudwatch(group, ["shuffled"], keyring, client=aws).exit_code

    def test_deleted_event_is_a_gap(self, cw_logger, aws, keyring, payload):
        """An event missing from a stream with no gap record: GAP (exit 1)."""
        stream = self._stream(cw_logger, payload, n=5)
        messages = self._messages(aws, stream)
        aws.create_log_stream(logGroupName="audit", logStreamName="cut")
        now = int(time.time() * 1000)
        aws.put_log_events(logGroupName="audit", logStreamName="cut", logEvents=[
            {"timestamp": now, "message": m} for i, m in enumerate(messages) if i != 2])
        report = verify_cloudwatch("audit", ["cut"], keyring, client=aws)
        assert Verdict.GAP in {f.verdict for f in report.findings}


class TestShippedConfigs:
    @pytest.mark.parametrize("name", ["cloudwatch.json", "cloudwatch.yaml"])
    def test_config_loads_and_ships(self, aws, tmp_path, monkeypatch, name, payload):
        """The shipped configs load through dictConfig; files and stream both verify."""
        import logging.config

        import yaml

        from llm_audit_log import Keyring

        monkeypatch.chdir(tmp_path)
        ring = Keyring.generate()
        ring.save(tmp_path / "keyring.json")
        monkeypatch.setenv("LLM_AUDIT_KEYRING", str(tmp_path / "keyring.json"))
        monkeypatch.setenv("AWS_REGION", REGION)
        text = (Path(__file__).resolve().parents[2] / "logging_configs" / name).read_text()
        config = yaml.safe_load(text) if name.endswith(".yaml") else json.loads(text)
        audit = logging.getLogger("audit")
        saved = (audit.handlers[:], audit.filters[:], audit.level, audit.propagate)
        try:
            logging.config.dictConfig(config)
            for _ in range(5):
                audit.info("login", extra={"audit": payload()})
            for handler in audit.handlers:
                handler.close()
        finally:
            audit.handlers[:], audit.filters[:] = saved[0], saved[1]
            audit.setLevel(saved[2])
            audit.propagate = saved[3]
        group = config["handlers"]["audit_cloudwatch"]["log_group"]
        report = verify_cloudwatch(group, None, ring, client=aws)
        assert 0 == report.exit_code, report.findings
        assert 5 == sum(log.events for log in report.logs)


class TestSharedSpillDirectory:
    def test_a_sender_replays_only_what_was_spilled_for_its_own_destination(self, tmp_path):
        """Two handlers, one spill directory: neither replays the other's lines."""
        directory = str(tmp_path / "spill")
        for destination in ("aaaa", "bbbb", ""):  # "": as an earlier release named files
            spill = Spill(directory, destination)
            spill.append(f"group-{destination or 'legacy'}", "s", [Event(1, b"line")])
            spill.close()

        adopted = Spill(directory, "aaaa")
        assert 2 == adopted.adopt_orphans()  # its own, and the one that names no destination
        groups = set()
        while (batch := adopted.next_batch()) is not None:
            groups.add(batch.group)
            adopted.ack(batch)
        adopted.close()
        assert {"group-aaaa", "group-legacy"} == groups
        assert 1 == len(list((tmp_path / "spill").glob("*.bbbb.spill")))
