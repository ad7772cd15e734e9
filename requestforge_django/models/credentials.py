"""Credentials: the secrets a client names with ``AUTH["CREDENTIAL"]``, encrypted at rest."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from ..fields import EncryptedTextField
from .base import AdminEditable, name_validator
from .origins import normalize_origin, normalize_origins


class Credential(AdminEditable):
    """Secrets for one client (or several), named by ``AUTH["CREDENTIAL"]``; never shown back by the admin."""

    #: The encrypted fields, in form order.
    SECRET_FIELDS: tuple[str, ...] = ("client_secret", "password", "api_key", "token", "private_key")

    name = models.CharField(max_length=100, unique=True, validators=[name_validator], help_text='The AUTH "CREDENTIAL" name.')
    client_id = models.CharField("client id", max_length=255, blank=True)
    client_secret = EncryptedTextField("client secret", blank=True)
    username = models.CharField(max_length=255, blank=True)
    password = EncryptedTextField(blank=True)
    api_key = EncryptedTextField("API key", blank=True)
    token = EncryptedTextField("bearer token", blank=True)
    private_key = EncryptedTextField(
        "private key",
        blank=True,
        help_text="PEM private key (RSA or EC) that signs client assertions (private_key_jwt) and JWT-bearer grant assertions.",
    )
    key_id = models.CharField(
        "key id",
        max_length=255,
        blank=True,
        help_text='The "kid" sent with assertions signed with the private key, if the partner wants one.',
    )
    scope = models.CharField(max_length=500, blank=True, help_text="Space-separated scopes.")
    extra_params = models.JSONField(
        "extra token parameters", default=dict, blank=True, help_text='Sent with token requests, e.g. {"audience": "erp"}.'
    )
    allowed_origins = models.JSONField(
        "allowed origins",
        default=list,
        blank=True,
        help_text="Origins (scheme://host[:port]) that clients defined in the admin may send this credential's secrets, and the "
        "tokens obtained with them, to: the token endpoint and the API. Empty: only clients defined in settings may use it.",
    )
    #: Raised by one, atomically in the database, on every save of an existing row (see :meth:`save`).
    version = models.PositiveBigIntegerField(
        default=1,
        editable=False,
        help_text="Raised on every save; a token is served only while the version that obtained it is the current one.",
    )

    class Meta:
        ordering = ("name",)
        verbose_name = "credential"
        permissions = [("use_credential", "Can use credential in client definitions")]

    def __str__(self) -> str:
        return self.name

    def __repr__(self) -> str:
        return f"<Credential {self.name!r} pk={self.pk}{'' if self.is_active else ' inactive'}>"

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Save, raising :attr:`version` by one in the same ``UPDATE`` (``version = version + 1``).

        Every save counts as a change of what the credential authenticates with: once it
        has committed, no process serves a token obtained with the previous version
        (:mod:`requestforge_django.fencing`). The name the row had before is kept in
        ``previous_name``, so that a rename fences out the tokens of the old name too.
        """
        self.previous_name: str | None = None
        update_fields = kwargs.get("update_fields")
        using = kwargs.get("using") or self._state.db
        if self.pk is not None and not self._state.adding and (update_fields is None or update_fields):
            self.previous_name = type(self)._default_manager.using(using).filter(pk=self.pk).values_list("name", flat=True).first()
        if self.previous_name is None:  # a new row (or one deleted meanwhile) starts at its default version
            super().save(*args, **kwargs)
            return
        if update_fields is not None:
            kwargs["update_fields"] = {*update_fields, "version"}
        version = self.version
        self.version = models.F("version") + 1
        try:
            super().save(*args, **kwargs)
        except BaseException:
            self.version = version
            raise
        self.refresh_from_db(using=using, fields=["version"])

    def clean(self) -> None:
        if self.extra_params is None:
            self.extra_params = {}
        params = self.extra_params
        if not isinstance(params, dict) or not all(isinstance(k, str) and k and isinstance(v, str) for k, v in params.items()):
            raise ValidationError({"extra_params": "Must be a JSON object of strings to strings."})
        try:
            self.allowed_origins = normalize_origins(self.allowed_origins)
        except ValidationError as exc:
            raise ValidationError({"allowed_origins": exc.messages}) from None

    def allowed_origin_set(self) -> list[str]:
        """The stored origins, normalized (entries that are not origins allow nothing)."""
        allowed: list[str] = []
        for value in self.allowed_origins if isinstance(self.allowed_origins, (list, tuple)) else ():
            try:
                origin = normalize_origin(value)
            except ValueError:
                continue
            if origin not in allowed:
                allowed.append(origin)
        return allowed

    def auth_values(self) -> dict[str, Any]:
        """The ``AUTH`` keys this credential supplies (only non-empty ones); decrypts, so may raise ``DecryptionError``."""
        values: dict[str, Any] = {
            "CLIENT_ID": self.client_id,
            "CLIENT_SECRET": self.client_secret,
            "USERNAME": self.username,
            "PASSWORD": self.password,
            "KEY": self.api_key,
            "TOKEN": self.token,
            "PRIVATE_KEY": self.private_key,
            "KEY_ID": self.key_id,
            "SCOPE": self.scope,
            "EXTRA_PARAMS": dict(self.extra_params or {}),
        }
        return {key: value for key, value in values.items() if value}


def get_credential(name: str) -> Credential | None:
    """The active credential called ``name``, or ``None``."""
    credential: Credential | None = Credential.objects.filter(name=name, is_active=True).first()
    return credential
