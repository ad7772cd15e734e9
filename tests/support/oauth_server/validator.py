"""DOT's own validator, plus the bookkeeping a test needs: which secret (version) obtained each token.

Client authentication and token storage are DOT's (``super()`` does the real work:
hashed-secret check, Basic-then-body order, refresh-token rotation). Two additions:

* an application may keep accepting its previous secret after a change
  (``keep_old``), as real authorization servers allow during a rotation; without it
  a stale process could not obtain an old-secret token at all and a test of
  "no old-secret token is used after a change" would prove nothing;
* every successful client authentication notes the secret version and the style
  (``client_secret_basic`` or ``client_secret_post``) on the oauthlib request, and
  :meth:`save_bearer_token` files them in the :mod:`.ledger` with the new token.
"""

from __future__ import annotations

import base64
import binascii
import time
from typing import Any
from urllib.parse import unquote_plus

from oauth2_provider.oauth2_validators import OAuth2Validator

from .ledger import fingerprint, ledger


class RecordingValidator(OAuth2Validator):
    def authenticate_client(self, request: Any, *args: Any, **kwargs: Any) -> bool:
        basic = self._presented_basic(request)
        if basic is not None and self._authenticate_basic_auth(request):
            return self._note(request, "client_secret_basic", *basic)
        body = (getattr(request, "client_id", None), getattr(request, "client_secret", None))
        if body[0] and body[1] and self._authenticate_request_body(request):
            return self._note(request, "client_secret_post", body[0], body[1])
        # DOT said no: an older secret kept for overlap (keep_old) may still be accepted.
        for method, presented in (("client_secret_basic", basic), ("client_secret_post", body)):
            if presented is None or not presented[0] or not presented[1]:
                continue
            version = ledger.secret_version(presented[0], presented[1])
            if version is not None and version.accepted and self._load_application(presented[0], request) is not None:
                return self._note(request, method, presented[0], presented[1])
        return False

    def _presented_basic(self, request: Any) -> tuple[str, str] | None:
        auth_string = self._extract_basic_auth(request)
        if not auth_string:
            return None
        try:
            client_id, _, secret = base64.b64decode(auth_string).decode("utf-8").partition(":")
        except (binascii.Error, UnicodeDecodeError, ValueError):
            return None
        return unquote_plus(client_id), unquote_plus(secret)

    def _note(self, request: Any, method: str, client_id: str, secret: str) -> bool:
        version = ledger.secret_version(client_id, secret)
        request.rf_auth_method = method
        request.rf_secret_version = None if version is None else version.version
        return True

    def save_bearer_token(self, token: dict[str, Any], request: Any, *args: Any, **kwargs: Any) -> Any:
        result = super().save_bearer_token(token, request, *args, **kwargs)
        client = getattr(request, "client", None)
        user = getattr(request, "user", None)
        refresh = token.get("refresh_token")
        ledger.record_issued(
            token["access_token"],
            {
                "client_id": getattr(client, "client_id", None),
                "user": getattr(user, "username", None),
                "grant_type": request.grant_type,
                "auth_method": getattr(request, "rf_auth_method", None),
                "secret_version": getattr(request, "rf_secret_version", None),
                "issued_at": time.time(),
                "expires_in": token.get("expires_in"),
                "refresh_token": None if not refresh else fingerprint(refresh),
            },
        )
        return result
