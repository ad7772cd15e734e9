"""Signing keys and assertion claims (``tokens.signing``): loading, validation, claims, never shown."""

from __future__ import annotations

import copy
import pickle
import sys
from datetime import timedelta

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519

from requestforge_django.http.exceptions import ConfigurationError
from requestforge_django.http.secrets import Secret
from requestforge_django.tokens.signing import (
    MAX_ASSERTION_LIFETIME,
    SigningKey,
    assertion_claims,
    hmac_secret_problem,
    jwt_support_problem,
    private_key_error,
    require_jwt_support,
    sign_assertion,
    validate_claims,
    validate_lifetime,
)

from .fakes import T0, FakeClock
from .jose_keys import TOKEN_URL, decode, ec_key, pem, pem_needles, public_pem, rsa_key

HMAC_SECRET = "an-hmac-client-secret-of-at-least-32-bytes"


class TestLoading:
    @pytest.mark.parametrize(
        ("key", "expected"),
        [
            (lambda: rsa_key(), "RS256"),
            (lambda: ec_key("secp256r1"), "ES256"),
            (lambda: ec_key("secp384r1"), "ES384"),
            (lambda: ec_key("secp521r1"), "ES512"),
        ],
    )
    def test_default_algorithm_by_key_type_and_curve(self, key, expected):
        signing = SigningKey.from_pem(pem(key()))
        assert signing.algorithm == expected
        token = signing.sign({"aud": TOKEN_URL})
        assert decode(token.reveal(), key(), algorithms=[expected]) == {"aud": TOKEN_URL}

    @pytest.mark.parametrize("algorithm", ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ps256"])
    def test_every_rsa_algorithm(self, algorithm):
        signing = SigningKey.from_pem(pem(rsa_key()), algorithm=algorithm, key_id="k1")
        assert signing.algorithm == algorithm.upper()
        token = signing.sign({"aud": TOKEN_URL}).reveal()
        assert decode(token, rsa_key(), algorithms=[algorithm.upper()]) == {"aud": TOKEN_URL}
        import jwt

        assert jwt.get_unverified_header(token) == {"alg": algorithm.upper(), "kid": "k1", "typ": "JWT"}

    def test_traditional_format_and_escaped_newlines(self):
        traditional = pem(rsa_key(), serialization.PrivateFormat.TraditionalOpenSSL)
        assert SigningKey.from_pem(traditional).key_type == "RSA"
        one_line = pem(ec_key()).strip().replace("\n", "\\n")  # as an environment variable holds it
        assert SigningKey.from_pem(one_line).algorithm == "ES256"
        assert SigningKey.from_pem(Secret(pem(ec_key())).reveal().encode()).key_type == "EC"
        assert SigningKey.from_pem(Secret(pem(ec_key()))).key_type == "EC"

    @pytest.mark.parametrize(
        ("make", "algorithm", "field", "words"),
        [
            (lambda: "not a key at all", None, "private_key", "not a PEM private key"),
            (lambda: "-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n", None, "private_key", "not a readable PEM"),
            (lambda: "", None, "private_key", "got no text"),
            (lambda: 42, None, "private_key", "must be PEM text"),
            (lambda: public_pem(rsa_key()), None, "private_key", "public key or certificate"),
            (
                lambda: rsa_key().private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.BestAvailableEncryption(b"pw")
                ),
                None,
                "private_key",
                "encrypted PEM",
            ),
            (lambda: pem(rsa_key(1024, "short")), None, "private_key", "RSA key of 1024 bits is too short"),
            (lambda: pem(ed25519.Ed25519PrivateKey.generate()), None, "private_key", "Ed25519 keys are not supported"),
            (lambda: pem(ec_key("secp256k1")), None, "private_key", "secp256k1"),
            (lambda: pem(ec_key("secp256r1")), "ES384", "algorithm", "ES384 does not fit the EC key on secp256r1"),
            (lambda: pem(rsa_key()), "ES256", "algorithm", "ES256 does not fit the RSA key of 2048 bits"),
            (lambda: pem(ec_key()), "RS256", "algorithm", "RS256 does not fit"),
            (lambda: pem(rsa_key()), "HS256", "algorithm", "client secret"),
            (lambda: pem(rsa_key()), "none", "algorithm", "must be one of"),
        ],
    )
    def test_refused_keys_never_quote_the_key(self, make, algorithm, field, words):
        value = make()
        error = private_key_error(value, algorithm)
        assert isinstance(error, ConfigurationError)
        assert error.field == field
        assert words in error.message
        text = str(error) + repr(error)
        if isinstance(value, (str, bytes)) and value:
            plain = value.decode() if isinstance(value, bytes) else value
            for needle in pem_needles(plain) or [plain]:
                assert needle not in text
        with pytest.raises(ConfigurationError) as info:
            SigningKey.from_pem(value, algorithm=algorithm)
        assert info.value.__context__ is None and info.value.__cause__ is None  # no chain holding the parser's view

    def test_good_key_has_no_error(self):
        assert private_key_error(pem(rsa_key()), "PS384", "k1") is None
        assert private_key_error(pem(rsa_key()), key_id="") is not None

    def test_hmac_secret(self):
        key = SigningKey.from_secret(HMAC_SECRET)
        assert (key.algorithm, key.key_type, key.public_key()) == ("HS256", "oct", None)
        token = key.sign({"aud": "x"}).reveal()
        assert decode(token, HMAC_SECRET.encode(), audience="x") == {"aud": "x"}
        with pytest.raises(ConfigurationError, match="client_secret_jwt signs with"):
            SigningKey.from_secret(HMAC_SECRET, algorithm="RS256")
        with pytest.raises(ConfigurationError):
            SigningKey.from_secret("")
        assert hmac_secret_problem("short-secret") == "the client secret is 12 bytes; HMAC signing (client_secret_jwt) needs at least 32"
        assert hmac_secret_problem(Secret(HMAC_SECRET)) is None


