"""Fault injection: which API requests fail (429, 5xx, day limit, expired tokens, latency) and
the generic answers for them. Ledger sandboxes pass their own answers for faithful shapes.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from connectors.sandbox.messages import SandboxRequest, SandboxResponse, json_response, text_response

FaultKind = Literal["429", "5xx", "401", "day_limit"]

QBO_THROTTLE_XML = (
    '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
    '<IntuitResponse xmlns="http://schema.intuit.com/finance/v3" time="{time}">'
    '<Fault type="SERVICE"><Error code="3001"><Message>message=ThrottleExceeded; errorCode=003001; '
    "statusCode=429</Message><Detail>The request limit was reached.</Detail></Error></Fault>"
    "</IntuitResponse>"
)


@dataclass
class Faults:
    """Fault injection, mutable at runtime (tests flip fields while the server runs)."""

    rate_429: float = 0.0  # fraction of API requests answered 429
    retry_after: float = 1.0  # seconds, sent as Retry-After
    rate_5xx: float = 0.0  # fraction answered 503
    burst_5xx: int = 0  # the next N API requests get 503
    latency: float = 0.0  # seconds added per request
    expire_tokens: bool = False  # True: every issued access token becomes invalid (flag resets)
    day_limit_remaining: int | None = None  # Xero day budget; at 0 -> 429 X-Rate-Limit-Problem: day
    qbo_xml_throttle: bool = False  # QBO: 429 bodies are the XML Fault code 3001
    seed: int = 0
    rng: random.Random = field(init=False, repr=False)
    lock: threading.Lock = field(init=False, repr=False, default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.rng = random.Random(self.seed)

    def reset(self) -> None:
        """Back to no faults (keeps the random stream)."""
        with self.lock:
            self.rate_429 = self.rate_5xx = self.latency = 0.0
            self.burst_5xx = 0
            self.expire_tokens = self.qbo_xml_throttle = False
            self.day_limit_remaining = None

    def draw(self) -> FaultKind | None:
        """Decide the fault for one API request (consumes budgets). Thread-safe."""
        with self.lock:
            if self.day_limit_remaining is not None:
                if self.day_limit_remaining <= 0:
                    return "day_limit"
                self.day_limit_remaining -= 1
            if self.burst_5xx > 0:
                self.burst_5xx -= 1
                return "5xx"
            if self.rate_429 and self.rng.random() < self.rate_429:
                return "429"
            if self.rate_5xx and self.rng.random() < self.rate_5xx:
                return "5xx"
            return None

    def take_expire_tokens(self) -> bool:
        with self.lock:
            flagged, self.expire_tokens = self.expire_tokens, False
            return flagged


def qbo_throttle_xml_response(time: str) -> SandboxResponse:
    """QBO's XML throttle Fault (code 3001), the 429 body Intuit sends on some endpoints."""
    return text_response(QBO_THROTTLE_XML.replace("{time}", time), 429, content_type="application/xml")


def default_fault_response(kind: FaultKind, request: SandboxRequest, faults: Faults) -> SandboxResponse:
    """Generic bodies; ledger sandboxes pass their own `fault_response` for faithful shapes."""
    del request
    if kind == "429":
        if faults.qbo_xml_throttle:
            return qbo_throttle_xml_response(datetime.now(UTC).isoformat())
        return json_response({"error": "rate_limited", "message": "Too many requests"}, 429)
    if kind == "day_limit":
        return json_response({"error": "rate_limited", "message": "Daily limit reached"}, 429)
    if kind == "401":
        return json_response({"error": "unauthorized", "message": "Invalid or expired token"}, 401)
    return json_response({"error": "unavailable", "message": "Service unavailable (injected)"}, 503)


def format_seconds(value: float) -> str:
    """A Retry-After value: whole seconds without a decimal point, fractions as they are."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"
