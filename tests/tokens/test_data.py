from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest

from requestforge_django.http.exceptions import AuthenticationException
from requestforge_django.tokens import TokenData

from .fakes import T0, FakeClock

SECRET = "s3cr3t-access-token-value-0123456789"
REFRESH = "s3cr3t-refresh-token-value-987654321"


def make(**kw) -> TokenData:
    values = {"access_token": SECRET, "expires_at": T0 + timedelta(hours=1), "obtained_at": T0}
    values.update(kw)
    return TokenData(**values)


class TestValue:
    def test_frozen(self):
        token = make()
        with pytest.raises(AttributeError):
            token.access_token = "other"  # type: ignore[misc]

    def test_extra_is_read_only_and_copied(self):
        source = {"id_token": "x"}
        token = make(extra=source)
        source["later"] = 1
        assert "later" not in token.extra
        with pytest.raises(TypeError):
            token.extra["new"] = 1  # type: ignore[index]

    def test_naive_datetimes_rejected(self):
        with pytest.raises(ValueError, match="timezone-aware"):
            make(expires_at=datetime(2030, 1, 1))

    def test_other_timezones_normalised_to_utc(self):
        plus_two = timezone(timedelta(hours=2))
        token = make(expires_at=datetime(2030, 1, 1, 14, 0, tzinfo=plus_two))
        assert token.expires_at == datetime(2030, 1, 1, 12, 0, tzinfo=timezone.utc)
        assert token.expires_at.tzinfo == timezone.utc

    def test_empty_token_rejected(self):
        with pytest.raises(ValueError):
            TokenData(access_token="")

    def test_expiry_helpers(self):
        token = make(expires_at=T0 + timedelta(seconds=100))
        assert not token.is_expiring(99, now=T0)
        assert token.is_expiring(100, now=T0)
        assert token.seconds_left(T0) == 100
        assert token.lifetime == 100
        assert not token.is_expired  # by the real clock, 2030 is in the future
        assert make(expires_at=datetime(2000, 1, 1, tzinfo=timezone.utc), obtained_at=datetime(1999, 1, 1, tzinfo=timezone.utc)).is_expired

    def test_never_expiring(self):
        token = make(expires_at=None)
        assert not token.is_expired
        assert not token.is_expiring(10**9, now=T0)
        assert token.expires_in is None

    def test_authorization_header_keeps_type_as_given(self):
        assert make(token_type="bearer").authorization_header == f"bearer {SECRET}"
        assert make().authorization_header == f"Bearer {SECRET}"
        assert make(token_type="").authorization_header == SECRET

    def test_repr_masks_tokens(self):
        text = repr(make(refresh_token=REFRESH, extra={"id_token": "also-very-secret-id-token", "region": "eu"}))
        assert SECRET not in text
        assert REFRESH not in text
        assert "also-very-secret-id-token" not in text
        assert "eu" in text
        assert str(make()) == repr(make())

    def test_equality_ignores_extra_and_is_hashable(self):
        assert make(extra={"a": 1}) == make(extra={"b": 2})
        assert len({make(), make()}) == 1

    def test_capping_expiry(self):
        token = make(expires_at=T0 + timedelta(hours=1))
        assert token.expiring_no_later_than(T0 + timedelta(minutes=5)).expires_at == T0 + timedelta(minutes=5)
        assert token.expiring_no_later_than(T0 + timedelta(hours=2)) is token
        assert make(expires_at=None).expiring_no_later_than(T0).expires_at == T0


