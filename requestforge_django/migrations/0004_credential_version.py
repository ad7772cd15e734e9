"""Give each credential a version, raised on every save, that the tokens obtained with it are tied to."""

from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [
        ("requestforge_django", "0003_clientdefinition_client_auth_method"),
    ]

    operations = [
        migrations.AddField(
            model_name="credential",
            name="version",
            field=models.PositiveBigIntegerField(
                default=1,
                editable=False,
                help_text="Raised on every save; a token is served only while the version that obtained it is the current one.",
            ),
        ),
    ]
