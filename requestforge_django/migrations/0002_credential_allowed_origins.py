"""Bind each credential to the origins its secrets may be sent to (``Credential.allowed_origins``).

Existing rows are bound to what the database already does with them: the origins of the
``BASE_URL`` and, for ``client_credentials`` / ``password``, the ``TOKEN_URL`` of every
*active* client definition that uses the credential. A credential no active definition
uses gets an empty list: clients defined in settings (trusted code) keep using it
unchanged, and a database definition needs a user with change permission on credentials
to add its origins first. The origin rule is copied here (not imported) so this
migration keeps doing what it did when it was written.
"""

from urllib.parse import urlsplit

from django.db import migrations, models

_DEFAULT_PORTS = {"http": 80, "https": 443}
_TOKEN_URL_TYPES = ("client_credentials", "password")


def _origin(url):
    """``scheme://host[:port]`` of an absolute http(s) URL (default port left out), else ``None``."""
    if not isinstance(url, str):
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = parts.scheme.lower()
    if scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower().rstrip(".")
    shown = f"[{host}]" if ":" in host else host
    port = _DEFAULT_PORTS[scheme] if port is None else port
    return f"{scheme}://{shown}" if port == _DEFAULT_PORTS[scheme] else f"{scheme}://{shown}:{port}"


def bind_to_current_use(apps, schema_editor):
    Credential = apps.get_model("requestforge_django", "Credential")
    ClientDefinition = apps.get_model("requestforge_django", "ClientDefinition")
    alias = schema_editor.connection.alias
    origins = {}
    definitions = (
        ClientDefinition.objects.using(alias)
        .filter(is_active=True, credential__isnull=False)
        .exclude(auth_type__in=("", "pipeline"))
        .order_by("pk")
    )
    for definition in definitions:
        found = origins.setdefault(definition.credential_id, [])
        urls = [definition.token_url] if definition.auth_type in _TOKEN_URL_TYPES else []
        for url in (*urls, definition.base_url):
            origin = _origin(url)
            if origin is not None and origin not in found:
                found.append(origin)
    for pk, allowed in origins.items():
        Credential.objects.using(alias).filter(pk=pk).update(allowed_origins=allowed)


class Migration(migrations.Migration):
    dependencies = [
        ("requestforge_django", "0001_initial"),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="credential",
            options={
                "ordering": ("name",),
                "permissions": [("use_credential", "Can use credential in client definitions")],
                "verbose_name": "credential",
            },
        ),
        migrations.AddField(
            model_name="credential",
            name="allowed_origins",
            field=models.JSONField(
                blank=True,
                default=list,
                help_text="Origins (scheme://host[:port]) that clients defined in the admin may send this credential's secrets, "
                "and the tokens obtained with them, to: the token endpoint and the API. Empty: only clients defined in settings "
                "may use it.",
                verbose_name="allowed origins",
            ),
        ),
        migrations.RunPython(bind_to_current_use, migrations.RunPython.noop),
    ]
