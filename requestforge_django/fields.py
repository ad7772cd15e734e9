"""``EncryptedTextField``: a text column that holds Fernet ciphertext, read back as plain ``str``.

Why decryption failures are deferred to attribute access: a row encrypted with a key
that has since been dropped (or a corrupt value) must not break loading every *other*
row, client or credential of a queryset, nor the admin change list. So
:meth:`EncryptedTextField.from_db_value` decrypts eagerly (good rows are ordinary
strings everywhere, ``values_list()`` included) but turns a value it cannot decrypt
into a :class:`Ciphertext` marker instead of raising. The field's descriptor, which
knows the instance, raises :class:`~requestforge_django.encryption.DecryptionError`
naming model, primary key and field when that attribute is read. Saving such a row
(e.g. after editing another field) writes the stored ciphertext back unchanged, so an
unreadable secret is never destroyed by accident.

Other rules:

* ``""`` and ``None`` are stored as they are (not encrypted), so "is a secret set" is
  answerable without keys (:func:`secret_state`, used by the admin).
* Only ``isnull`` and ``exact`` against ``""`` are allowed as lookups: ciphertexts use a
  random IV, so ``filter(password="x")`` could never match and is refused rather
  than silently empty.
* Serialization (``dumpdata``) writes ``"fernet:<ciphertext>"``, never plaintext;
  ``loaddata`` stores such values as they are (the same keys must be configured to
  read them) and encrypts plain strings.
* Keys come from settings at run time, so ``deconstruct()`` (and so every migration)
  contains nothing but the ordinary ``TextField`` arguments.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from django.core.exceptions import FieldError, ImproperlyConfigured
from django.db import models
from django.db.models.lookups import Exact, IsNull
from django.db.models.query_utils import DeferredAttribute

from .encryption import EncryptionError, decrypt, encrypt

__all__ = ["CIPHERTEXT_PREFIX", "Ciphertext", "EncryptedTextField", "SecretState", "secret_state"]

#: Prefix of serialized (``dumpdata``) values: what follows is stored as ciphertext, not encrypted again.
CIPHERTEXT_PREFIX = "fernet:"

SecretState = Literal["empty", "set", "unreadable"]


@dataclass(frozen=True, slots=True)
class Ciphertext:
    """A stored value that is still encrypted: it could not be decrypted when loaded, or came from a fixture.

    Its ``repr`` hides the ciphertext (not secret, but noise in logs and tracebacks).
    """

    ciphertext: str
    #: Whether decryption was attempted and failed (False for values from fixtures, not yet tried).
    failed: bool = True

    def __repr__(self) -> str:
        return f"<Ciphertext ({'undecryptable' if self.failed else 'not decrypted yet'})>"


class _EncryptedAttribute(DeferredAttribute):
    """Descriptor that turns a :class:`Ciphertext` into plaintext on access, or raises naming the row.

    A data descriptor (it defines ``__set__``) so that ``__get__`` runs even when the
    value is already in ``instance.__dict__``.
    """

    def __get__(self, instance: Any, cls: Any = None) -> Any:
        if instance is None:
            return self
        value = super().__get__(instance, cls)
        if isinstance(value, Ciphertext):
            value = decrypt(value.ciphertext, model=instance._meta.label, pk=instance.pk, field=self.field.name)
            instance.__dict__[self.field.attname] = value
        return value

    def __set__(self, instance: Any, value: Any) -> None:
        instance.__dict__[self.field.attname] = value


class _EmptyOnlyExact(Exact):
    """``exact`` that only accepts ``""``: ciphertexts are randomized, so other values can never match."""

    def get_prep_lookup(self) -> Any:
        if self.rhs is not None and self.rhs != "":
            raise FieldError(
                f'Encrypted field "{self.lhs.target.name}" can only be compared with "" (not set); '
                "ciphertexts are randomized, so filtering by a secret value is not possible."
            )
        return super().get_prep_lookup()


class EncryptedTextField(models.TextField):  # type: ignore[type-arg]  # django-stubs' generic field types
    """A ``TextField`` whose non-empty values are stored Fernet-encrypted; see the module docstring."""

    descriptor_class = _EncryptedAttribute
    description = "Text encrypted with REQUESTFORGE ENCRYPTION_KEYS"

    # -- database -> Python ---------------------------------------------------------------
    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if not value:
            return value
        try:
            return decrypt(value)
        except (EncryptionError, ImproperlyConfigured):
            return Ciphertext(value)

    def to_python(self, value: Any) -> Any:
        if isinstance(value, Ciphertext):
            return value
        if isinstance(value, str) and value.startswith(CIPHERTEXT_PREFIX):
            return Ciphertext(value[len(CIPHERTEXT_PREFIX) :], failed=False)
        return super().to_python(value)

    # -- Python -> database ---------------------------------------------------------------
    def pre_save(self, model_instance: models.Model, add: bool) -> Any:
        # Read the raw value: going through the descriptor would raise for an unreadable row.
        if self.attname in model_instance.__dict__:
            return model_instance.__dict__[self.attname]
        return super().pre_save(model_instance, add)

    def get_prep_value(self, value: Any) -> Any:
        if isinstance(value, Ciphertext):
            return value.ciphertext
        value = super().get_prep_value(value)
        if not value:
            return value
        return encrypt(value)

    # -- serialization ----------------------------------------------------------------------
    def value_to_string(self, obj: models.Model) -> str:
        value = obj.__dict__.get(self.attname) if self.attname in obj.__dict__ else self.value_from_object(obj)
        if not value:
            return "" if value is None else value
        if isinstance(value, Ciphertext):
            return CIPHERTEXT_PREFIX + value.ciphertext
        return CIPHERTEXT_PREFIX + encrypt(value)

    # -- lookups ----------------------------------------------------------------------------
    def get_lookup(self, lookup_name: str) -> Any:
        if lookup_name == "exact":
            return _EmptyOnlyExact
        if lookup_name == "isnull":
            return IsNull
        return None

    def get_transform(self, lookup_name: str) -> Any:
        return None


def _raw_value(instance: models.Model, name: str) -> Any:
    """The stored value of an encrypted field without decrypting (plaintext, ``Ciphertext``, ``""`` or ``None``)."""
    attname: str = instance._meta.get_field(name).attname  # type: ignore[union-attr]  # a concrete field, never a relation
    if attname not in instance.__dict__ and instance.pk is not None:
        instance.refresh_from_db(fields=[attname])
    return instance.__dict__.get(attname)


def secret_state(instance: models.Model, name: str) -> SecretState:
    """Whether the encrypted field ``name`` of ``instance`` is ``"empty"``, ``"set"`` or ``"unreadable"``; never decrypts."""
    value = _raw_value(instance, name)
    if isinstance(value, Ciphertext):
        return "unreadable" if value.failed else "set"
    return "set" if value else "empty"
