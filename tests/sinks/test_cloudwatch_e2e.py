"""
End to end against moto's real HTTP server: zero loss and a verifying chain under faults.

Every test ships through HTTP on loopback and ends with ``llm-audit verify --cloudwatch``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from llm_audit_log._cli import main
from llm_audit_log.sinks.cloudwatch import CloudWatchHandler

pytestmark = pytest.mark.slow
REGION = "us-east-1"


@pytest.fixture
def ship(server, keyring, tmp_path):
    """Make a logger with a CloudWatchHandler on the moto server, in a fresh log group."""
    made: list[logging.Logger] = []
    group = f"e2e-{secrets.token_hex(4)}"

    def make(**options: Any) -> logging.Logger:
        options.setdefault("spill_dir", str(tmp_path / "spill"))
        options.setdefault("create_group", True)
        if "client_factory" not in options:
            options.setdefault("endpoint_url", server["url"])
            options.setdefault("region", REGION)
        options.setdefault("max_backoff", 1.0)
        logger = logging.getLogger(f"tests.e2e.{secrets.token_hex(6)}")
        logger.setLevel(logging.INFO)
        logger.propagate = False
        logger.addHandler(CloudWatchHandler(group, keyring=keyring, **options))
        made.append(logger)
        return logger

    make.group = group  # type: ignore[attr-defined]
    yield make
    for logger in made:
        for handler in list(logger.handlers):
            logger.removeHandler(handler)
            handler.close()


def verify(server, group, keyring_path, capsys, *extra: str) -> int:
    capsys.readouterr()
    code = main(["verify", "--cloudwatch", group, "--keyring", str(keyring_path),
                 "--endpoint-url", server["url"], "--region", REGION, *extra])
    capsys.readouterr()
    return code


def events_by_stream(server, group) -> dict[str, int]:
    """How many events each stream of the group holds (every page read)."""
    client = boto3.client("logs", endpoint_url=server["url"], region_name=REGION)
    counts: dict[str, int] = {}
    for stream in client.describe_log_streams(logGroupName=group)["logStreams"]:
        name = stream["logStreamName"]
        counts[name] = 0
        token = None
        while True:
            args = {"logGroupName": group, "logStreamName": name, "startFromHead": True}
            if token:
                args["nextToken"] = token
            page = client.get_log_events(**args)
            counts[name] += len(page["events"])
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return counts


def events_in(server, group) -> int:
    return sum(events_by_stream(server, group).values())


def burst(logger, n, payload):
    for i in range(n):
        logger.info("call", extra={"audit": payload("llm.completion", tokens_input=i)})


class TestEndToEnd:
    def test_20000_records_zero_lost_and_verified(self, server, ship, keyring_path, payload,
                                                  capsys):
        """20,000 records shipped, read back (paginated) and verified: exit 0."""
        logger = ship()
        burst(logger, 20_000, payload)
        handler = logger.handlers[0]
        assert handler.close(60)
        counters = handler.counters
        assert 20_002 == counters["sent"]
        assert 0 == counters["dropped"] + counters["rejected"]
        assert 20_002 == events_in(server, ship.group)
        assert 0 == verify(server, ship.group, keyring_path, capsys)

    def test_server_down_10s_then_back(self, server, ship, keyring_path, payload, capsys):
        """The server stops for 10 s mid-stream and restarts on the same port: nothing lost."""
        logger = ship(send_interval=0.2)
        handler = logger.handlers[0]
        burst(logger, 1_000, payload)
        assert handler.flush(20)
        server["server"].stop()
        try:
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline:
                burst(logger, 100, payload)
                time.sleep(0.25)
        finally:
            server["restart"]()
        burst(logger, 1_000, payload)
        assert handler.flush(60)
        assert handler.close(30)
        counters = handler.counters
        assert counters["spilled"] > 0
        assert counters["retried"] > 0
        assert 0 == counters["dropped"]
        assert counters["submitted"] == events_in(server, ship.group)
        assert 0 == verify(server, ship.group, keyring_path, capsys)

    def test_throttling_for_a_period(self, server, ship, keyring_path, payload, capsys):
        """ThrottlingException for 2 s: backoff with jitter, spill, replay; nothing lost."""
        until = time.monotonic() + 2.0

        def factory() -> Any:
            client = boto3.client("logs", endpoint_url=server["url"], region_name=REGION)

            def throttle(**_: Any) -> None:
                if time.monotonic() < until:
                    raise ClientError({"Error": {"Code": "ThrottlingException",
                                                 "Message": "Rate exceeded"}}, "PutLogEvents")

            client.meta.events.register("before-call.cloudwatch-logs.PutLogEvents", throttle)
            return client

        logger = ship(client_factory=factory, send_interval=0.1)
        burst(logger, 3_000, payload)
        handler = logger.handlers[0]
        assert handler.close(30)
        assert handler.counters["retried"] > 0
        assert 3_002 == events_in(server, ship.group)
        assert 0 == verify(server, ship.group, keyring_path, capsys)

    def test_stream_and_group_missing_at_first_burst(self, server, ship, keyring_path,
                                                     payload, capsys):
        """No group, no stream when the first burst starts: created, nothing discarded."""
        logger = ship(create_group=True, create_stream=True)
        burst(logger, 5_000, payload)
        handler = logger.handlers[0]
        assert handler.close(30)
        assert 5_002 == events_in(server, ship.group)
        assert 0 == verify(server, ship.group, keyring_path, capsys)

    def test_sigterm_with_5000_queued(self, server, keyring_path, tmp_path, capsys):
        """SIGTERM with 5,000 records queued: drained, footer written, all verify."""
        group = f"e2e-{secrets.token_hex(4)}"
        script = textwrap.dedent(f"""
            import logging, sys, time
            from llm_audit_log.sinks.cloudwatch import CloudWatchHandler
            h = CloudWatchHandler({group!r}, keyring={str(keyring_path)!r},
                                  endpoint_url={server["url"]!r}, region={REGION!r},
                                  create_group=True, send_interval=60,
                                  spill_dir={str(tmp_path / "spill")!r},
                                  drain_on_sigterm=True)
            log = logging.getLogger("audit"); log.propagate = False
            log.setLevel(logging.INFO); log.addHandler(h)
            for i in range(5000):
                log.info("x", extra={{"audit": {{"event_type": "auth.login",
                                                 "user_id": "u%d" % i, "status": "success"}}}})
            print("queued", h.counters["sent"], flush=True)
            time.sleep(60)
        """)
        env = dict(os.environ)
        proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                                env=env, text=True)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("queued")
        assert int(line.split()[1]) < 5_000  # most records still in the queue
        proc.send_signal(signal.SIGTERM)
        assert 143 == proc.wait(60)
        proc.stdout.close()
        assert 5_002 == events_in(server, group)
        assert 0 == verify(server, group, keyring_path, capsys)

    def test_sigterm_with_5000_queued_while_unreachable(self, server, keyring_path, tmp_path,
                                                         capsys):
        """
        SIGTERM with 5,000 records queued while the service is down: spilled, replayed next start.

        The module's server is stopped (connections refused on its port) while process 1
        logs and is terminated, then restarted on the same port for process 2, which
        shares the spill directory, adopts process 1's orphaned spill file and replays it.
        """
        group = f"e2e-{secrets.token_hex(4)}"
        spill = tmp_path / "spill"
        secret = f"PROMPT-{secrets.token_hex(8)}"  # raw prompts: only their keyed hashes ship
        script = textwrap.dedent(f"""
            import logging, sys, time
            from llm_audit_log.sinks.cloudwatch import CloudWatchHandler
            count, stay = int(sys.argv[1]), sys.argv[2] == "stay"
            h = CloudWatchHandler({group!r}, keyring={str(keyring_path)!r},
                                  endpoint_url={server["url"]!r}, region={REGION!r},
                                  create_group=True, spill_dir={str(spill)!r},
                                  drain_on_sigterm=True, send_interval=60, max_backoff=0.5,
                                  flush_timeout=0.5, close_timeout=1.0)
            log = logging.getLogger("audit"); log.propagate = False
            log.setLevel(logging.INFO); log.addHandler(h)
            for i in range(count):
                log.info("x", extra={{"audit": {{
                    "event_type": "llm.completion", "user_id": "u%d" % i, "status": "success",
                    "model": "m", "tokens_input": i, "prompt": "{secret}-%d" % i}}}})
            if stay:
                c = h.counters
                print("logged", c["submitted"], c["sent"], c["spilled"], flush=True)
                time.sleep(60)
            else:
                ok = h.close(20)
                c = h.counters
                print("closed", ok, c["submitted"], c["sent"], c["dropped"], c["rejected"],
                      flush=True)
        """)
        env = dict(os.environ)

        server["server"].stop()
        try:
            proc = subprocess.Popen([sys.executable, "-c", script, "5000", "stay"],
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                                    text=True)
            assert proc.stdout is not None
            try:
                line = proc.stdout.readline().split()
                # header + 5,000 events submitted; nothing can have been sent; with
                # send_interval=60 at least the last, partial batch is still in memory
                assert ["logged", "5001", "0"] == line[:3]
                assert int(line[3]) < 5_001
                proc.send_signal(signal.SIGTERM)
                _, errors = proc.communicate(timeout=30)
                assert 143 == proc.returncode, errors
                assert "EndpointConnectionError" in errors  # the outage was reported...
                assert secret not in errors  # ...without any payload
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            files = sorted(spill.glob("*.spill"))
            assert len(files) == 1
            assert files[0].stat().st_size > 0
            assert 0o600 == files[0].stat().st_mode & 0o777
            data = files[0].read_bytes()
        finally:
            server["restart"]()

        # Process 1's whole log is in the spill, in order: header, 5,000 events, and the
        # footer its close() wrote on the way out (SystemExit -> logging.shutdown).
        spilled = [json.loads(raw) for raw in data.splitlines()]
        assert 5_002 == len(spilled)
        assert {group} == {entry["g"] for entry in spilled}
        assert 1 == len({entry["s"] for entry in spilled})
        kinds = [json.loads(entry["m"])["t"] for entry in spilled]
        assert ["header", *["event"] * 5_000, "footer"] == kinds
        assert secret.encode() not in data
        assert 5_000 == data.count(b"prompt_hash")

        proc = subprocess.run([sys.executable, "-c", script, "3", "exit"], env=env,
                              capture_output=True, text=True, timeout=60, check=False)
        assert 0 == proc.returncode, proc.stderr
        # close() True: the orphan and its own lines all delivered; 3 records + header +
        # footer submitted, all sent along with process 1's 5,002; nothing dropped or rejected.
        assert ["closed", "True", "5", "5007", "0", "0"] == proc.stdout.split()
        assert [] == list(spill.glob("*.spill"))  # replayed orphan removed, own file too

        # Two streams, one log each: process 1's header + 5,000 events + footer, and
        # process 2's header + 3 events + footer. No gap lines (nothing was rejected).
        counts = events_by_stream(server, group)
        assert 5_002 == counts.pop(spilled[0]["s"])
        assert [5] == list(counts.values())
        assert 5_007 == events_in(server, group)
        assert 0 == verify(server, group, keyring_path, capsys)

    def test_forked_child_logging(self, server, ship, keyring_path, payload, capsys):
        """A forked child ships its own log to its own stream; both verify."""
        logger = ship(send_interval=0.1)
        handler = logger.handlers[0]
        burst(logger, 100, payload)
        assert handler.flush(20)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                burst(logger, 500, payload)
                code = 0 if handler.close(30) else 2
            finally:
                os._exit(code)
        burst(logger, 100, payload)
        _, status = os.waitpid(pid, 0)
        assert 0 == os.waitstatus_to_exitcode(status)
        assert handler.close(30)
        assert 100 + 100 + 2 + 500 + 2 == events_in(server, ship.group)
        assert 0 == verify(server, ship.group, keyring_path, capsys)


class TestEndsOfProcesses:
    """How processes end in practice: each must deliver, or leave the lines to replay."""

    @staticmethod
    def preamble(server: Any, group: str, keyring_path: Any, tmp_path: Any) -> str:
        """The start of a child script: an ``audit`` logger with a CloudWatchHandler."""
        return textwrap.dedent(f"""
            import logging
            from llm_audit_log.sinks.cloudwatch import CloudWatchHandler
            h = CloudWatchHandler({group!r}, keyring={str(keyring_path)!r},
                                  endpoint_url={server["url"]!r}, region={REGION!r},
                                  create_group=True, spill_dir={str(tmp_path / "spill")!r})
            log = logging.getLogger("audit"); log.propagate = False
            log.setLevel(logging.INFO); log.addHandler(h)
        """)

    def test_a_short_job_that_never_calls_close(self, server, keyring_path, tmp_path,
                                                 capsys):
        """Ten records and exit: logging.shutdown delivers them (boto3 was imported early)."""
        group = f"e2e-{secrets.token_hex(4)}"
        script = self.preamble(server, group, keyring_path, tmp_path) + textwrap.dedent("""
            for i in range(10):
                log.info("x", extra={"audit": {"event_type": "auth.login",
                                               "user_id": "u%d" % i, "status": "success"}})
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120, check=False)
        assert 0 == result.returncode, result.stderr
        assert "failed" not in result.stderr
        assert 12 == events_in(server, group)
        assert [] == list((tmp_path / "spill").glob("*.spill"))
        assert 0 == verify(server, group, keyring_path, capsys)

    def test_a_multiprocessing_child(self, server, keyring_path, tmp_path, capsys):
        """A fork-started multiprocessing child leaves by os._exit: its log still arrives."""
        group = f"e2e-{secrets.token_hex(4)}"
        script = self.preamble(server, group, keyring_path, tmp_path) + textwrap.dedent("""
            import multiprocessing
            def work():
                for i in range(500):
                    log.info("x", extra={"audit": {"event_type": "auth.login",
                                                   "user_id": "c%d" % i, "status": "success"}})
            child = multiprocessing.get_context("fork").Process(target=work)
            child.start(); child.join()
            log.info("x", extra={"audit": {"event_type": "auth.login", "user_id": "p",
                                           "status": "success"}})
            h.close()
            raise SystemExit(child.exitcode)
        """)
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                                timeout=120, check=False)
        assert 0 == result.returncode, result.stderr
        assert sorted([3, 502]) == sorted(events_by_stream(server, group).values())
        assert 0 == verify(server, group, keyring_path, capsys)


