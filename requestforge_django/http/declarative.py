"""Declarative clients: a partner API described as a class of annotated method stubs.

::

    @http_client("billing")                    # the client registered as "billing"
    class Billing:
        @get("/invoices/{invoice_id}")
        def invoice(self, invoice_id: int, expand: str | None = None) -> dict: ...

        @post("/invoices")
        def create(self, body: dict, headers: dict | None = None) -> HttpResponse: ...

    Billing().invoice(42, expand="lines")     # GET /invoices/42?expand=lines -> parsed JSON

The stubs' bodies never run. A call binds its arguments to the stub's signature
(a wrong call is a ``TypeError``, as for any function) and turns them into one
:class:`HttpRequest`:

* ``{name}`` placeholders of the path take the parameter of that name, URL-quoted (a
  ``/`` in a value cannot reach another resource). A placeholder that is not a
  parameter is a :class:`ConfigurationError` when the class is *defined*, not on the
  first call in production;
* ``body`` is the JSON body (POST, PUT, PATCH and DELETE; a GET with a ``body``
  parameter is refused at definition time);
* ``headers`` (a mapping) adds request headers;
* every other parameter, and the contents of a ``**kwargs`` parameter, go to the query
  string, where ``None`` values are left out (so optional filters read naturally).

An ``async def`` stub makes an ``async`` method: the same request, sent through
:meth:`HttpClient.arequest` (the async path; see ``docs/async.md``).

The result is the parsed JSON body (``None`` for 204 or an empty body), after
``raise_for_status()`` so that an error payload is never mistaken for data; or the
:class:`HttpResponse` itself, whatever its status, when the method is annotated
``-> HttpResponse`` (string annotations from ``from __future__ import annotations``
work too).

Which :class:`HttpClient` sends is decided per call, in this order:

1. ``client=`` given when the instance was created (tests, ad-hoc wiring);
2. the class binding: ``@http_client("billing")`` / ``@http_client(client="billing")``
   asks the resolver installed with :func:`set_client_resolver` for the client of that
   name *at call time* (the Django app installs its registry's ``get_client``), so
   classes can be defined at import time, before settings are read, and a client
   rebuilt after an admin edit is picked up; ``@http_client(base_url=..., **config)``
   or ``@http_client(config=HttpClientConfig(...))`` makes one standalone client
   **per decorated class**, validated when the class is defined, created on first use
   and shared by all instances and threads (an ``HttpClient`` is thread-safe, and
   sharing keeps its connections warm).

``service_client`` is the same decorator under a second name (an alias): resilience
(retries, circuit breaker, rate limit) is part of the client's configuration here,
not of the decorator.
"""

from __future__ import annotations

import asyncio
import dataclasses
import functools
import inspect
import re
import threading
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import quote

from .client import HttpClient
from .config import HttpClientConfig
from .exceptions import ConfigurationError
from .messages import HttpMethod, HttpRequest, HttpResponse

F = TypeVar("F", bound=Callable[..., Any])
C = TypeVar("C", bound=type)

Resolver = Callable[[str], HttpClient]
AsyncResolver = Callable[[str], Awaitable[HttpClient]]

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_INSTANCE_CLIENT = "_requestforge_client"
_BINDING = "__requestforge_binding__"
_ENDPOINT = "__requestforge_endpoint__"
BODY = "body"
HEADERS = "headers"

# -- the per-process registry hook ---------------------------------------------------------
_resolver: Resolver | None = None
_async_resolver: AsyncResolver | None = None


def set_client_resolver(resolver: Resolver | None, *, async_resolver: AsyncResolver | None = None) -> Resolver | None:
    """Install the function that turns a client name into an :class:`HttpClient`; return the previous one.

    One slot per process: the Django app installs its registry when it starts (with
    ``aget_client`` as the ``async_resolver``), tests install a fake and put the previous
    resolver back. ``None`` uninstalls. ``async def`` methods resolve through
    ``async_resolver``; without one, ``resolver`` runs in a worker thread (it may read the
    database), never on the event loop.
    """
    global _resolver, _async_resolver
    for value, field in ((resolver, "resolver"), (async_resolver, "async_resolver")):
        if value is not None and not callable(value):
            raise ConfigurationError(f"must be callable or None, got {value!r}", field=field)
    previous, _resolver, _async_resolver = _resolver, resolver, async_resolver
    return previous