class TestPlainData:
    def test_round_trip_through_json(self):
        token = make(refresh_token=REFRESH, scope="a b", extra={"n": 1, "nested": {"x": [1, 2]}})
        data = json.loads(json.dumps(token.to_dict()))
        back = TokenData.from_dict(data)
        assert back == token
        assert dict(back.extra) == {"n": 1, "nested": {"x": [1, 2]}}

    def test_to_dict_is_plain(self):
        data = make().to_dict()
        assert isinstance(data["expires_at"], str)
        assert isinstance(data["obtained_at"], str)
        json.dumps(data)

    def test_from_dict_accepts_epoch_seconds(self):
        back = TokenData.from_dict({"access_token": "abc", "expires_at": T0.timestamp(), "obtained_at": T0.timestamp()})
        assert back.expires_at == T0
        assert back.obtained_at == T0

    @pytest.mark.parametrize(
        "garbage",
        [
            None,
            "a string",
            [],
            {},
            {"access_token": ""},
            {"access_token": 42},
            {"access_token": "abc", "expires_at": "yesterday"},
            {"access_token": "abc", "expires_at": "2030-01-01T00:00:00"},  # naive
            {"access_token": "abc", "expires_at": float("nan")},
            {"access_token": "abc", "expires_at": True},
            {"access_token": "abc", "extra": [1]},
            {"access_token": "abc", "refresh_token": 5},
            {"access_token": "abc", "obtained_at": {}},
        ],
    )
    def test_from_dict_garbage_raises_value_error(self, garbage):
        with pytest.raises(ValueError):
            TokenData.from_dict(garbage)


class TestFromResponse:
    clock = staticmethod(FakeClock())

    def parse(self, body, **kw):
        return TokenData.from_response(body, clock=self.clock, **kw)

    @pytest.mark.parametrize("expires_in", [120, 120.0, "120", " 120 ", "120.0"])
    def test_expires_in_forms(self, expires_in):
        token = self.parse({"access_token": "abc", "expires_in": expires_in})
        assert token.expires_at == T0 + timedelta(seconds=120)
        assert token.obtained_at == T0

    def test_default_lifetime_when_missing(self):
        assert self.parse({"access_token": "abc"}).expires_at == T0 + timedelta(seconds=3600)
        assert self.parse({"access_token": "abc"}, default_lifetime=10).expires_at == T0 + timedelta(seconds=10)
        assert self.parse({"access_token": "abc"}, default_lifetime=None).expires_at is None

    def test_fields(self):
        token = self.parse(
            {"access_token": "abc", "token_type": "bearer", "refresh_token": "r", "scope": ["a", "b"], "id_token": "x", "region": "eu"}
        )
        assert token.token_type == "bearer"
        assert token.refresh_token == "r"
        assert token.scope == "a b"
        assert dict(token.extra) == {"id_token": "x", "region": "eu"}

    def test_custom_and_dotted_token_field(self):
        assert self.parse({"token": "abc"}, token_field="token").access_token == "abc"
        body = {"data": {"auth": {"token": "abc", "ttl": 30}}, "status": "ok"}
        token = self.parse(body, token_field="data.auth.token", expires_in_field="data.auth.ttl")
        assert token.access_token == "abc"
        assert token.expires_at == T0 + timedelta(seconds=30)
        assert dict(token.extra) == {"status": "ok"}  # the container holding the token is not copied

    @pytest.mark.parametrize("body", [{}, {"token": "abc"}, {"access_token": None}])
    def test_missing_token_names_field(self, body):
        with pytest.raises(AuthenticationException, match="'access_token'"):
            self.parse(body)

    @pytest.mark.parametrize("value", ["", "   ", 42, ["abc"], {"v": "abc"}, "abc\r\nX-Injected: 1"])
    def test_bad_token_value_names_field(self, value):
        with pytest.raises(AuthenticationException, match="'access_token'") as info:
            self.parse({"access_token": value})
        if isinstance(value, str) and value.strip():
            assert value not in str(info.value)

    @pytest.mark.parametrize(
        ("expires_in", "match"),
        [
            (-1, "negative: -1"),
            ("-5", "negative: '-5'"),
            (10**12, "absurdly large"),
            (float("inf"), "not finite"),
            (float("nan"), "not finite"),
            ("soon", "not a number: 'soon'"),
            (True, "not a number"),
            ([60], "not a number"),
        ],
    )
    def test_bad_expires_in_names_field_and_value(self, expires_in, match):
        with pytest.raises(AuthenticationException, match="'expires_in'") as info:
            self.parse({"access_token": "the-token-value", "expires_in": expires_in})
        assert match in str(info.value)
        assert "the-token-value" not in str(info.value)

    def test_max_lifetime_is_configurable(self):
        with pytest.raises(AuthenticationException, match="absurdly large"):
            self.parse({"access_token": "abc", "expires_in": 7200}, max_lifetime=3600)

    def test_not_an_object(self):
        with pytest.raises(AuthenticationException, match="not a JSON object"):
            self.parse(["access_token"])  # type: ignore[arg-type]
