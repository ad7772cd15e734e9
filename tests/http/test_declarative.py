"""Declarative clients: the mapping rules, definition-time errors and client binding.

This module uses ``from __future__ import annotations`` on purpose: every annotation
below is a string, which is how most projects will write their clients.
"""

from __future__ import annotations

import inspect
import json

import pytest
import responses

import requestforge_django
from requestforge_django.http import declarative
from requestforge_django.http.client import HttpClient
from requestforge_django.http.config import HttpClientConfig, HttpClientConfigBuilder
from requestforge_django.http.declarative import (
    client_of,
    delete,
    endpoints,
    get,
    http_client,
    patch,
    post,
    put,
    service_client,
    set_client_resolver,
)
from requestforge_django.http.exceptions import ConfigurationError, HttpStatusException
from requestforge_django.http.messages import HttpMethod, HttpResponse

BASE = "https://billing.test"


def partner() -> HttpClient:
    return HttpClient(HttpClientConfigBuilder().with_base_url(BASE).build())


@pytest.fixture
def resolver():
    """Installs a fake registry for the test and restores whatever was there before."""
    asked: list[str] = []
    clients = {"billing": partner()}

    def resolve(name: str) -> HttpClient:
        asked.append(name)
        return clients[name]

    previous = set_client_resolver(resolve)
    try:
        yield asked
    finally:
        set_client_resolver(previous)


@pytest.fixture
def no_resolver():
    previous = set_client_resolver(None)
    try:
        yield
    finally:
        set_client_resolver(previous)


@http_client
class Billing:
    """Invoices of the billing partner."""

    @get("/invoices/{invoice_id}")
    def invoice(self, invoice_id: int, expand: str | None = None, page: int = 1) -> dict:
        """One invoice."""

    @get("/files/{name}")
    def file(self, name: str) -> HttpResponse: ...

    @get("/search")
    def search(self, headers: dict | None = None, **filters: object) -> list: ...

    @post("/customers/{customer_id}/invoices")
    def create(self, customer_id: str, body: dict, dry_run: bool | None = None, headers: dict | None = None) -> dict: ...

    @put("/invoices/{invoice_id}")
    def replace(self, invoice_id: int, body: dict) -> dict: ...

    @patch("/invoices/{invoice_id}")
    def amend(self, invoice_id: int, body: dict) -> dict: ...

    @delete("/invoices/{invoice_id}")
    def cancel(self, invoice_id: int, reason: str | None = None) -> None: ...

    @delete("/invoices/{invoice_id}/lines")
    def remove_lines(self, invoice_id: int, body: list) -> None: ...


def billing() -> Billing:
    return Billing(client=partner())


def sent(index: int = 0):
    return responses.calls[index].request


# -- request mapping ---------------------------------------------------------------------------
@responses.activate
def test_get_fills_the_path_and_sends_the_rest_as_query_leaving_out_none():
    responses.get(f"{BASE}/invoices/42", json={"id": 42})
    assert billing().invoice(42) == {"id": 42}
    assert sent().url == f"{BASE}/invoices/42?page=1"  # defaults are sent, None is not
    billing().invoice(42, expand="lines", page=3)
    assert sent(1).url == f"{BASE}/invoices/42?expand=lines&page=3"
    assert sent(1).method == "GET" and sent(1).body is None


@responses.activate
def test_positional_and_keyword_calls_send_the_same_request():
    responses.get(f"{BASE}/invoices/7", json={})
    client = billing()
    client.invoice(7, "lines", 2)
    client.invoice(page=2, invoice_id=7, expand="lines")
    assert sent(0).url == sent(1).url == f"{BASE}/invoices/7?expand=lines&page=2"


@responses.activate
def test_path_values_are_url_quoted():
    responses.get(f"{BASE}/files/a%2F..%2Fsecret%20file%3F.txt", body=b"data")
    response = billing().file("a/../secret file?.txt")
    assert response.content == b"data"
    assert sent().path_url == "/files/a%2F..%2Fsecret%20file%3F.txt"


@responses.activate
def test_headers_parameter_adds_request_headers_and_kwargs_go_to_the_query():
    responses.get(f"{BASE}/search", json=[])
    billing().search(headers={"X-Trace": "t-1"}, status="open", customer=None, limit=5)
    assert sent().headers["X-Trace"] == "t-1"
    assert sent().url == f"{BASE}/search?status=open&limit=5"