# -- endpoints (method decorators) -----------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    """What a decorated method sends, worked out once when the class is defined."""

    method: HttpMethod
    path: str
    qualname: str
    self_name: str
    path_params: frozenset[str]
    var_keyword: str | None
    returns_response: bool

    def build_request(self, arguments: Mapping[str, Any]) -> HttpRequest:
        """The request for one call's bound arguments (``self`` included, defaults applied)."""
        path = _PLACEHOLDER.sub(lambda match: self._path_value(match.group(1), arguments), self.path)
        query: dict[str, Any] = {}
        headers: Mapping[str, Any] | None = None
        body: Any = None
        for name, value in arguments.items():
            if name == self.self_name or name in self.path_params:
                continue
            if name == self.var_keyword:
                query.update((key, item) for key, item in value.items() if item is not None)
            elif name == BODY and self.method is not HttpMethod.GET:
                body = value
            elif name == HEADERS:
                if value is not None and not isinstance(value, Mapping):
                    raise TypeError(f"{self.qualname}() headers must be a mapping, got {type(value).__name__}")
                headers = value
            elif value is not None:
                query[name] = value
        return HttpRequest(self.method, path, headers or {}, query or None, body)

    def _path_value(self, name: str, arguments: Mapping[str, Any]) -> str:
        value = arguments[name]
        if value is None:
            raise ValueError(f"{self.qualname}() path parameter {name!r} is None")
        return quote(str(value), safe="")

    def result(self, response: HttpResponse) -> Any:
        if self.returns_response:
            return response
        response.raise_for_status()
        if response.status_code == 204 or not response.content:
            return None
        return response.json()


def _endpoint_decorator(method: HttpMethod) -> Callable[[str], Callable[[F], F]]:
    verb = method.value.lower()

    def with_path(path: str) -> Callable[[F], F]:
        if not isinstance(path, str):
            raise ConfigurationError(f"use @{verb}(path) with a path string, got {path!r}", field="path")

        def decorate(func: F) -> F:
            endpoint = _endpoint_for(method, path, func)
            return _stub_caller(func, endpoint)  # type: ignore[return-value]

        return decorate

    with_path.__name__ = with_path.__qualname__ = verb
    with_path.__doc__ = f"Mark a method as ``{method.value} path``; ``{{name}}`` placeholders take the parameters of that name."
    return with_path


get = _endpoint_decorator(HttpMethod.GET)
post = _endpoint_decorator(HttpMethod.POST)
put = _endpoint_decorator(HttpMethod.PUT)
patch = _endpoint_decorator(HttpMethod.PATCH)
delete = _endpoint_decorator(HttpMethod.DELETE)


