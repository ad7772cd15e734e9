"""Issue 17, ``manage.py check``: every new AUTH key of the machine-credential methods, with its id and offending key.

Each bad setting goes through Django's real check framework; each message must name the
exact key and never quote a secret, a key (any line of its body), or a client secret.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, NoEncryption, PrivateFormat, PublicFormat
from django.core.checks import run_checks
from django.test import override_settings

from requestforge_django.checks import CHECK_TAG
from requestforge_django.setting import parse_client, parse_settings
from requestforge_django.setting.rules import oauth
from requestforge_django.setting.specs import ACCESS_TOKEN_TYPE, AssertionSpec

TOKEN_URL = "https://auth.example.com/oauth/token"
ISSUER = "https://auth.example.com"
SECRET = "cs-CANARY-1d8e2f6a0b"
SHORT_SECRET = "sh-CANARY-9"
CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/0"}}
FERNET = "ZmDfcTF7_60GrrY167zsiPd67pEvs0aGOv2oasOM1Pg="

_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)
RSA_PEM = _RSA.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
EC_PEM = ec.generate_private_key(ec.SECP384R1()).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
SMALL_RSA_PEM = (
    rsa.generate_private_key(public_exponent=65537, key_size=1024).private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()).decode()
)
PUBLIC_PEM = _RSA.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo).decode()
GARBAGE_KEY = "pk-CANARY-not-a-pem-at-all"
BROKEN_PEM = "-----BEGIN PRIVATE KEY-----\nMIIEvQ-CANARY-broken\n-----END PRIVATE KEY-----\n"
#: What must never appear in a message or hint.
FORBIDDEN = (SECRET, SHORT_SECRET, GARBAGE_KEY, "MIIEvQ-CANARY-broken", *(pem.splitlines()[1] for pem in (RSA_PEM, EC_PEM, SMALL_RSA_PEM)))


def auth_key(client: str, *keys: str | int) -> str:
    return f'REQUESTFORGE["CLIENTS"]["{client}"]["AUTH"]' + "".join(f"[{k}]" if isinstance(k, int) else f'["{k}"]' for k in keys)


def cc(**auth: Any) -> dict[str, Any]:
    return {"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "shop", **auth}


def pk_jwt(**auth: Any) -> dict[str, Any]:
    return cc(**{"CLIENT_AUTH_METHOD": "private_key_jwt", "PRIVATE_KEY": RSA_PEM, **auth})


GRANT = {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL}
EXCHANGE = {"TYPE": "token_exchange", "TOKEN_URL": TOKEN_URL}


def checked(clients: dict[str, Any], **top: Any) -> list[tuple[str, str]]:
    """``(id, message + hint)`` of every requestforge message for these clients (no message may hold a secret)."""
    setting = {"ENCRYPTION_KEYS": [FERNET], "CLIENTS": {name: {"BASE_URL": "https://api.example.com", **c} for name, c in clients.items()}}
    with override_settings(REQUESTFORGE={**setting, **top}, CACHES=CACHES):
        found = [(m.id, f"{m.msg} {m.hint or ''}") for m in run_checks(tags=[CHECK_TAG])]
    for _, text in found:
        for forbidden in FORBIDDEN:
            assert forbidden not in text
    return found


def one(clients: dict[str, Any], check_id: str, key: str) -> str:
    found = checked(clients)
    matching = [text for found_id, text in found if found_id == check_id and text.startswith(key + " ")]
    assert len(matching) == 1, found
    return matching[0]


# -- valid settings -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "auth",
    [
        pk_jwt(KEY_ID="k1"),
        pk_jwt(ALGORITHM="PS256"),
        cc(CLIENT_AUTH_METHOD="private_key_jwt", PRIVATE_KEY=EC_PEM, ALGORITHM="es384"),
        cc(CLIENT_AUTH_METHOD="client_secret_jwt", CLIENT_SECRET="s" * 32, ALGORITHM="HS512"),
        cc(CLIENT_SECRET=SECRET, CLIENT_AUTH_METHOD="client_secret_basic", AUDIENCE=["a", "b"], RESOURCE="https://api.example.com"),
        {"TYPE": "client_credentials", "ISSUER": ISSUER, "CLIENT_ID": "x", "CLIENT_SECRET": SECRET},
        {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "svc", "PRIVATE_KEY": RSA_PEM, "LIFETIME": 60}},
        {"TYPE": "jwt_bearer", "ISSUER": ISSUER, "CLIENT_ID": "svc", "ASSERTION": {"PRIVATE_KEY": EC_PEM, "CLAIMS": {"scope": "r"}}},
        {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "svc"},
        {"TYPE": "password", "TOKEN_URL": TOKEN_URL, "USERNAME": "u", "PASSWORD": SECRET, "CLIENT_ID": "app"},
        {"TYPE": "token_exchange", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "x", "SUBJECT_TOKEN_FROM": "partner"},
    ],
)
def test_valid_machine_credentials_raise_nothing(auth: dict[str, Any]) -> None:
    clients = {"c": {"AUTH": auth}, "partner": {"AUTH": cc(CLIENT_SECRET=SECRET)}}
    assert checked(clients) == []


def test_the_spec_carries_every_new_key() -> None:
    auth = {
        "TYPE": "token_exchange",
        "ISSUER": ISSUER,
        "CLIENT_ID": "x",
        "CLIENT_AUTH_METHOD": "private_key_jwt",
        "PRIVATE_KEY": RSA_PEM,
        "KEY_ID": "k1",
        "ALGORITHM": "rs384",
        "AUDIENCE": "orders",
        "RESOURCE": ["https://api.example.com"],
        "SUBJECT_TOKEN_FROM": "other",
        "REQUESTED_TOKEN_TYPE": ACCESS_TOKEN_TYPE,
    }
    spec = parse_client("c", {"BASE_URL": "https://api.example.com", "AUTH": auth}).auth
    assert (spec.issuer, spec.token_url, spec.client_auth_method, spec.algorithm, spec.key_id) == (
        ISSUER,
        None,
        "private_key_jwt",
        "RS384",
        "k1",
    )
    assert spec.audience == ("orders",) and spec.resource == ("https://api.example.com",)
    assert spec.subject_token_from == "other" and spec.subject_token_type == ACCESS_TOKEN_TYPE
    assert spec.private_key is not None and spec.private_key.reveal() == RSA_PEM
    assert RSA_PEM.splitlines()[1] not in repr(spec)
    grant = {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "svc", "PRIVATE_KEY": EC_PEM, "CLAIMS": {"k": "v"}}}
    parsed = parse_settings({"CLIENTS": {"g": {"BASE_URL": "https://api.example.com", "AUTH": grant}}}).clients["g"].auth
    assert parsed.assertion == AssertionSpec(issuer="svc", private_key=EC_PEM, claims={"k": "v"})
    assert parsed.assertion.lifetime == 300 and EC_PEM.splitlines()[1] not in repr(parsed)


# -- keys (E050, E051, E055) -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("pem", "fragment"),
    [
        (GARBAGE_KEY, "is not a PEM private key"),
        (BROKEN_PEM, "is not a readable PEM private key"),
        (PUBLIC_PEM, "is a public key or certificate"),
        (SMALL_RSA_PEM, "RSA key of 1024 bits is too short"),
    ],
)
def test_e050_a_private_key_that_cannot_sign(pem: str, fragment: str) -> None:
    text = one({"c": {"AUTH": pk_jwt(PRIVATE_KEY=pem)}}, "requestforge.E050", auth_key("c", "PRIVATE_KEY"))
    assert fragment in text and "The value is not shown" in text


def test_e050_in_the_assertion_block_names_its_key() -> None:
    auth = {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "svc", "PRIVATE_KEY": GARBAGE_KEY}}
    one({"c": {"AUTH": auth}}, "requestforge.E050", auth_key("c", "ASSERTION", "PRIVATE_KEY"))


@pytest.mark.parametrize(
    ("auth", "key", "fragment"),
    [
        (pk_jwt(ALGORITHM="ES256"), ("ALGORITHM",), "ES256 does not fit the RSA key of 2048 bits"),
        (pk_jwt(PRIVATE_KEY=EC_PEM, ALGORITHM="ES256"), ("ALGORITHM",), "ES256 does not fit the EC key on secp384r1"),
        (
            {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "s", "PRIVATE_KEY": EC_PEM, "ALGORITHM": "RS256"}},
            ("ASSERTION", "ALGORITHM"),
            "RS256 does not fit",
        ),
    ],
)
def test_e051_a_key_that_does_not_fit_its_algorithm(auth: dict[str, Any], key: tuple[str, ...], fragment: str) -> None:
    assert fragment in one({"c": {"AUTH": auth}}, "requestforge.E051", auth_key("c", *key))


@pytest.mark.parametrize(
    ("auth", "fragment"),
    [
        (pk_jwt(ALGORITHM="HS256"), 'must be one of "RS256"'),
        (cc(CLIENT_AUTH_METHOD="client_secret_jwt", CLIENT_SECRET="s" * 40, ALGORITHM="RS256"), 'must be one of "HS256", "HS384", "HS512"'),
    ],
)
def test_e003_an_algorithm_the_method_cannot_use(auth: dict[str, Any], fragment: str) -> None:
    assert fragment in one({"c": {"AUTH": auth}}, "requestforge.E003", auth_key("c", "ALGORITHM"))


@pytest.fixture
def without_jwt_extra(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    problem = "signed JWTs need PyJWT, which is not installed: pip install 'requestforge-django[jwt]'"
    monkeypatch.setattr(oauth, "jwt_support_problem", lambda: problem)
    yield


@pytest.mark.usefixtures("without_jwt_extra")
@pytest.mark.parametrize(
    ("auth", "key"),
    [
        (pk_jwt(), ("CLIENT_AUTH_METHOD",)),
        (cc(CLIENT_AUTH_METHOD="client_secret_jwt", CLIENT_SECRET="s" * 40), ("CLIENT_AUTH_METHOD",)),
        ({"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "s", "PRIVATE_KEY": EC_PEM}}, ("ASSERTION",)),
    ],
)
def test_e055_the_jwt_extra_is_missing_and_named(auth: dict[str, Any], key: tuple[str, ...]) -> None:
    found = checked({"c": {"AUTH": auth}})
    assert [check_id for check_id, _ in found] == ["requestforge.E055"]  # once per client, and no key error besides
    assert found[0][1].startswith(auth_key("c", *key) + " needs signed JWTs") and "requestforge-django[jwt]" in found[0][1]


def test_w009_a_client_secret_jwt_secret_shorter_than_32_bytes() -> None:
    text = one(
        {"c": {"AUTH": cc(CLIENT_AUTH_METHOD="client_secret_jwt", CLIENT_SECRET=SHORT_SECRET)}},
        "requestforge.W009",
        auth_key("c", "CLIENT_SECRET"),
    )
    assert "11 bytes" in text and "at least 32" in text


# -- E005 ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        ({"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "ISSUER": ISSUER, "CLIENT_ID": "x", "CLIENT_SECRET": SECRET}, ("ISSUER",)),
        (cc(CLIENT_SECRET=SECRET, AUDIENCE="a", EXTRA_PARAMS={"audience": "b"}), ("AUDIENCE",)),
        (cc(CLIENT_SECRET=SECRET, RESOURCE="https://r.example.com", EXTRA_PARAMS={"resource": "x"}), ("RESOURCE",)),
        ({"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "erp", "PRIVATE_KEY": RSA_PEM}, ("PRIVATE_KEY",)),
        ({"TYPE": "client_credentials", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "erp", "KEY_ID": "k"}, ("KEY_ID",)),
        (
            {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "CREDENTIAL": "svc", "ASSERTION": {"PRIVATE_KEY": RSA_PEM}},
            ("ASSERTION", "PRIVATE_KEY"),
        ),
    ],
)
def test_e005_keys_that_exclude_each_other(auth: dict[str, Any], key: tuple[str, ...]) -> None:
    one({"c": {"AUTH": auth}}, "requestforge.E005", auth_key("c", *key))


# -- E011, E003, E054 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("auth", "key", "fragment"),
    [
        ({"TYPE": "client_credentials", "CLIENT_ID": "x", "CLIENT_SECRET": SECRET}, ("TOKEN_URL",), "or ISSUER to discover"),
        (cc(CLIENT_AUTH_METHOD="private_key_jwt"), ("PRIVATE_KEY",), 'with CLIENT_AUTH_METHOD "private_key_jwt"'),
        (
            {"TYPE": "password", "TOKEN_URL": TOKEN_URL, "USERNAME": "u", "PASSWORD": SECRET, "CLIENT_AUTH_METHOD": "client_secret_jwt"},
            ("CLIENT_SECRET",),
            "signs its assertion with the client secret",
        ),
        ({"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL}, ("ASSERTION",), 'for AUTH TYPE "jwt_bearer"'),
        ({"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "s"}}, ("ASSERTION", "PRIVATE_KEY"), "CREDENTIAL"),
        (
            {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"PRIVATE_KEY": RSA_PEM}},
            ("ASSERTION", "ISSUER"),
            "without CLIENT_ID",
        ),
        (
            {"TYPE": "token_exchange", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "x", "CLIENT_SECRET": SECRET},
            ("SUBJECT_TOKEN_FROM",),
            "whose token",
        ),
    ],
)
def test_e011_keys_a_method_or_type_needs(auth: dict[str, Any], key: tuple[str, ...], fragment: str) -> None:
    assert fragment in one({"c": {"AUTH": auth}}, "requestforge.E011", auth_key("c", *key))


@pytest.mark.parametrize(
    ("lifetime", "shown"),
    [(0, "got 0"), (301, "got 301"), (3600, "got 3600"), (1.5, "got 1.5"), ("300", "got str"), (True, "got True")],
)
def test_e003_lifetime_out_of_1_to_300(lifetime: Any, shown: str) -> None:
    auth = {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "s", "PRIVATE_KEY": RSA_PEM, "LIFETIME": lifetime}}
    text = one({"c": {"AUTH": auth}}, "requestforge.E003", auth_key("c", "ASSERTION", "LIFETIME"))
    assert "whole seconds from 1 to 300" in text and shown in text


@pytest.mark.parametrize(
    ("assertion", "key", "fragment"),
    [
        ({"CLAIMS": {"aud": "x"}}, "CLAIMS", "may not set aud"),
        ({"CLAIMS": {"when": object()}}, "CLAIMS", "JSON values only"),
        ({"CLAIMS": ["scope"]}, "CLAIMS", "must be a dict"),
        ({"AUDIENCE": ["a", "b"]}, "AUDIENCE", "single string"),
        ({"ISSUR": "x"}, "ISSUR", "did you mean"),
    ],
)
def test_assertion_block_values(assertion: dict[str, Any], key: str, fragment: str) -> None:
    auth = {"TYPE": "jwt_bearer", "TOKEN_URL": TOKEN_URL, "ASSERTION": {"ISSUER": "s", "PRIVATE_KEY": RSA_PEM, **assertion}}
    check_id = "requestforge.E002" if key == "ISSUR" else "requestforge.E003"
    assert fragment in one({"c": {"AUTH": auth}}, check_id, auth_key("c", "ASSERTION", key))


@pytest.mark.parametrize(
    ("resource", "key"),
    [
        ("api.example.com", ("RESOURCE",)),
        ("https://api.example.com#frag", ("RESOURCE",)),
        (["https://ok.example", "/rel"], ("RESOURCE", 1)),
    ],
)
def test_e054_resource_not_an_absolute_uri_without_fragment(resource: Any, key: tuple[str | int, ...]) -> None:
    one({"c": {"AUTH": cc(CLIENT_SECRET=SECRET, RESOURCE=resource)}}, "requestforge.E054", auth_key("c", *key))


@pytest.mark.parametrize(
    ("issuer", "fragment"),
    [("auth.example.com", "absolute URL"), ("https://auth.example.com?tenant=1", "without query"), ("https://a.example#x", "fragment")],
)
def test_e003_issuer_is_an_issuer_identifier(issuer: str, fragment: str) -> None:
    auth = {"TYPE": "client_credentials", "ISSUER": issuer, "CLIENT_ID": "x", "CLIENT_SECRET": SECRET}
    assert fragment in one({"c": {"AUTH": auth}}, "requestforge.E003", auth_key("c", "ISSUER"))


def test_w005_plain_http_issuer() -> None:
    auth = {"TYPE": "client_credentials", "ISSUER": "http://auth.example.com", "CLIENT_ID": "x", "CLIENT_SECRET": SECRET}
    one({"c": {"AUTH": auth}}, "requestforge.W005", auth_key("c", "ISSUER"))


@pytest.mark.parametrize(
    ("auth", "key"),
    [
        (cc(CLIENT_SECRET=SECRET, PRIVATE_KEY=RSA_PEM), "PRIVATE_KEY"),
        (cc(CLIENT_SECRET=SECRET, ALGORITHM="RS256"), "ALGORITHM"),
        (pk_jwt(CLIENT_SECRET=SECRET), "CLIENT_SECRET"),
    ],
)
def test_w003_keys_the_method_does_not_use(auth: dict[str, Any], key: str) -> None:
    assert "has no effect with CLIENT_AUTH_METHOD" in one({"c": {"AUTH": auth}}, "requestforge.W003", auth_key("c", key))


# -- SUBJECT_TOKEN_FROM (E052, E053) -------------------------------------------------------------------------


def exchange(subject: str) -> dict[str, Any]:
    return {
        "AUTH": {"TYPE": "token_exchange", "TOKEN_URL": TOKEN_URL, "CLIENT_ID": "x", "CLIENT_SECRET": SECRET, "SUBJECT_TOKEN_FROM": subject}
    }


@pytest.mark.parametrize(
    ("clients", "fragment"),
    [
        ({"down": exchange("upstrem"), "upstream": {"AUTH": cc(CLIENT_SECRET=SECRET)}}, 'did you mean "upstream"'),
        ({"down": exchange("legacy"), "legacy": {"AUTH": {"TYPE": "api_key", "KEY": SECRET}}}, 'AUTH TYPE "api_key" obtains no token'),
        ({"down": exchange("public"), "public": {}}, 'AUTH TYPE "none" obtains no token'),
    ],
)
def test_e052_subject_token_from_names_no_token_source(clients: dict[str, Any], fragment: str) -> None:
    assert fragment in one(clients, "requestforge.E052", auth_key("down", "SUBJECT_TOKEN_FROM"))


def test_subject_token_from_a_pipeline_is_valid() -> None:
    step = {"NAME": "app", "FETCHER": "body", "URL": "https://login.example.com/token"}
    with override_settings(CACHES=CACHES):
        found = checked({"down": exchange("partner")}, PIPELINES={"partner": {"STEPS": [step]}})
    assert found == []


@pytest.mark.parametrize(
    ("clients", "reported", "loop"),
    [
        ({"down": exchange("down")}, "down", "down -> down"),
        ({"a": exchange("b"), "b": exchange("c"), "c": exchange("a")}, "a", "a -> b -> c -> a"),
        ({"lead": exchange("a"), "a": exchange("b"), "b": exchange("a")}, "a", "a -> b -> a"),
    ],
)
def test_e053_exchanges_in_a_cycle_reported_once(clients: dict[str, Any], reported: str, loop: str) -> None:
    found = [text for check_id, text in checked(clients) if check_id == "requestforge.E053"]
    assert len(found) == 1 and found[0].startswith(auth_key(reported, "SUBJECT_TOKEN_FROM")) and loop in found[0]


@pytest.mark.parametrize(
    "auth",
    [
        {**GRANT, "CLIENT_SECRET": SECRET, "ASSERTION": {"ISSUER": "s", "PRIVATE_KEY": RSA_PEM}},
        {"TYPE": "password", "TOKEN_URL": TOKEN_URL, "USERNAME": "u", "PASSWORD": SECRET, "CLIENT_SECRET": SECRET},
    ],
)
def test_e011_a_client_secret_without_the_client_id_it_belongs_to(auth: dict[str, Any]) -> None:
    assert "whose secret or key it is" in one({"c": {"AUTH": auth}}, "requestforge.E011", auth_key("c", "CLIENT_ID"))
