"""Exceptions and messages cross process boundaries (Celery results, multiprocessing)."""

from __future__ import annotations

import pickle
from types import MappingProxyType

from requestforge_django.http.exceptions import AuthenticationException, HttpStatusException, MaxRetryException, TimeoutException
from requestforge_django.http.messages import HttpMethod, HttpRequest, HttpResponse


def make_response() -> HttpResponse:
    from requests.structures import CaseInsensitiveDict

    request = HttpRequest(HttpMethod.POST, "https://p.test/x", {"Authorization": "Bearer abcdefghijklmnopqrstu"}, json_data={"a": 1})
    return HttpResponse(503, MappingProxyType(CaseInsensitiveDict({"Retry-After": "3"})), b"{}", "https://p.test/x", 1.5, request)


def test_request_and_response_round_trip_through_pickle():
    response = pickle.loads(pickle.dumps(make_response()))
    assert response.status_code == 503
    assert response.header("retry-after") == "3"  # still case-insensitive
    assert response.request.header("authorization") == "Bearer abcdefghijklmnopqrstu"
    assert response.request.json_data == {"a": 1}


def test_exceptions_round_trip_through_pickle_with_their_context():
    response = make_response()
    status = pickle.loads(pickle.dumps(HttpStatusException(response, "Server error: HTTP 503")))
    assert (status.status_code, status.method, str(status)) == (503, "POST", "Server error: HTTP 503 (POST https://p.test/x)")
    retry = pickle.loads(
        pickle.dumps(MaxRetryException("gave up", attempts=3, last_response=response, method="GET", url="https://p.test/x"))
    )
    assert retry.attempts == 3 and retry.last_response.status_code == 503
    auth = pickle.loads(pickle.dumps(AuthenticationException("denied", service_name="billing", status_code=401, error="invalid_client")))
    assert str(auth) == "denied [service=billing, status=401, error=invalid_client]"
    timeout = pickle.loads(
        pickle.dumps(TimeoutException("Read timeout", method="GET", url="https://p.test/x?token=abcdefghijklmnopqrstuvw"))
    )
    assert "abcdefghijklmnopqrstuvw" not in str(timeout)
