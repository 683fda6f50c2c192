"""The Xero API over HTTP: the route table, the checks around every API call (Xero-tenant-id,
else 403; rate limits and their headers; errors as 400 ValidationException), the read endpoints
and paging (`{"Invoices": [...], "pagination": {...}}` envelopes, page / pageSize)."""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Hashable, Sequence
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import TypeVar

from connectors.sandbox.messages import (
    Handler,
    JsonObject,
    Route,
    SandboxRequest,
    SandboxResponse,
    json_response,
    request_root,
)
from connectors.sandbox.oauth import OAuthAuthority, oauth_routes
from connectors.sandbox.xero.errors import XeroValidation, not_found, problem, validation_response
from connectors.sandbox.xero.limits import XeroLimits
from connectors.sandbox.xero.query import ListFilter, WhereError, XeroQuery, compile_where
from connectors.sandbox.xero.records import XContact, XCreditNote, XInvoice, XPayment
from connectors.sandbox.xero.render import XeroRenderer
from connectors.sandbox.xero.state import XeroState
from connectors.sandbox.xero.writes import XeroWriter
from connectors.xero.mapping import ms_datetime

API_PREFIX = "/api.xro/2.0"
MAX_PAGE_SIZE = 1000
DEFAULT_PAGE_SIZE = 100
_GUID = r"[0-9a-fA-F-]{36}"
_PAGING_PARAMS = frozenset({"page", "pagesize"})

Row = TypeVar("Row", XContact, XInvoice, XPayment, XCreditNote)


