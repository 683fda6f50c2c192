"""QBO's Fault answers: Fault{Error[{Message, Detail, code, element}], type}, HTTP 400 unless
said otherwise, and the faults several modules raise (not found, bad number, query parse error)."""

from __future__ import annotations

from decimal import Decimal

from connectors.quickbooks import mapping
from connectors.sandbox.messages import JsonObject


class QboFault(Exception):
    """A Fault answer (HTTP 400 unless said otherwise)."""

    def __init__(
        self,
        code: str,
        message: str,
        detail: str = "",
        *,
        element: str = "",
        kind: str = "ValidationFault",
        status: int = 400,
    ) -> None:
        super().__init__(f"{code} {message}")
        self.code = code
        self.message = message
        self.detail = detail
        self.element = element
        self.kind = kind
        self.status = status

    def body(self) -> JsonObject:
        error = {"Message": self.message, "Detail": self.detail or self.message, "code": self.code}
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": self.kind}


def not_found(entity: str, entity_id: str) -> QboFault:
    return QboFault(
        "610",
        "Object Not Found",
        f"Object Not Found : Something you're trying to use has been made inactive. "
        f"Check the fields with accounts, customers, items, vendors or employees. ({entity} {entity_id})",
    )


def query_error(detail: str) -> QboFault:
    return QboFault("4000", "Error parsing query", f"QueryParserError: {detail}")


def invalid_context(name: str) -> QboFault:
    """An entity name QBO does not know (query FROM, CDC entities)."""
    return QboFault("4001", "Invalid query", f"QueryValidationError: invalid context declaration: {name}")


def parse_decimal(value: object, field: str) -> Decimal:
    """A money amount of a request body, or Fault 2040 Invalid Number."""
    try:
        return mapping.parse_amount(value, field)
    except mapping.MappingError:
        raise QboFault("2040", "Invalid Number", f"{field} is not a valid number", element=field) from None