@responses.activate
def test_post_sends_body_as_json_and_other_parameters_as_query():
    responses.post(f"{BASE}/customers/c%201/invoices", json={"id": 1}, status=201)
    result = billing().create("c 1", {"amount": 10}, dry_run=True, headers={"Idempotency-Key": "k"})
    assert result == {"id": 1}
    assert sent().method == "POST"
    assert sent().url == f"{BASE}/customers/c%201/invoices?dry_run=True"
    assert json.loads(sent().body) == {"amount": 10}
    assert sent().headers["Content-Type"] == "application/json"
    assert sent().headers["Idempotency-Key"] == "k"


@responses.activate
def test_put_patch_delete():
    responses.put(f"{BASE}/invoices/1", json={"v": "put"})
    responses.patch(f"{BASE}/invoices/1", json={"v": "patch"})
    responses.delete(f"{BASE}/invoices/1", status=204)
    responses.delete(f"{BASE}/invoices/1/lines", status=204)
    client = billing()
    assert client.replace(1, {"a": 1}) == {"v": "put"}
    assert client.amend(1, body={"a": 2}) == {"v": "patch"}
    assert client.cancel(1, reason="duplicate") is None
    assert client.remove_lines(1, [3, 4]) is None
    assert [(c.request.method, c.request.url) for c in responses.calls] == [
        ("PUT", f"{BASE}/invoices/1"),
        ("PATCH", f"{BASE}/invoices/1"),
        ("DELETE", f"{BASE}/invoices/1?reason=duplicate"),
        ("DELETE", f"{BASE}/invoices/1/lines"),
    ]
    assert json.loads(sent(0).body) == {"a": 1} and json.loads(sent(1).body) == {"a": 2}
    assert json.loads(sent(3).body) == [3, 4]  # DELETE may carry a body too


# -- results -----------------------------------------------------------------------------------
@responses.activate
def test_json_result_none_for_204_or_empty_and_errors_raise():
    client = billing()
    responses.get(f"{BASE}/invoices/1", status=204)
    responses.get(f"{BASE}/invoices/2", body=b"")
    responses.get(f"{BASE}/invoices/3", json={"error": "gone"}, status=404)
    assert client.invoice(1) is None
    assert client.invoice(2) is None
    with pytest.raises(HttpStatusException) as caught:
        client.invoice(3)  # an error payload is never returned as if it were the invoice
    assert caught.value.status_code == 404


@responses.activate
def test_httpresponse_annotation_returns_the_response_whatever_the_status():
    responses.get(f"{BASE}/files/missing", json={"error": "nope"}, status=404)
    response = billing().file("missing")
    assert isinstance(response, HttpResponse) and response.status_code == 404


@responses.activate
def test_httpresponse_annotation_as_a_class_and_under_a_qualified_name():
    def raw(self, name: str): ...

    raw.__annotations__["return"] = HttpResponse  # not a string, as without the __future__ import

    def qualified(self, name: str): ...

    qualified.__annotations__["return"] = "messages.HttpResponse"  # a name that does not resolve here

    def parsed(self, name: str) -> dict: ...

    @http_client
    class Files:
        one = get("/files/{name}")(raw)
        two = get("/files/{name}")(qualified)
        three = get("/files/{name}")(parsed)

    responses.get(f"{BASE}/files/x", json={"n": 1})
    files = Files(client=partner())
    assert isinstance(files.one("x"), HttpResponse)
    assert isinstance(files.two("x"), HttpResponse)
    assert files.three("x") == {"n": 1}


# -- calls are checked like function calls -------------------------------------------------------
@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda b: b.invoice(), "missing a required argument: 'invoice_id'"),
        (lambda b: b.invoice(1, "x", 2, 3), "too many positional arguments"),
        (lambda b: b.invoice(1, colour="red"), "unexpected keyword argument 'colour'"),
        (lambda b: b.invoice(1, invoice_id=2), "multiple values for argument 'invoice_id'"),
    ],
)
def test_a_wrong_call_is_a_type_error_naming_the_method(call, message):
    with pytest.raises(TypeError, match=message) as caught:
        call(billing())
    assert "Billing.invoice()" in str(caught.value)


def test_headers_must_be_a_mapping():
    with pytest.raises(TypeError, match="headers must be a mapping"):
        billing().search(headers=["X-A: 1"])