def _endpoint_for(method: HttpMethod, path: str, func: Callable[..., Any]) -> Endpoint:
    """Check the stub against the path and the rules, raising :class:`ConfigurationError` at definition time."""
    where = f"@{method.value.lower()}({path!r}) on {getattr(func, '__qualname__', func)!r}"
    if not inspect.isfunction(func):
        raise ConfigurationError(f"{where}: expected a plain method, got {type(func).__name__}", field="method")
    if hasattr(func, _ENDPOINT):
        raise ConfigurationError(f"{where}: the method already has an HTTP verb", field="method")
    parameters = list(inspect.signature(func).parameters.values())
    if not parameters or parameters[0].kind not in (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD):
        raise ConfigurationError(f"{where}: must be an instance method taking self first", field="method")
    self_name, rest = parameters[0].name, parameters[1:]
    if any(p.kind is inspect.Parameter.VAR_POSITIONAL for p in rest):
        raise ConfigurationError(f"{where}: *args cannot be mapped to names; list the parameters", field="method")
    named = [p.name for p in rest if p.kind is not inspect.Parameter.VAR_KEYWORD]
    var_keyword = next((p.name for p in rest if p.kind is inspect.Parameter.VAR_KEYWORD), None)
    placeholders = _PLACEHOLDER.findall(path)
    for placeholder in placeholders:
        if not placeholder.isidentifier():
            raise ConfigurationError(f"{where}: placeholder {{{placeholder}}} is not a parameter name", field="path")
        if placeholder not in named:
            known = ", ".join(named) or "none"
            raise ConfigurationError(
                f"{where}: path placeholder {{{placeholder}}} is not a parameter of the method (parameters: {known})", field="path"
            )
    if method is HttpMethod.GET and BODY in named and BODY not in placeholders:
        raise ConfigurationError(f"{where}: a GET request has no body; rename the 'body' parameter", field="method")
    return Endpoint(
        method=method,
        path=path,
        qualname=func.__qualname__,
        self_name=self_name,
        path_params=frozenset(placeholders),
        var_keyword=var_keyword,
        returns_response=_returns_response(func),
    )


def _returns_response(func: Callable[..., Any]) -> bool:
    """Whether the return annotation is :class:`HttpResponse`, also when it is a string."""
    annotation = inspect.signature(func).return_annotation
    if annotation is inspect.Signature.empty:
        return False
    if isinstance(annotation, str):
        text = annotation.strip().strip("'\"")
        try:
            annotation = eval(text, getattr(func, "__globals__", {}))  # what typing.get_type_hints does
        except Exception:  # e.g. imported only under TYPE_CHECKING: judge by the name
            return text.rsplit(".", 1)[-1] == "HttpResponse"
    return isinstance(annotation, type) and issubclass(annotation, HttpResponse)


