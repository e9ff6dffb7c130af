"""
CloudWatchHandler vs watchtower, against the same moto server, same 20,000 records, one run.

Reported per handler:
  caller rec/s      records/s of the logging loop in the caller's thread
  readable after    seconds from the first record until every record is readable
                    (polled with get_log_events, paginated)
  PutLogEvents      calls, counted with a botocore event hook on the handler's own client
  lost              records emitted minus records read back

Both get the same ~400-byte llm.completion payload via ``logger.info(..., extra=...)``;
watchtower logs it as its JSON message (its own default formatting of a dict), ours seals
it as an audit line (envelope, chain fields and MAC add ~400 bytes, so the floor on calls
is higher for the same records: ceil(total bytes / 1 MiB)).

watchtower is not a dependency: run this in a separate venv, e.g.

    python -m venv /tmp/wt-venv
    /tmp/wt-venv/bin/pip install -e . watchtower 'moto[server]'
    /tmp/wt-venv/bin/python benchmarks/bench_cloudwatch.py [--records 20000]

Without watchtower importable, only ours is measured.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from llm_audit_log import AuditFilter, Keyring
from llm_audit_log.sinks.cloudwatch import CloudWatchHandler

REGION = "us-east-1"
PAYLOAD = {
    "event_type": "llm.completion", "user_id": "u-1842", "status": "success",
    "model": "gpt-4o-mini", "model_version": "2024-07-18", "provider": "openai",
    "prompt": "Summarise the refund policy for order ord_55120 in two sentences.",
    "response": "Refunds are accepted within 30 days of delivery if the item is unused.",
    "tokens_input": 512, "tokens_output": 64, "latency_ms": 830.2, "finish_reason": "stop",
    "session_id": "s-77c1", "rag_documents": ["doc_1201", "doc_0932"],
}


def counting_client(url: str, calls: list[int]) -> Any:
    client = boto3.client("logs", endpoint_url=url, region_name=REGION)

    def count(**_: Any) -> None:
        calls[0] += 1

    client.meta.events.register("before-send.cloudwatch-logs.PutLogEvents", count)
    return client


def readable(url: str, group: str) -> int:
    client = boto3.client("logs", endpoint_url=url, region_name=REGION)
    total = 0
    try:
        streams = client.describe_log_streams(logGroupName=group)["logStreams"]
    except client.exceptions.ResourceNotFoundException:
        return 0
    for stream in streams:
        token = None
        while True:
            args = {"logGroupName": group, "logStreamName": stream["logStreamName"],
                    "startFromHead": True}
            if token:
                args["nextToken"] = token
            page = client.get_log_events(**args)
            total += len(page["events"])
            if page["nextForwardToken"] == token:
                break
            token = page["nextForwardToken"]
    return total


def run(name: str, handler: logging.Handler, url: str, group: str, records: int,
        calls: list[int], expected_extra: int, payload_filter: AuditFilter | None) -> dict:
    logger = logging.getLogger(f"bench.{name}.{secrets.token_hex(3)}")
    logger.propagate = False
    logger.setLevel(logging.INFO)
    if payload_filter is not None:
        logger.addFilter(payload_filter)
    logger.addHandler(handler)
    start = time.perf_counter()
    for i in range(records):
        logger.info("completion", extra={"audit": {**PAYLOAD, "tokens_input": i}})
    emitted = time.perf_counter() - start
    handler.flush()
    want = records + expected_extra
    seen = 0
    deadline = time.perf_counter() + 120
    while time.perf_counter() < deadline:
        seen = readable(url, group)
        if seen >= want:
            break
        time.sleep(0.2)
    all_readable = time.perf_counter() - start
    handler.close()
    seen = readable(url, group)
    return {"handler": name, "caller rec/s": round(records / emitted),
            "readable after s": round(all_readable, 2), "PutLogEvents": calls[0],
            "lost": max(0, want - seen) if seen < want else 0, "read back": seen}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=20_000)
    args = parser.parse_args()
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION=REGION)
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # moto's request log
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    tmp = tempfile.mkdtemp()
    results = []
    try:
        ring = Keyring.generate()
        calls = [0]
        group = "bench-ours"
        ours = CloudWatchHandler(group, keyring=ring, create_group=True,
                                 client_factory=lambda: counting_client(url, calls),
                                 spill_dir=os.path.join(tmp, "spill"), send_interval=1.0)
        # Header line plus the footer written at close (not counted as readable before).
        results.append(run("llm-audit-log", ours, url, group, args.records, calls, 1,
                           AuditFilter(keyring=ring)))
        try:
            import watchtower  # noqa: PLC0415 - optional, in the benchmark's own venv
        except ImportError:
            print("watchtower not importable: measured ours only")
        else:
            wt_calls = [0]
            group = "bench-watchtower"
            wt = watchtower.CloudWatchLogHandler(
                log_group_name=group, log_stream_name="bench",
                boto3_client=counting_client(url, wt_calls), create_log_group=True,
                send_interval=1)
            wt.setFormatter(_PayloadJson())
            results.append(run("watchtower", wt, url, group, args.records, wt_calls, 0, None))
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)
    keys = list(results[0])
    print(" | ".join(f"{k:>16}" for k in keys))
    for row in results:
        print(" | ".join(f"{row[k]!s:>16}" for k in keys))


class _PayloadJson(logging.Formatter):
    """watchtower's message: the same payload as one JSON object (~400 bytes)."""

    def format(self, record: logging.LogRecord) -> str:
        return json.dumps({"message": record.getMessage(), **record.__dict__["audit"]})


if __name__ == "__main__":
    main()