def test_a_none_path_value_is_refused():
    with pytest.raises(ValueError, match="'invoice_id' is None"):
        billing().invoice(None)


def test_methods_keep_name_doc_and_signature():
    assert Billing.invoice.__name__ == "invoice"
    assert Billing.invoice.__doc__ == "One invoice."
    assert Billing.__doc__ == "Invoices of the billing partner."
    assert list(inspect.signature(Billing.invoice).parameters) == ["self", "invoice_id", "expand", "page"]
    assert list(inspect.signature(billing().invoice).parameters) == ["invoice_id", "expand", "page"]
    assert inspect.signature(Billing.create).return_annotation == "dict"
    described = endpoints(Billing)
    assert described["invoice"].method is HttpMethod.GET and described["invoice"].path == "/invoices/{invoice_id}"
    assert set(described) == {"invoice", "file", "search", "create", "replace", "amend", "cancel", "remove_lines"}


# -- definition-time errors ------------------------------------------------------------------------
def test_a_placeholder_missing_from_the_signature_fails_when_the_class_is_defined():
    with pytest.raises(ConfigurationError) as caught:

        @http_client("billing")
        class Broken:
            @get("/customers/{customer_id}/invoices/{invoice_id}")
            def invoice(self, invoice_id: int) -> dict: ...

    message = str(caught.value)
    assert "Broken.invoice" in message and "{customer_id}" in message
    assert caught.value.field == "path"


@pytest.mark.parametrize(
    ("define", "fragment"),
    [
        (lambda: get("/x/{}")(lambda self: None), "placeholder {} is not a parameter name"),
        (lambda: get("/x/{a.b}")(lambda self, a: None), "{a.b}"),
        (lambda: get("/x/{kw}")(lambda self, **kw: None), "{kw} is not a parameter of the method"),
        (lambda: get("/x")(lambda self, body: None), "a GET request has no body"),
        (lambda: get("/x")(lambda self, *ids: None), "*args"),
        (lambda: get("/x")(lambda: None), "instance method taking self"),
        (lambda: get("/x")(lambda *, self: None), "instance method taking self"),
        (lambda: get(lambda self: None), "use @get(path)"),
        (lambda: post("/x")(get("/y")(lambda self: None)), "already has an HTTP verb"),
        (lambda: get("/x")(staticmethod(lambda: None)), "expected a plain method"),
    ],
)
def test_other_definition_errors(define, fragment):
    with pytest.raises(ConfigurationError) as caught:
        define()
    assert fragment in str(caught.value)


def test_async_methods_become_coroutine_functions():
    # Sent through HttpClient.arequest; behaviour is tested in tests/http/test_async_client.py.
    async def fetch(self) -> dict: ...

    assert inspect.iscoroutinefunction(get("/x")(fetch))


@pytest.mark.parametrize(
    ("args", "kwargs", "field"),
    [
        ((), {"base_url": "ftp://nope"}, "base_url"),
        ((), {"base_url": BASE, "retries": 3}, "retries"),
        ((), {"base_url": BASE, "timeout": 5, "default_timeout": 6}, "default_timeout"),
        ((), {"base_url": BASE, "timeout": -1}, "default_timeout"),
        (("billing",), {"base_url": BASE}, "client"),
        (("billing",), {"client": "other"}, "client"),
        (("",), {}, "client"),
        ((42,), {}, "client"),
        ((), {"client": object()}, "client"),
        ((), {"config": {"base_url": BASE}}, "config"),
    ],
)
def test_invalid_bindings_fail_at_definition(args, kwargs, field):
    with pytest.raises(ConfigurationError) as caught:
        http_client(*args, **kwargs)
    assert caught.value.field == field


# -- binding --------------------------------------------------------------------------------------
@http_client("billing")
class NamedBilling:
    @get("/invoices/{invoice_id}")
    def invoice(self, invoice_id: int) -> dict: ...


@service_client(client="billing")
class KeywordBilling:
    @get("/invoices/{invoice_id}")
    def invoice(self, invoice_id: int) -> dict: ...


@responses.activate
def test_name_binding_is_resolved_at_call_time_through_the_installed_resolver(resolver):
    responses.get(f"{BASE}/invoices/5", json={"id": 5})
    assert resolver == []  # defining the classes (at import) asked nothing
    assert NamedBilling().invoice(5) == {"id": 5}
    assert KeywordBilling().invoice(5) == {"id": 5}
    NamedBilling().invoice(5)
    assert resolver == ["billing", "billing", "billing"]  # every call asks: a rebuilt client is picked up


