from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("auth_app", "0003_fill_email_normalized")]

    operations = [
        migrations.AlterField(
            model_name="user",
            name="email_normalized",
            field=models.CharField(editable=False, max_length=512, unique=True),
        ),
    ]
