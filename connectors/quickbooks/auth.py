"""QuickBooks OAuth2 through intuitlib.

Its AuthClient's `environment` argument accepts a discovery document URL, so
RELANCE_QUICKBOOKS_DISCOVERY_URL (or the connection's `discovery_url`) is passed straight to it
and it reads authorization_endpoint / token_endpoint from that document. The company (realmId)
comes with the redirect. Nothing here prints or logs a token.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import requests
from intuitlib.client import AuthClient  # intuitlib: this module loads only when tokens move
from intuitlib.enums import Scopes
from intuitlib.exceptions import AuthClientError

from connectors.base import AuthError, LedgerUnavailable
from connectors.oauth import oauth_error_code, raise_token_failure
from connectors.quickbooks.identity import ENV_DISCOVERY, NAME
from connectors.registry import OAuthEndpoints
from connectors.tokens import Refresher, RefreshRejected, Tokens

SCOPE = "com.intuit.quickbooks.accounting"


def intuit_client(client_id: str, client_secret: str, redirect_uri: str, discovery_url: str) -> Any:
    try:
        return AuthClient(client_id, client_secret, redirect_uri, discovery_url)
    except AuthClientError as error:
        raise LedgerUnavailable(
            f"the Intuit discovery document answered HTTP {error.status_code}", call=discovery_url
        ) from None
    except requests.RequestException as error:
        raise LedgerUnavailable(
            f"cannot reach the Intuit discovery document ({type(error).__name__})",
            call=discovery_url,
            hint=f"check the network, or {ENV_DISCOVERY}",
        ) from None


def _token_body(client: Any, **extra: str) -> dict[str, Any]:
    """The token-endpoint answer intuitlib keeps on its client, as the JSON body it was."""
    return {
        "access_token": client.access_token,
        "refresh_token": client.refresh_token,
        "expires_in": client.expires_in or 3600,
        "x_refresh_token_expires_in": client.x_refresh_token_expires_in,
        **extra,
    }


def refresher(client_id: str, client_secret: str, endpoints: OAuthEndpoints) -> Refresher:
    def refresh(tokens: Tokens) -> Tokens:
        client = intuit_client(client_id, client_secret, "", endpoints.discovery_url or "")
        now = datetime.now(UTC)
        try:
            client.refresh(refresh_token=tokens.refresh_token)
        except AuthClientError as error:
            raise_token_failure(error.status_code, oauth_error_code(error.response), NAME)
        except requests.RequestException as error:
            raise LedgerUnavailable(
                f"cannot reach the Intuit token endpoint ({type(error).__name__})"
            ) from None
        finally:
            client.close()
        return Tokens.from_response(_token_body(client), now=now, previous=tokens)

    return refresh


class IntuitAuthorization:
    """One consent: the AuthClient is made (discovery document read) before the user is sent."""

    def __init__(
        self, client_id: str, client_secret: str, *, redirect_uri: str, endpoints: OAuthEndpoints
    ) -> None:
        self._client = intuit_client(client_id, client_secret, redirect_uri, endpoints.discovery_url or "")

    def consent_url(self, state: str) -> str:
        url: str = self._client.get_authorization_url([Scopes.ACCOUNTING], state_token=state)
        return url

    def exchange(self, query: Mapping[str, str], *, echo: Callable[[str], None]) -> Tokens:
        intuit = self._client
        now = datetime.now(UTC)
        try:
            intuit.get_bearer_token(query["code"], realm_id=query.get("realmId"))
        except AuthClientError as error:
            try:
                raise_token_failure(error.status_code, oauth_error_code(error.response), NAME)
            except RefreshRejected:
                raise AuthError("Intuit refused the authorization code (invalid_grant); try again") from None
        except requests.RequestException as error:
            raise LedgerUnavailable(
                f"cannot reach the Intuit token endpoint ({type(error).__name__})"
            ) from None
        finally:
            intuit.close()
        realm = query.get("realmId") or intuit.realm_id
        if not realm:
            raise AuthError("Intuit did not say which company was authorised (no realmId)")
        return Tokens.from_response(_token_body(intuit, scope=SCOPE), now=now, account_id=str(realm))
