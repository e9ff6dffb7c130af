"""The README's first command: log realistic events through the shipped config, then verify."""

from __future__ import annotations

import json
import logging
import logging.config
import os
import random
from importlib import resources
from pathlib import Path
from typing import Any

from llm_audit_log.keys import Keyring

__all__ = ["DEMO_EVENTS", "load_config", "run_demo"]

DEMO_EVENTS: list[tuple[str, dict[str, Any]]] = [
    ("user signed in", {"event_type": "auth.login", "user_id": "u-1842", "status": "success",
                        "method": "oidc", "ip_address": "192.0.2.10",
                        "session_id": "s-77c1", "user_agent": "Mozilla/5.0"}),
    ("retrieved context", {"event_type": "rag.query", "user_id": "u-1842", "status": "success",
                           "source": "kb-policies-v3", "query": "What is our refund window?",
                           "documents": [{"id": "doc_1201", "score": 0.83},
                                         {"id": "doc_0932", "score": 0.71}],
                           "top_k": 2, "latency_ms": 41.7, "session_id": "s-77c1"}),
    ("tool called", {"event_type": "tool.call", "user_id": "u-1842", "status": "success",
                     "tool_name": "order_lookup", "parameters": {"order_id": "ord_55120"},
                     "latency_ms": 120.5}),
    ("model answered", {"event_type": "llm.completion", "user_id": "u-1842",
                        "status": "success", "model": "gpt-4o-mini",
                        "model_version": "2024-07-18", "provider": "openai",
                        "prompt": "Summarise the refund policy for order ord_55120.",
                        "response": "Refunds are accepted within 30 days of delivery.",
                        "tokens_input": 512, "tokens_output": 64, "latency_ms": 830.2,
                        "finish_reason": "stop", "rag_documents": ["doc_1201", "doc_0932"],
                        "tools_called": ["order_lookup"], "guardrails_triggered": []}),
    ("guardrail blocked output", {"event_type": "guardrail.block", "user_id": "u-2210",
                                  "status": "success", "rule": "pii-output",
                                  "severity": "high", "stage": "output",
                                  "content": "The customer's card number is on file.",
                                  "guardrail_action": "block"}),
    ("tool failed", {"event_type": "error", "user_id": "u-2210", "status": "failure",
                     "error_type": "TimeoutError",
                     "error_message": "order service did not answer in 5 s",
                     "request_id": "req-9f1"}),
    ("config changed", {"event_type": "admin.config_change", "user_id": "admin-3",
                        "status": "success", "actor": "admin-3",
                        "target": "guardrails.pii-output",
                        "before": {"mode": "flag"}, "after": {"mode": "block"}}),
    ("user signed out", {"event_type": "auth.logout", "user_id": "u-1842",
                         "status": "success", "session_id": "s-77c1"}),
    # A bad payload: becomes a signed audit.rejected record, never an exception.
    ("malformed event", {"event_type": "llm.completion", "user_id": "u-1842",
                         "status": "success", "model": "gpt-4o-mini",
                         "tokens_input": "many"}),
]


def load_config(path: str | None) -> dict[str, Any]:
    """The shipped ``logging_configs/local.json`` (from the checkout, else the package)."""
    if path is not None:
        text = Path(path).read_text(encoding="utf-8")
        if path.endswith((".yaml", ".yml")):
            try:
                import yaml  # type: ignore[import-untyped,unused-ignore]  # noqa: PLC0415
            except ImportError:
                raise ValueError("YAML configs need PyYAML (pip install pyyaml)") from None
            try:
                loaded: dict[str, Any] = yaml.safe_load(text)
            except yaml.YAMLError as exc:
                raise ValueError(f"not valid YAML ({type(exc).__name__})") from None
            return loaded
    elif Path("logging_configs/local.json").is_file():
        text = Path("logging_configs/local.json").read_text(encoding="utf-8")
    else:
        text = (resources.files("llm_audit_log") / "logging_configs" / "local.json").read_text(
            encoding="utf-8")
    config: dict[str, Any] = json.loads(text)
    return config


def ensure_keyring() -> str:
    """Use ``$LLM_AUDIT_KEYRING`` if set, else create ``./audit-demo/keyring.json`` once."""
    existing = os.environ.get("LLM_AUDIT_KEYRING")
    if existing and Path(existing).is_file():
        return existing
    path = Path(existing) if existing else Path("audit-demo/keyring.json")
    if not path.exists():
        Keyring.generate().save(path)
        print(f"created keyring {path} (mode 0600; keep it off the log host in production)")
    os.environ["LLM_AUDIT_KEYRING"] = str(path)
    return str(path)


def run_demo(config_path: str | None, rounds: int) -> tuple[str, list[str]]:
    """Log ``rounds`` x the demo events through dictConfig; returns (keyring, log dirs)."""
    keyring = ensure_keyring()
    config = load_config(config_path)
    logging.config.dictConfig(config)
    logger = logging.getLogger("audit")
    rng = random.Random(7)  # noqa: S311 - varied demo latencies, not secrets
    for _ in range(rounds):
        for message, payload in DEMO_EVENTS:
            event = dict(payload)
            if "latency_ms" in event:
                event["latency_ms"] = round(event["latency_ms"] * rng.uniform(0.8, 1.2), 1)
            logger.info(message, extra={"audit": event})
    dirs = sorted({os.path.dirname(h.baseFilename) for h in logger.handlers
                   if hasattr(h, "baseFilename")})
    for handler in list(logger.handlers):
        handler.close()
    return keyring, dirs
