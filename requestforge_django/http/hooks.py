"""The four hook interfaces of the request lifecycle.

Order of a call (see :mod:`requestforge_django.http.client`): request hooks, auth
hook, send, 401 handling through the auth hook, retry decision, response hooks;
error hooks when the call fails for good.

Request, response and error hooks are *observers*: if one raises, the client logs the
failure with the hook's name and carries on as if the hook had not been there, so a
broken metrics hook never breaks a payment call. The auth hook is different: if it
cannot authenticate, sending the request anyway would be wrong, so its exceptions
propagate to the caller.
"""

from __future__ import annotations

import asyncio
import inspect
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from .paths import should_send_credentials

if TYPE_CHECKING:
    from .messages import HttpRequest, HttpResponse, RequestContext


class RequestHookInterface(ABC):
    """Sees (and may replace) each outgoing request, once per attempt."""

    @abstractmethod
    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        """Return the request to send (``request`` itself or a modified copy)."""


class ResponseHookInterface(ABC):
    """Sees (and may replace) the final response of a successful call."""

    @abstractmethod
    def after_response(self, response: HttpResponse, context: RequestContext) -> HttpResponse:
        """Return the response to hand to the caller."""


class ErrorHookInterface(ABC):
    """Told about the exception a call is about to raise."""

    @abstractmethod
    def on_error(self, error: Exception, context: RequestContext) -> None:
        """Observe ``error``; the client raises it afterwards whatever this does."""


class AuthHookInterface(ABC):
    """Authenticates requests and recovers from authentication failures.

    The client calls :meth:`before_request` on every attempt for which
    :meth:`should_authenticate` is true. When :meth:`is_auth_error` says a response
    means "your credentials are stale", the client calls :meth:`refresh_auth` and, if
    it returns ``True``, sends the request once more (and only once).
    """

    #: Paths (e.g. ``"/health"``: that path and everything below it) sent without credentials.
    #: Normalised and matched by :mod:`.paths`, the one rule every hook shares.
    excluded_paths: tuple[str, ...] = ()

    def should_authenticate(self, request: HttpRequest) -> bool:
        return should_send_credentials(request.url, self.excluded_paths)

    @abstractmethod
    def before_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        """Return ``request`` with credentials applied."""

    def is_auth_error(self, response: HttpResponse) -> bool:
        return response.status_code == 401

    def refresh_auth(self, context: RequestContext | None = None) -> bool:
        """Obtain fresh credentials; ``True`` means a retry is worth it. Static credentials cannot refresh.

        ``context`` is the call's own (the one :meth:`before_request` saw): per-call state such
        as "which token did this call send" lives in its ``metadata``, not on the hook.
        """
        return False

    def invalidate_auth(self) -> None:
        """Forget cached credentials (no-op for static credentials)."""
        return None

    # -- the async path (``HttpClient.arequest``) -------------------------------------------

    async def abefore_request(self, request: HttpRequest, context: RequestContext) -> HttpRequest:
        """:meth:`before_request` for the async path. Default: the sync method, inline.

        Right for hooks that do no I/O (static credentials); a hook that fetches
        credentials must override this so the event loop never waits on the fetch.
        """
        return self.before_request(request, context)

    async def arefresh_auth(self, context: RequestContext | None = None) -> bool:
        """:meth:`refresh_auth` for the async path. Default: the sync method in a worker thread."""
        return await asyncio.to_thread(refresh_auth, self, context)


def refresh_auth(hook: AuthHookInterface, context: RequestContext | None) -> bool:
    """``hook.refresh_auth(context)``; a hook written before the context was passed is called without it."""
    try:
        accepts_context = bool(inspect.signature(hook.refresh_auth).parameters)
    except (TypeError, ValueError):  # a builtin or C callable: assume the current signature
        accepts_context = True
    return bool(hook.refresh_auth(context) if accepts_context else hook.refresh_auth())


async def arefresh_auth(hook: AuthHookInterface, context: RequestContext | None) -> bool:
    """``await hook.arefresh_auth(context)``; a hook without the async method has its sync one run off the loop."""
    method = getattr(hook, "arefresh_auth", None)
    if method is None:
        return await asyncio.to_thread(refresh_auth, hook, context)
    return bool(await method(context))


async def acall(target: Any, async_name: str, sync_name: str, *args: Any) -> Any:
    """``await target.<async_name>(*args)`` when it has one, else ``target.<sync_name>(*args)`` off the loop.

    The one adapter between the async lifecycle and its collaborators (auth hooks, rate
    limiters, circuit breakers): one written for the sync path only may block (a Redis
    call, a token fetch), so its method runs in a worker thread, never on the event loop.
    """
    method: Callable[..., Awaitable[Any]] | None = getattr(target, async_name, None)
    if method is not None:
        return await method(*args)
    return await asyncio.to_thread(getattr(target, sync_name), *args)
