"""Xero's error answers: 400 ValidationException with Elements[].ValidationErrors, the problem
document of 401/403, and the plain-text 404."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from connectors.sandbox.messages import JsonObject, SandboxResponse, json_response


class XeroValidation(Exception):
    """A request Xero refuses with 400 ValidationException (`messages` become ValidationErrors)."""

    def __init__(self, messages: Sequence[str], element: JsonObject | None = None) -> None:
        super().__init__("; ".join(messages))
        self.messages = list(messages)
        self.element = element or {}


def validation_response(
    messages: Sequence[str], elements: Sequence[JsonObject] | None = None
) -> SandboxResponse:
    if elements is None:
        elements = [{"ValidationErrors": [{"Message": m} for m in messages]}]
    return json_response(
        {
            "ErrorNumber": 10,
            "Type": "ValidationException",
            "Message": "A validation exception occurred",
            "Elements": list(elements),
        },
        400,
    )


def problem(status: int, title: str, detail: str) -> SandboxResponse:
    return json_response(
        {"Type": None, "Title": title, "Status": status, "Detail": detail, "Instance": str(uuid.uuid4())},
        status,
    )


def not_found() -> SandboxResponse:
    return SandboxResponse(
        404,
        b"The resource you're looking for cannot be found",
        {"Content-Type": "text/plain; charset=utf-8"},
    )
