"""OAuth 2.0 Token Exchange (RFC 8693): trade another client's token for one for this API.

The subject token comes from a :class:`~.interfaces.TokenSource` the Django layer hands
in: the token manager of the client or pipeline named by ``SUBJECT_TOKEN_FROM``, so the
subject token is fetched through *its* cache and single flight, shared by every process,
never fetched a second time just because this client needs it.

Why these rules:

* no ``requested_token_type`` unless asked: the server's default is an access token,
  and only access tokens (or JWTs used as such) make sense in an ``Authorization``
  header, so only those may be asked for;
* the answer's ``issued_token_type`` (REQUIRED by RFC 8693 section 2.2.1) must be the
  requested type (the access-token URN by default), and ``token_type`` must not be
  ``N_A``: something that is not an access token is refused before it is cached;
* a rejected subject token (HTTP 400/401 with ``invalid_grant``, ``invalid_token`` or
  ``invalid_request``: RFC 8693 section 2.2.2 names ``invalid_request``, servers use
  all three) is replaced through its source (``force_refresh(rejected)``: the other
  client's single flight, so a token another process already replaced is reused) and
  the exchange is retried once. A second rejection, like every failure here, is a
  :class:`TokenExchangeException` naming this client and the subject client.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ..http.exceptions import AuthenticationException, ConfigurationError, HttpClientException
from ..http.messages import HttpResponse
from ..http.secrets import Secret
from .data import TokenData
from .interfaces import TokenSource
from .parsing import scrub, sent_values
from .providers import OAuth2Options, OAuth2TokenProvider

if TYPE_CHECKING:
    from typing_extensions import Unpack

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"
JWT_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:jwt"
#: The ``requested_token_type`` values that may be asked for (tokens usable in an Authorization header).
REQUESTABLE_TOKEN_TYPES: tuple[str, ...] = (ACCESS_TOKEN_TYPE, JWT_TOKEN_TYPE)
#: OAuth2 ``error`` values meaning "the subject token was refused".
SUBJECT_REJECTED_ERRORS = frozenset({"invalid_grant", "invalid_token", "invalid_request"})

#: Where the subject token comes from: a token source, or a callable returning a token or its text.
SubjectTokenSource = TokenSource | Callable[[], TokenData | str]

_TOKEN_TYPE_URI = re.compile(r"urn:[A-Za-z0-9:._~-]{1,200}")


class TokenExchangeException(AuthenticationException):
    """A token exchange failed; ``subject_service_name`` names the client or pipeline whose token was exchanged.

    ``subject_rejected`` tells that the partner refused the subject token (after the retry).
    """

    def __init__(self, message: str, *, subject_service_name: str, subject_rejected: bool = False, **kwargs: Any) -> None:
        self.subject_service_name = subject_service_name
        self.subject_rejected = subject_rejected
        super().__init__(message, **kwargs)


class TokenExchangeTokenProvider(OAuth2TokenProvider):
    """RFC 8693 token exchange: ``subject_token`` from ``subject_token_source``, + ``audience``/``resource``/``scope``."""

    grant_type = TOKEN_EXCHANGE_GRANT

    def __init__(
        self,
        token_url: str | None = None,
        *,
        subject_token_source: SubjectTokenSource,
        subject_service_name: str | None = None,
        subject_token_type: str = ACCESS_TOKEN_TYPE,
        requested_token_type: str | None = None,
        client_id: str | None = None,
        client_secret: str | Secret | None = None,
        scope: str | None = None,
        **options: Unpack[OAuth2Options],
    ) -> None:
        if not isinstance(subject_token_source, TokenSource) and not callable(subject_token_source):
            raise ConfigurationError("must be a TokenSource or a callable returning a token", field="subject_token_source")
        if not isinstance(subject_token_type, str) or not _TOKEN_TYPE_URI.fullmatch(subject_token_type):
            raise ConfigurationError(f"must be a token type URI, got {subject_token_type!r}", field="subject_token_type")
        if requested_token_type is not None and requested_token_type not in REQUESTABLE_TOKEN_TYPES:
            raise ConfigurationError(f"must be one of {', '.join(REQUESTABLE_TOKEN_TYPES)}", field="requested_token_type")
        name = subject_service_name or getattr(subject_token_source, "service_name", None)
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("name the client or pipeline the subject token comes from", field="subject_service_name")
        self._source = subject_token_source
        self.subject_service_name = name
        self.subject_token_type = subject_token_type
        self.requested_token_type = requested_token_type
        self._subject: Secret | None = None
        super().__init__(token_url, client_id=client_id, client_secret=client_secret, scope=scope, **options)

    # -- the grant -----------------------------------------------------------------------

    def fetch_token(self) -> TokenData:
        token_url = self.token_endpoint()
        subject = self._subject_token()
        first: AuthenticationException | None = None
        try:
            return self._exchange(token_url, subject)
        except TokenExchangeException:
            raise
        except AuthenticationException as exc:
            if not _subject_rejected(exc) or not isinstance(self._source, TokenSource):
                raise self._failure("token exchange failed", exc) from exc
            first = exc
        subject = self._subject_token(rejected=subject)
        try:
            return self._exchange(token_url, subject)
        except TokenExchangeException:
            raise
        except AuthenticationException as exc:
            rejected = _subject_rejected(exc)
            what = (
                "the partner rejected the subject token, and its replacement too"
                if rejected
                else "token exchange failed after a new subject token"
            )
            raise self._failure(what, exc, subject_rejected=rejected) from first

    def _exchange(self, token_url: str, subject: TokenData) -> TokenData:
        params: dict[str, Any] = {
            "grant_type": self.grant_type,
            "subject_token": Secret(subject.access_token),
            "subject_token_type": self.subject_token_type,
        }
        if self.requested_token_type is not None:
            params["requested_token_type"] = self.requested_token_type
        return self._request_token(token_url, {**params, **self._target_params()})

    def _grant_params(self, token_url: str) -> dict[str, Any]:  # pragma: no cover - fetch_token builds the form itself
        raise NotImplementedError

    def _subject_token(self, rejected: TokenData | None = None) -> TokenData:
        """The subject token from the source (replaced when ``rejected``); failures name both clients."""
        problem: HttpClientException | None = None
        token: TokenData | str | None = None
        try:
            if isinstance(self._source, TokenSource):
                token = self._source.force_refresh(rejected) if rejected is not None else self._source.get_token()
            else:
                token = self._source()
        except HttpClientException as exc:
            problem = exc
        if problem is not None:
            raise self._failure(f"could not obtain the subject token from {self.subject_service_name}", problem) from problem
        if isinstance(token, str) and token:
            return TokenData(access_token=token)
        if not isinstance(token, TokenData):
            raise TokenExchangeException(
                f"could not obtain the subject token from {self.subject_service_name}: its source returned {type(token).__name__}",
                service_name=self.service_name,
                subject_service_name=self.subject_service_name,
            )
        return token

    # -- the answer ------------------------------------------------------------------------

    def _parse(self, response: HttpResponse) -> TokenData:
        token = super()._parse(response)
        expected = self.requested_token_type or ACCESS_TOKEN_TYPE
        issued = token.extra.get("issued_token_type")
        problem = None
        if issued != expected:
            problem = f"the answer's issued_token_type is {_described(issued, response)}, expected {expected}"
        elif token.token_type.upper() == "N_A":
            problem = "the answer's token_type is N_A: the issued token is not an access token"
        if problem is not None:
            raise TokenExchangeException(
                f"token exchange answer refused (subject token from {self.subject_service_name}): {problem}",
                service_name=self.service_name,
                subject_service_name=self.subject_service_name,
                status_code=response.status_code,
                method="POST",
                url=response.request.url if response.request is not None else None,
            )
        return token

    def _failure(self, what: str, exc: HttpClientException, *, subject_rejected: bool = False) -> TokenExchangeException:
        auth = exc if isinstance(exc, AuthenticationException) else None
        return TokenExchangeException(
            f"{what} (subject token from {self.subject_service_name}): {exc.message}",
            service_name=self.service_name,
            subject_service_name=self.subject_service_name,
            subject_rejected=subject_rejected,
            status_code=auth.status_code if auth else None,
            error=auth.error if auth else None,
            error_description=auth.error_description if auth else None,
            method=exc.method,
            url=exc.url,
        )

    def __repr__(self) -> str:
        return super().__repr__()[:-1] + f", subject={self.subject_service_name!r}, subject_token_type={self.subject_token_type!r})"


def _described(issued: Any, response: HttpResponse) -> str:
    """A server-sent ``issued_token_type`` as it may be quoted: a URN (scrubbed of what was sent), else what it is not."""
    if issued is None:
        return "missing"
    if isinstance(issued, str) and _TOKEN_TYPE_URI.fullmatch(issued):
        return repr(scrub(issued, sent_values(response.request)))
    return "not a token type URI"


def _subject_rejected(exc: AuthenticationException) -> bool:
    return exc.status_code in (400, 401) and exc.error in SUBJECT_REJECTED_ERRORS
