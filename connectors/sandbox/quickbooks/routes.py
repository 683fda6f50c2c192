"""The QBO v3 API over HTTP: the route table (company API, OAuth with Intuit's discovery document,
revoke, userinfo), the wrapper of every API call (realm check, `requestid` replay, Fault bodies,
the `time` field), request parsing for each route and QBO's answers to injected faults."""

from __future__ import annotations

import re
from collections.abc import Callable

from connectors.quickbooks import mapping
from connectors.sandbox.faults import FaultKind, Faults, qbo_throttle_xml_response
from connectors.sandbox.messages import (
    Handler,
    JsonObject,
    Route,
    SandboxRequest,
    SandboxResponse,
    json_dumps,
    json_response,
    text_response,
)
from connectors.sandbox.oauth import OAuthAuthority, oauth_routes, openid_discovery_route
from connectors.sandbox.quickbooks.errors import QboFault, query_error
from connectors.sandbox.quickbooks.query import QboQuery
from connectors.sandbox.quickbooks.state import JSON_CONTENT_TYPE, URL_ENTITY, QboState
from connectors.sandbox.quickbooks.writes import QboWriter

API_PREFIX = "/v3"
AUTHORIZE_PATH = "/connect/oauth2"
TOKEN_PATH = "/oauth2/v1/tokens/bearer"
REVOKE_PATH = "/oauth2/v1/tokens/revoke"
USERINFO_PATH = "/v1/openid_connect/userinfo"
DISCOVERY_PATH = "/.well-known/openid_configuration"
SCOPE = "com.intuit.quickbooks.accounting"

ApiHandler = Callable[[SandboxRequest, "re.Match[str]"], JsonObject]  # answers the body, or raises QboFault


