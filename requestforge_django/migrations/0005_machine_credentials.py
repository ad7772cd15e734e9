"""Machine credentials (issue 17): a credential's private key and key id; a definition's issuer, assertion method and token exchange.

``Credential.private_key`` is encrypted like every secret (``EncryptedTextField``: only the
ordinary ``TextField`` arguments appear here, the keys come from settings at run time).
"""

from django.db import migrations, models

import requestforge_django.fields


class Migration(migrations.Migration):
    dependencies = [
        ("requestforge_django", "0004_credential_version"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientdefinition",
            name="algorithm",
            field=models.CharField(
                blank=True,
                choices=[
                    ("HS256", "HS256"),
                    ("HS384", "HS384"),
                    ("HS512", "HS512"),
                    ("RS256", "RS256"),
                    ("RS384", "RS384"),
                    ("RS512", "RS512"),
                    ("PS256", "PS256"),
                    ("PS384", "PS384"),
                    ("PS512", "PS512"),
                    ("ES256", "ES256"),
                    ("ES384", "ES384"),
                    ("ES512", "ES512"),
                ],
                help_text="Of signed assertions; blank: HS256 for client_secret_jwt, RS256 for an RSA key, ES256/384/512 by curve.",
                max_length=8,
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="assertion",
            field=models.JSONField(
                blank=True,
                help_text='jwt_bearer: the ASSERTION dict without the key (the credential supplies it), e.g. {"ISSUER": "svc@example", '
                '"SUBJECT": "svc@example", "LIFETIME": 300}; blank: the credential\'s client id is the issuer and subject.',
                null=True,
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="audience",
            field=models.JSONField(
                blank=True, default=list, help_text='"audience" parameters of the token request, e.g. ["https://api.example.com"].'
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="issuer",
            field=models.CharField(
                blank=True,
                help_text="Instead of a token URL: the issuer whose metadata (RFC 8414, then OpenID discovery) names the token endpoint.",
                max_length=2000,
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="resource",
            field=models.JSONField(
                blank=True, default=list, help_text='"resource" parameters (RFC 8707): absolute URIs, e.g. ["https://api.example.com"].'
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="subject_token_from",
            field=models.CharField(
                blank=True,
                help_text="token_exchange: the client or pipeline whose token is exchanged.",
                max_length=100,
                verbose_name="subject token from",
            ),
        ),
        migrations.AddField(
            model_name="clientdefinition",
            name="subject_token_type",
            field=models.CharField(
                blank=True,
                help_text="token_exchange; blank: urn:ietf:params:oauth:token-type:access_token.",
                max_length=255,
                verbose_name="subject token type",
            ),
        ),
        migrations.AddField(
            model_name="credential",
            name="key_id",
            field=models.CharField(
                blank=True,
                help_text='The "kid" sent with assertions signed with the private key, if the partner wants one.',
                max_length=255,
                verbose_name="key id",
            ),
        ),
        migrations.AddField(
            model_name="credential",
            name="private_key",
            field=requestforge_django.fields.EncryptedTextField(
                blank=True,
                help_text="PEM private key (RSA or EC) that signs client assertions (private_key_jwt) and JWT-bearer grant assertions.",
                verbose_name="private key",
            ),
        ),
        migrations.AlterField(
            model_name="clientdefinition",
            name="auth_type",
            field=models.CharField(
                blank=True,
                choices=[
                    ("", "none"),
                    ("client_credentials", "client_credentials"),
                    ("password", "password"),
                    ("jwt_bearer", "jwt_bearer"),
                    ("token_exchange", "token_exchange"),
                    ("pipeline", "pipeline"),
                    ("bearer", "bearer"),
                    ("api_key", "api_key"),
                    ("basic", "basic"),
                ],
                max_length=32,
                verbose_name="auth type",
            ),
        ),
        migrations.AlterField(
            model_name="clientdefinition",
            name="client_auth_method",
            field=models.CharField(
                blank=True,
                choices=[
                    ("client_secret_post", "client_secret_post"),
                    ("client_secret_basic", "client_secret_basic"),
                    ("client_secret_jwt", "client_secret_jwt"),
                    ("private_key_jwt", "private_key_jwt"),
                ],
                default="client_secret_post",
                help_text="How the client authenticates at the token endpoint: its secret in the form body or as HTTP Basic, or a client "
                "assertion signed with the secret (client_secret_jwt) or the credential's private key (private_key_jwt); "
                "blank: client_secret_post.",
                max_length=32,
                verbose_name="client authentication method",
            ),
        ),
        migrations.AlterField(
            model_name="clientdefinition",
            name="token_url",
            field=models.CharField(
                blank=True,
                help_text="client_credentials, password, jwt_bearer and token_exchange; or an issuer.",
                max_length=2000,
                verbose_name="token URL",
            ),
        ),
    ]