class XeroRoutes:
    """The routes of one organisation: reads answered here, writes by the writer."""

    def __init__(
        self,
        state: XeroState,
        query: XeroQuery,
        render: XeroRenderer,
        writer: XeroWriter,
        limits: XeroLimits,
        authority: OAuthAuthority,
    ) -> None:
        self.state = state
        self.query = query
        self.render = render
        self.writer = writer
        self.limits = limits
        self.authority = authority

    def routes(self) -> list[Route]:
        api = API_PREFIX.replace(".", r"\.")
        guid = f"(?P<id>{_GUID})"
        write = self.writer
        once = write.idempotent
        return [
            *oauth_routes(self.authority, authorize_path="/connect/authorize", token_path="/connect/token"),
            Route("GET", r"/connections", self._connections),
            Route("GET", rf"{api}/Invoices", self._api(self._get_invoices)),
            Route("PUT", rf"{api}/Invoices", self._api(once(write.put_invoices))),
            Route("POST", rf"{api}/Invoices", self._api(once(write.put_invoices))),
            Route("GET", rf"{api}/Invoices/{guid}", self._api(self._get_invoice)),
            Route("POST", rf"{api}/Invoices/{guid}/Email", self._api(once(write.email))),
            Route("GET", rf"{api}/Invoices/{guid}/History", self._api(self._get_history)),
            Route("PUT", rf"{api}/Invoices/{guid}/History", self._api(once(write.put_history))),
            Route("GET", rf"{api}/Invoices/{guid}/OnlineInvoice", self._api(self._online_invoice)),
            Route("GET", rf"{api}/Payments", self._api(self._get_payments)),
            Route("PUT", rf"{api}/Payments", self._api(once(write.put_payments))),
            Route("GET", rf"{api}/Contacts", self._api(self._get_contacts)),
            Route("GET", rf"{api}/CreditNotes", self._api(self._get_credit_notes)),
            Route("PUT", rf"{api}/CreditNotes", self._api(once(write.put_credit_notes))),
            Route("PUT", rf"{api}/CreditNotes/{guid}/Allocations", self._api(once(write.put_allocations))),
        ]

    # ------------------------------------------------------------ around every API call

    def _api(self, handler: Handler) -> Handler:
        """Tenant check, rate limits, Xero's error answers and the rate headers around a handler."""

        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            tenant = request.headers.get("Xero-tenant-id")
            if not tenant or tenant.strip().lower() != self.state.tenant_id.lower():
                return problem(403, "Forbidden", "AuthenticationUnsuccessful")
            refused = self.limits.admit()
            if refused is not None:
                return refused
            try:
                response = handler(request, match)
            except XeroValidation as error:
                response = validation_response(error.messages)
            except WhereError as error:
                response = validation_response([str(error)])
            except (json.JSONDecodeError, ValueError, TypeError, KeyError) as error:
                response = validation_response([f"the request body could not be read: {error}"])
            finally:
                if request.method != "GET":
                    self.state.changed()
            response.headers.update(self.limits.headers())
            return response

        return wrapped

    # ------------------------------------------------------------ reads

    def _connections(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        del request
        state = self.state
        stamp = state.clock.now().replace(microsecond=0).isoformat().replace("+00:00", "")
        return json_response(
            [
                {
                    "id": state.uuid("connection", "1"),
                    "authEventId": state.uuid("auth-event", "1"),
                    "tenantId": state.tenant_id,
                    "tenantType": "ORGANISATION",
                    "tenantName": state.tenant_name,
                    "createdDateUtc": stamp,
                    "updatedDateUtc": stamp,
                }
            ]
        )

    def _get_invoices(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        wanted = _list_filter(request)
        rows = self.query.invoices(
            _shape(request, "Invoices"),
            wanted,
            ids=_csv(request, "IDs"),
            contacts=_csv(request, "ContactIDs"),
            statuses=_csv(request, "Statuses"),
            numbers=_csv(request, "InvoiceNumbers"),
        )
        return self._page(request, rows, self.render.invoice, "Invoices")

    def _get_invoice(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self.state.invoices.get(match["id"].lower())
        if xi is None:
            return not_found()
        return json_response({"Invoices": [self.render.invoice(xi)]})

    def _online_invoice(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        xi = self.state.invoices.get(match["id"].lower())
        if xi is None:
            return not_found()
        if xi.status == "DRAFT":
            raise XeroValidation(["An online invoice cannot be created for a draft invoice"])
        url = f"{request_root(request)}/invoice/{self.state.uuid('online', xi.id)}"
        return json_response({"OnlineInvoices": [{"OnlineInvoiceUrl": url}]})

    def _get_history(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        del request
        xi = self.state.invoices.get(match["id"].lower())
        if xi is None:
            return not_found()
        records = self.state.history.get(xi.id, [])
        return json_response({"HistoryRecords": [self.render.history(h) for h in records]})

    def _get_payments(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        rows = self.query.payments(_shape(request, "Payments"), _list_filter(request))
        return self._page(request, rows, self.render.payment, "Payments")

    def _get_contacts(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        ids = _csv(request, "IDs")
        archived = (request.param("includeArchived") or "").lower() == "true"
        wanted = _list_filter(request)
        rows = self.query.contacts(_shape(request, "Contacts"), wanted, ids=ids, archived=archived)
        return self._page(request, rows, self.render.contact, "Contacts")

    def _get_credit_notes(self, request: SandboxRequest, _: re.Match[str]) -> SandboxResponse:
        rows = self.query.credit_notes(_shape(request, "CreditNotes"), _list_filter(request))
        return self._page(request, rows, self.render.credit_note, "CreditNotes")

    # ------------------------------------------------------------ paging

    def _page(
        self, request: SandboxRequest, rows: Sequence[Row], render: Callable[[Row], JsonObject], envelope: str
    ) -> SandboxResponse:
        """All rows without `page`; else page `page` of `pageSize` (at most 1000) with `pagination`."""
        page_text = request.param("page")
        body: JsonObject = {
            "Id": str(uuid.uuid4()),
            "Status": "OK",
            "ProviderName": "relance sandbox",
            "DateTimeUTC": ms_datetime(self.state.clock.now()),
        }
        if page_text is None:
            selected = rows
        else:
            try:
                page = max(1, int(page_text))
                size = int(request.param("pageSize") or DEFAULT_PAGE_SIZE)
            except ValueError:
                raise XeroValidation(["page and pageSize must be whole numbers"]) from None
            size = max(1, min(MAX_PAGE_SIZE, size))
            selected = rows[(page - 1) * size : page * size]
            body["pagination"] = {
                "page": page,
                "pageSize": size,
                "pageCount": (len(rows) + size - 1) // size,
                "itemCount": len(rows),
            }
        body[envelope] = [render(row) for row in selected]
        return json_response(body)


# ---------------------------------------------------------------- reading a list request


def _shape(request: SandboxRequest, entity: str) -> Hashable:
    """A list request without its paging: pages of one request share its cached rows."""
    params = tuple(
        sorted(
            (name, tuple(values))
            for name, values in request.query.items()
            if name.lower() not in _PAGING_PARAMS
        )
    )
    return (entity, request.headers.get("If-Modified-Since"), params)


def _list_filter(request: SandboxRequest) -> ListFilter:
    since = _if_modified_since(request)
    where = request.param("where")
    return ListFilter(
        since=since, where=compile_where(where) if where else None, order=request.param("order")
    )


def _if_modified_since(request: SandboxRequest) -> datetime | None:
    value = request.headers.get("If-Modified-Since")
    if not value:
        return None
    value = value.strip()
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        try:
            parsed = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            raise XeroValidation([f"If-Modified-Since is not a date: {value!r}"]) from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _csv(request: SandboxRequest, name: str) -> set[str] | None:
    values = request.query.get(name)
    if not values:
        return None
    return {part.strip().lower() for value in values for part in value.split(",") if part.strip()}