class QboRoutes:
    """The routes of one company: queries and CDC by the query engine, writes by the writer."""

    def __init__(
        self, state: QboState, query: QboQuery, writer: QboWriter, authority: OAuthAuthority, faults: Faults
    ) -> None:
        self.state = state
        self.query = query
        self.writer = writer
        self.authority = authority
        self.faults = faults

    def routes(self) -> list[Route]:
        company = rf"{API_PREFIX}/company/(?P<realm>[^/]+)"
        entity = "(?P<entity>invoice|payment|customer|creditmemo|attachable|item|account)"
        return [
            Route("GET", rf"{company}/query", self._api(self._query)),
            Route("POST", rf"{company}/query", self._api(self._query)),
            Route("GET", rf"{company}/cdc", self._api(self._cdc)),
            Route("POST", rf"{company}/batch", self._api(self._batch, replayable=True)),
            Route("POST", rf"{company}/invoice/(?P<id>[^/]+)/send", self._api(self._send, mutates=True)),
            Route("GET", rf"{company}/companyinfo/(?P<id>[^/]+)", self._api(self._company_info)),
            Route("GET", rf"{company}/{entity}/(?P<id>[^/]+)", self._api(self._read)),
            Route("POST", rf"{company}/{entity}", self._api(self._write, replayable=True)),
            *oauth_routes(
                self.authority,
                authorize_path=AUTHORIZE_PATH,
                token_path=TOKEN_PATH,
                redirect_extra=lambda request: {"realmId": self.state.realm_id},
            ),
            openid_discovery_route(DISCOVERY_PATH, authorize_path=AUTHORIZE_PATH, token_path=TOKEN_PATH),
            Route("POST", REVOKE_PATH, lambda request, match: json_response({}), auth=False),
            Route("GET", USERINFO_PATH, self._userinfo, auth=False),
        ]

    # ------------------------------------------------------------ around every API call

    def _api(self, handler: ApiHandler, *, replayable: bool = False, mutates: bool = False) -> Handler:
        """Realm check, requestid replay (`replayable` writes), Fault bodies and the `time` field
        around a handler; the state version moves after every write (`replayable` or `mutates`)."""

        def wrapped(request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
            state = self.state
            if match["realm"] != state.realm_id:
                fault = QboFault(
                    "3100",
                    "message=ApplicationAuthorizationFailed; errorCode=003100; statusCode=403",
                    f"realm {match['realm']} is not the company these tokens were issued for",
                    kind="AUTHORIZATION",
                    status=403,
                )
                return json_response({"Fault": fault.body(), "time": state.time()}, fault.status)
            request_id = request.param("requestid") if replayable else None
            if request_id:
                replayed = state.replays.replay(request_id)
                if replayed is not None:
                    return replayed
            try:
                body = handler(request, match)
                status = 200
            except QboFault as fault:
                body, status = {"Fault": fault.body()}, fault.status
            finally:
                if replayable or mutates:
                    state.changed()  # any write (even a refused batch item may have changed state)
            body["time"] = state.time()
            response = SandboxResponse(
                status, json_dumps(body).encode("utf-8"), {"Content-Type": JSON_CONTENT_TYPE}
            )
            if request_id and status == 200:
                state.replays.remember(request_id, response)
            return response

        return wrapped

    def fault_response(self, kind: FaultKind, request: SandboxRequest) -> SandboxResponse:
        """QBO's answers to injected faults: throttle Fault 3001 (JSON, or XML when asked), the
        401 of an expired token, an HTML 503."""
        del request
        if kind in ("429", "day_limit"):
            if self.faults.qbo_xml_throttle:
                return qbo_throttle_xml_response(self.state.time())
            fault = {
                "Error": [
                    {
                        "Message": "message=ThrottleExceeded; errorCode=003001; statusCode=429",
                        "Detail": "The request limit was reached.",
                        "code": "3001",
                    }
                ],
                "type": "SERVICE",
            }
            return json_response({"Fault": fault, "time": self.state.time()}, 429)
        if kind == "401":
            body: JsonObject = {
                "warnings": None,
                "intuitObject": None,
                "fault": {
                    "error": [
                        {
                            "message": "message=AuthenticationFailed; errorCode=003200; statusCode=401",
                            "detail": "Token expired: <redacted>",
                            "code": "3200",
                            "element": None,
                        }
                    ],
                    "type": "AUTHENTICATION",
                },
                "report": None,
                "queryResponse": None,
                "batchItemResponse": [],
                "attachableResponse": [],
                "syncErrorResponse": None,
                "requestId": None,
                "time": int(self.state.now().timestamp() * 1000),
                "status": None,
                "cdcresponse": [],
            }
            return json_response(
                body, 401, {"WWW-Authenticate": 'Bearer realm="Intuit", error="invalid_token"'}
            )
        return text_response(
            "<html><head><title>503 Service Temporarily Unavailable</title></head><body><center>"
            "<h1>503 Service Temporarily Unavailable</h1></center></body></html>",
            503,
            content_type="text/html",
        )

    # ------------------------------------------------------------ handlers

    def _userinfo(self, request: SandboxRequest, match: re.Match[str]) -> SandboxResponse:
        if not self.authority.check_bearer(request.headers.get("Authorization")):
            return json_response({"error": "invalid_token"}, 401)
        return json_response(
            {"sub": f"sandbox-{self.state.realm_id}", "email": "owner@example.com", "emailVerified": True}
        )

    def _query(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        text = request.param("query")
        if text is None:
            text = request.body.decode("utf-8", "replace")
        if not text or not text.strip():
            raise query_error("empty query")
        return {"QueryResponse": self.query.run(text)}

    def _company_info(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        return {
            "CompanyInfo": {
                "Id": "1",
                "CompanyName": "Relance Sandbox Company",
                "Country": "FR",
                "SupportedLanguages": "en",
                "domain": "QBO",
                "sparse": False,
                "SyncToken": "0",
            }
        }

    def _cdc(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        names = [n.strip() for n in (request.param("entities") or "").split(",") if n.strip()]
        if not names:
            raise QboFault("2020", "Required param missing", "entities is required", element="entities")
        since = mapping.parse_datetime(request.param("changedSince") or "")
        if since is None:
            raise QboFault(
                "2020", "Required param missing", "changedSince is missing or invalid", element="changedSince"
            )
        return self.query.cdc(names, since)

    def _read(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        entity = URL_ENTITY[match["entity"]]
        return {entity: self.state.get(entity, match["id"])}

    def _write(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        entity = URL_ENTITY[match["entity"]]
        operation = (request.param("operation") or "").lower()
        body = _body(request)
        return {entity: self.writer.write(entity, operation, body, request.param("requestid"))}

    def _send(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        invoice = self.writer.send(match["id"], request.param("sendTo"), request.param("requestid"))
        return {"Invoice": invoice}

    def _batch(self, request: SandboxRequest, match: re.Match[str]) -> JsonObject:
        return self.writer.batch(_body(request))


def _body(request: SandboxRequest) -> JsonObject:
    try:
        body = request.payload()
    except ValueError:
        raise QboFault(
            "2000", "Request has invalid or unsupported property", "Request body is not valid JSON"
        ) from None
    if not isinstance(body, dict):
        raise QboFault(
            "2000", "Request has invalid or unsupported property", "Request body must be an object"
        )
    return body