class TestNeverShown:
    def test_repr_str_format_pickle_copy(self):
        text = pem(rsa_key())
        key = SigningKey.from_pem(text, key_id="k1")
        for shown in (repr(key), str(key), f"{key}", f"{key!r:>10}"):
            assert shown == "SigningKey(RSA key of 2048 bits, algorithm='RS256', key_id='k1', key='****')"
        with pytest.raises(TypeError, match="never pickled"):
            pickle.dumps(key)
        assert copy.copy(key) is key and copy.deepcopy({"k": key})["k"] is key
        with pytest.raises(AttributeError):
            key.algorithm = "PS256"  # type: ignore[misc]

    def test_signed_token_is_a_secret(self):
        token = SigningKey.from_secret(HMAC_SECRET).sign({"a": 1})
        assert isinstance(token, Secret) and repr(token) == "Secret('****')" and str(token) == "****"


class TestClaims:
    def test_every_claim(self):
        clock = FakeClock()
        key = SigningKey.from_pem(pem(ec_key()))
        token = sign_assertion(
            key, issuer="svc", subject="user-1", audience=TOKEN_URL, lifetime=120, extra_claims={"scope": "read"}, clock=clock
        )
        claims = decode(token.reveal(), ec_key())
        issued = int(T0.timestamp())
        assert claims == {
            "iss": "svc",
            "sub": "user-1",
            "aud": TOKEN_URL,
            "iat": issued,
            "exp": issued + 120,
            "jti": claims["jti"],
            "scope": "read",
        }
        assert isinstance(claims["aud"], str)
        assert len(claims["jti"]) >= 22

    def test_default_lifetime_is_the_maximum(self):
        claims = assertion_claims(issuer="a", subject="a", audience="b", now=T0)
        assert claims["exp"] - claims["iat"] == MAX_ASSERTION_LIFETIME == 300

    def test_real_clock_iat_is_now(self):
        import time

        before = int(time.time())
        claims = decode(
            sign_assertion(SigningKey.from_secret(HMAC_SECRET), issuer="a", subject="a", audience="b").reveal(),
            HMAC_SECRET.encode(),
            audience="b",
        )
        assert before <= claims["iat"] <= int(time.time())

    def test_jti_fresh_every_call(self):
        key = SigningKey.from_secret(HMAC_SECRET)
        clock = FakeClock()
        jtis = {
            decode(sign_assertion(key, issuer="a", subject="a", audience="b", clock=clock).reveal(), HMAC_SECRET.encode(), audience="b")[
                "jti"
            ]
            for _ in range(500)
        }
        assert len(jtis) == 500

    @pytest.mark.parametrize("lifetime", [0, 301, -5, 1.5, "60", True, float("nan"), None])
    def test_lifetime_bounds(self, lifetime):
        with pytest.raises(ConfigurationError, match="from 1 to 300"):
            validate_lifetime(lifetime)

    @pytest.mark.parametrize("lifetime", [1, 60, 300, 300.0])
    def test_lifetime_accepted(self, lifetime):
        assert validate_lifetime(lifetime) == int(lifetime)

    @pytest.mark.parametrize(
        "claims", [{"exp": 1}, {"aud": ["a", "b"]}, {"jti": "fixed"}, {"nbf": 0}, ["scope"], {"when": timedelta(1)}, {1: "x"}]
    )
    def test_claims_refused(self, claims):
        with pytest.raises(ConfigurationError):
            validate_claims(claims)

    @pytest.mark.parametrize("missing", ["issuer", "subject", "audience"])
    def test_required_strings(self, missing):
        values = {"issuer": "a", "subject": "a", "audience": "b", missing: ""}
        with pytest.raises(ConfigurationError) as info:
            assertion_claims(**values)
        assert info.value.field == missing


class TestMissingExtra:
    @pytest.mark.parametrize("module", ["jwt", "cryptography"])
    def test_error_names_the_extra(self, monkeypatch, module):
        assert jwt_support_problem() is None
        monkeypatch.setitem(sys.modules, module, None)  # import of it now raises ImportError
        problem = jwt_support_problem()
        assert problem is not None and "requestforge-django[jwt]" in problem
        with pytest.raises(ConfigurationError, match=r"requestforge-django\[jwt\]"):
            require_jwt_support()
        with pytest.raises(ConfigurationError, match=r"requestforge-django\[jwt\]"):
            SigningKey.from_secret(HMAC_SECRET)
        error = private_key_error(pem(ec_key()))
        assert error is not None and "[jwt]" in error.message

    def test_a_foreign_jwt_module_is_reported(self, monkeypatch):
        import types

        monkeypatch.setitem(sys.modules, "jwt", types.ModuleType("jwt"))
        assert "not PyJWT" in (jwt_support_problem() or "")

    def test_package_imports_without_the_extra(self):
        import subprocess

        code = (
            "import sys; sys.modules['jwt'] = None; sys.modules['cryptography'] = None; "
            "import requestforge_django.tokens as t, requestforge_django.http; "
            "from requestforge_django.tokens.signing import jwt_support_problem; "
            "assert 'jwt' in jwt_support_problem(); "
            "t.ClientCredentialsTokenProvider('https://a/t', 'id', 'secret', auth_method='client_secret_basic')"
        )
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