class TestCloseUnderFaults:
    def test_a_put_that_never_answers_is_spilled_at_close(self, keyring, tmp_path):
        """An endpoint that accepts and never replies: close() keeps to its time and spills."""
        listener = socket.create_server(("127.0.0.1", 0))
        held: list[socket.socket] = []
        stop = threading.Event()

        def accept() -> None:
            listener.settimeout(0.2)
            while not stop.is_set():
                try:
                    held.append(listener.accept()[0])  # read nothing, answer nothing
                except OSError:
                    continue

        threading.Thread(target=accept, daemon=True).start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        handler = CloudWatchHandler("silent", keyring=keyring, endpoint_url=url, region=REGION,
                                    spill_dir=str(tmp_path / "spill"), send_interval=0.1,
                                    close_timeout=2)
        logger = logging.getLogger(f"tests.e2e.silent.{secrets.token_hex(4)}")
        logger.propagate = False
        logger.setLevel(logging.INFO)
        logger.addHandler(handler)
        try:
            for i in range(100):
                logger.info("x", extra={"audit": {"event_type": "auth.login",
                                                  "user_id": f"u{i}", "status": "success"}})
            time.sleep(0.5)  # the first put is now hanging
            started = time.monotonic()
            delivered = handler.close()
            took = time.monotonic() - started
        finally:
            logger.removeHandler(handler)
            stop.set()
            for conn in held:
                conn.close()
            listener.close()
        assert not delivered
        assert took < 4.0
        assert 102 == handler.counters["spilled"]  # 100 events, header and footer
        assert 0 == handler.counters["dropped"]
        assert 1 == len(list((tmp_path / "spill").glob("*.spill")))
