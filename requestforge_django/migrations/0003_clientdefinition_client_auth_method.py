"""Let a client definition choose how its client id and secret reach the token endpoint."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("requestforge_django", "0002_credential_allowed_origins"),
    ]

    operations = [
        migrations.AddField(
            model_name="clientdefinition",
            name="client_auth_method",
            field=models.CharField(
                blank=True,
                choices=[("client_secret_post", "client_secret_post"), ("client_secret_basic", "client_secret_basic")],
                default="client_secret_post",
                help_text="client_credentials and password: how the client id and secret reach the token endpoint "
                "(form body, or HTTP Basic); blank: client_secret_post.",
                max_length=32,
                verbose_name="client authentication method",
            ),
        ),
    ]