def _stub_caller(func: Callable[..., Any], endpoint: Endpoint) -> Callable[..., Any]:
    signature = inspect.signature(func)

    def build(self: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> HttpRequest:
        try:
            bound = signature.bind(self, *args, **kwargs)
        except TypeError as exc:
            raise TypeError(f"{endpoint.qualname}() {exc}") from None
        bound.apply_defaults()
        return endpoint.build_request(bound.arguments)

    if inspect.iscoroutinefunction(func):  # ``async def``: sent through the async path (HttpClient.arequest)

        @functools.wraps(func)
        async def acall(self: Any, *args: Any, **kwargs: Any) -> Any:
            request = build(self, args, kwargs)
            return endpoint.result(await (await aclient_of(self)).arequest(request))

        setattr(acall, _ENDPOINT, endpoint)
        return acall

    @functools.wraps(func)  # keeps __name__, __doc__ and (through __wrapped__) the signature
    def call(self: Any, *args: Any, **kwargs: Any) -> Any:
        return endpoint.result(client_of(self).request(build(self, args, kwargs)))

    setattr(call, _ENDPOINT, endpoint)
    return call


# -- bindings (class decorator) ----------------------------------------------------------------
class _Binding:
    async def aclient(self, owner: type) -> HttpClient:
        """:meth:`client` for ``async def`` methods (bindings that do no I/O answer inline)."""
        return self.client(owner)

    def client(self, owner: type) -> HttpClient:
        raise ConfigurationError(
            f"{owner.__qualname__} has no client: bind it with @http_client(name) or @http_client(base_url=...), "
            "or pass client= when creating the instance",
            field="client",
        )


@dataclass(frozen=True)
class _ByName(_Binding):
    name: str

    def client(self, owner: type) -> HttpClient:
        return self._resolver(owner)(self.name)

    async def aclient(self, owner: type) -> HttpClient:
        """The client from the async resolver, else from the sync one in a worker thread (it may read the database)."""
        resolver = _async_resolver
        if resolver is not None:
            return await resolver(self.name)
        return await asyncio.to_thread(self._resolver(owner), self.name)

    def _resolver(self, owner: type) -> Resolver:
        resolver = _resolver
        if resolver is None:
            raise ConfigurationError(
                f"{owner.__qualname__} is bound to the client {self.name!r} but no client resolver is installed: "
                "add 'requestforge_django' to INSTALLED_APPS (it installs one when Django starts), call "
                "set_client_resolver(), or pass client= when creating the instance",
                field="client",
            )
        return resolver


@dataclass(frozen=True)
class _Fixed(_Binding):
    fixed: HttpClient

    def client(self, owner: type) -> HttpClient:
        return self.fixed


class _Standalone(_Binding):
    """One client per decorated class, built on first use from a config validated at definition time."""

    def __init__(self, config: HttpClientConfig) -> None:
        self.config = config
        self._client: HttpClient | None = None
        self._lock = threading.Lock()

    def client(self, owner: type) -> HttpClient:
        client = self._client
        if client is None:
            with self._lock:
                if self._client is None:
                    self._client = HttpClient(self.config)
                client = self._client
        return client


_UNBOUND = _Binding()
_CONFIG_FIELDS = frozenset(f.name for f in dataclasses.fields(HttpClientConfig))
#: The names of the ``REQUESTFORGE`` client keys, for the two options everyone reaches for.
_OPTION_ALIASES = {"timeout": "default_timeout", "headers": "default_headers"}


def http_client(
    target: Any = None,
    /,
    *,
    client: str | HttpClient | None = None,
    base_url: str | None = None,
    config: HttpClientConfig | None = None,
    **options: Any,
) -> Any:
    """Make a class declarative; see the module docstring.

    ``@http_client("billing")`` / ``@http_client(client="billing")``: the registered
    client of that name, resolved at call time. ``@http_client(base_url=..., **options)``
    (``options`` are :class:`HttpClientConfig` fields such as ``default_timeout`` or
    ``retry_strategy``; ``timeout`` and ``headers`` are accepted for ``default_timeout``
    and ``default_headers``) or ``@http_client(config=...)``: a standalone client per class.
    ``@http_client(client=HttpClient(...))``: that client. Bare ``@http_client``: each
    instance must be given ``client=``.

    Every instance accepts ``client=`` (keyword) in its constructor, which wins over the
    class binding.
    """
    if isinstance(target, type):  # bare @http_client
        if client is not None or base_url is not None or config is not None or options:
            raise ConfigurationError("bare @http_client takes no arguments", field="client")
        return _decorate(target, _UNBOUND)
    if target is not None and not isinstance(target, str):
        raise ConfigurationError(f"expected a client name, got {target!r}", field="client")
    if target is not None and client is not None:
        raise ConfigurationError("name the client once: @http_client('name') or @http_client(client='name')", field="client")
    chosen = target if target is not None else client
    standalone = base_url is not None or config is not None or bool(options)
    if chosen is not None and standalone:
        raise ConfigurationError(
            "a client bound by name or instance is configured where it is registered; drop base_url/config/options", field="client"
        )
    binding: _Binding
    if isinstance(chosen, str):
        if not chosen.strip():
            raise ConfigurationError("must be a non-empty client name", field="client")
        binding = _ByName(chosen)
    elif chosen is not None:
        if not callable(getattr(chosen, "request", None)):
            raise ConfigurationError(f"must be a client name or an HttpClient, got {chosen!r}", field="client")
        binding = _Fixed(chosen)
    elif standalone:
        binding = _Standalone(_standalone_config(base_url, config, options))
    else:
        binding = _UNBOUND

    def decorate(cls: C) -> C:
        return _decorate(cls, binding)

    return decorate


service_client = http_client


def _standalone_config(base_url: str | None, config: HttpClientConfig | None, options: Mapping[str, Any]) -> HttpClientConfig:
    values: dict[str, Any] = {}
    for name, value in options.items():
        field_name = _OPTION_ALIASES.get(name, name)
        if field_name not in _CONFIG_FIELDS:
            raise ConfigurationError(f"is not an HttpClientConfig field (one of: {', '.join(sorted(_CONFIG_FIELDS))})", field=name)
        if field_name in values:
            raise ConfigurationError(f"given twice (as {field_name!r} and an alias)", field=field_name)
        values[field_name] = value
    if base_url is not None:
        values["base_url"] = base_url.rstrip("/") if isinstance(base_url, str) else base_url
    if config is None:
        return HttpClientConfig(**values)
    if not isinstance(config, HttpClientConfig):
        raise ConfigurationError(f"must be an HttpClientConfig, got {config!r}", field="config")
    return dataclasses.replace(config, **values)


def _decorate(cls: C, binding: _Binding) -> C:
    if not isinstance(cls, type):
        raise ConfigurationError(f"@http_client decorates a class, got {cls!r}", field="client")
    setattr(cls, _BINDING, binding)
    own_init = cls.__dict__.get("__init__")
    passes_client = own_init is not None and "client" in inspect.signature(own_init).parameters

    def __init__(self: Any, *args: Any, client: HttpClient | None = None, **kwargs: Any) -> None:
        if client is not None:
            if not callable(getattr(client, "request", None)):
                raise TypeError(f"{cls.__qualname__}() client must be an HttpClient, got {type(client).__name__}")
            object.__setattr__(self, _INSTANCE_CLIENT, client)
        if passes_client:
            kwargs["client"] = client
        if own_init is not None:
            own_init(self, *args, **kwargs)
        else:
            super(cls, self).__init__(*args, **kwargs)  # type: ignore[arg-type]

    if own_init is not None:
        functools.update_wrapper(__init__, own_init)
        del __init__.__wrapped__  # type: ignore[attr-defined]  # the signature below is the true one
        signature = inspect.signature(own_init)
    else:
        signature = inspect.Signature([inspect.Parameter("self", inspect.Parameter.POSITIONAL_OR_KEYWORD)])
    if "client" not in signature.parameters:
        params = list(signature.parameters.values())
        at = next((i for i, p in enumerate(params) if p.kind is inspect.Parameter.VAR_KEYWORD), len(params))
        params.insert(at, inspect.Parameter("client", inspect.Parameter.KEYWORD_ONLY, default=None, annotation="HttpClient | None"))
        signature = signature.replace(parameters=params)
    __init__.__signature__ = signature  # type: ignore[attr-defined]
    __init__.__qualname__ = f"{cls.__qualname__}.__init__"
    cls.__init__ = __init__  # type: ignore[misc]
    return cls


def client_of(instance: Any) -> HttpClient:
    """The :class:`HttpClient` a declarative instance sends through now (injected, else the class binding)."""
    injected: HttpClient | None = getattr(instance, "__dict__", {}).get(_INSTANCE_CLIENT)
    if injected is not None:
        return injected
    return _binding_of(type(instance)).client(type(instance))


async def aclient_of(instance: Any) -> HttpClient:
    """:func:`client_of` for ``async def`` methods: a client resolved by name is looked up without blocking the loop."""
    injected: HttpClient | None = getattr(instance, "__dict__", {}).get(_INSTANCE_CLIENT)
    if injected is not None:
        return injected
    return await _binding_of(type(instance)).aclient(type(instance))


def _binding_of(owner: type) -> _Binding:
    binding: _Binding | None = getattr(owner, _BINDING, None)
    if binding is None:
        raise ConfigurationError(
            f"{owner.__qualname__} is not decorated with @http_client; decorate it or pass client= to an instance", field="client"
        )
    return binding


def endpoints(cls: type) -> dict[str, Endpoint]:
    """The declarative methods of ``cls`` (inherited ones included), by attribute name."""
    found: dict[str, Endpoint] = {}
    for klass in reversed(cls.__mro__):
        for name, value in vars(klass).items():
            endpoint = getattr(value, _ENDPOINT, None)
            if isinstance(endpoint, Endpoint):
                found[name] = endpoint
            else:
                found.pop(name, None)
    return found