def test_a_name_bound_client_without_resolver_says_what_to_do(no_resolver):
    with pytest.raises(ConfigurationError) as caught:
        NamedBilling().invoice(1)
    message = str(caught.value)
    assert "NamedBilling" in message and "'billing'" in message and "set_client_resolver" in message


@responses.activate
def test_an_injected_client_wins_over_the_binding(no_resolver):
    responses.get(f"{BASE}/invoices/9", json={"id": 9})
    injected = partner()
    instance = NamedBilling(client=injected)
    assert client_of(instance) is injected
    assert instance.invoice(9) == {"id": 9}


def test_set_client_resolver_returns_the_previous_one_and_checks_its_argument(no_resolver):
    def first(name):
        return partner()

    assert set_client_resolver(first) is None
    assert set_client_resolver(None) is first
    with pytest.raises(ConfigurationError):
        set_client_resolver("billing")  # type: ignore[arg-type]


@responses.activate
def test_standalone_client_is_one_per_class_validated_at_definition_and_built_on_first_use():
    @http_client(base_url=f"{BASE}/", timeout=5, default_headers={"X-App": "shop"})
    class Standalone:
        @get("/ping")
        def ping(self) -> dict: ...

    binding = Standalone.__requestforge_binding__
    assert binding._client is None  # nothing built while defining the class
    responses.get(f"{BASE}/ping", json={"pong": True})
    first, second = Standalone(), Standalone()
    assert first.ping() == {"pong": True}
    assert client_of(first) is client_of(second)
    assert client_of(first).config.default_timeout == 5
    assert sent().headers["X-App"] == "shop"


def test_standalone_from_a_config_with_overrides():
    config = HttpClientConfig(base_url="https://elsewhere.test", default_timeout=3)

    @http_client(config=config, base_url=BASE)
    class FromConfig:
        pass

    built = client_of(FromConfig())
    assert (built.config.base_url, built.config.default_timeout) == (BASE, 3)


def test_a_client_instance_can_be_bound():
    shared = partner()

    @http_client(client=shared)
    class Bound:
        pass

    assert client_of(Bound()) is shared


def test_an_unbound_class_needs_an_injected_client():
    with pytest.raises(ConfigurationError, match="Billing has no client"):
        Billing().invoice(1)


def test_an_undecorated_class_is_reported():
    class Plain:
        @get("/x")
        def x(self) -> dict: ...

    with pytest.raises(ConfigurationError, match="not decorated with @http_client"):
        Plain().x()


@responses.activate
def test_own_init_keeps_working_alongside_client_injection():
    @http_client()
    class WithInit:
        def __init__(self, tenant: str, *, region: str = "eu") -> None:
            self.tenant, self.region = tenant, region

        @get("/tenants/{tenant}")
        def _fetch(self, tenant: str) -> dict: ...

        def profile(self) -> dict:
            return self._fetch(self.tenant)

    responses.get(f"{BASE}/tenants/acme", json={"name": "Acme"})
    instance = WithInit("acme", region="us", client=partner())
    assert (instance.tenant, instance.region) == ("acme", "us")
    assert instance.profile() == {"name": "Acme"}
    assert list(inspect.signature(WithInit).parameters) == ["tenant", "region", "client"]
    with pytest.raises(TypeError):
        WithInit()  # the class's own signature still applies
    with pytest.raises(TypeError, match="client must be an HttpClient"):
        WithInit("acme", client="billing")


def test_an_init_that_takes_client_itself_still_receives_it():
    got = []

    @http_client
    class Takes:
        def __init__(self, client=None) -> None:
            got.append(client)

    injected = partner()
    assert client_of(Takes(client=injected)) is injected and got == [injected]


def test_subclasses_inherit_endpoints_and_binding(resolver):
    class Child(NamedBilling):
        @get("/extra")
        def extra(self) -> dict: ...

    assert set(endpoints(Child)) == {"invoice", "extra"}
    assert client_of(Child()) is client_of(NamedBilling())


def test_exported_from_the_package_and_the_top_level():
    from requestforge_django import http

    for name in ("http_client", "service_client", "get", "post", "put", "patch", "delete"):
        assert getattr(requestforge_django, name) is getattr(declarative, name) is getattr(http, name)
    assert service_client is http_client
