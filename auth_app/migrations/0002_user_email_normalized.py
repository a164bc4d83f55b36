from django.db import migrations, models


class Migration(migrations.Migration):
    dependencies = [("auth_app", "0001_initial")]

    operations = [
        # Nullable first: 0003 fills it (and stops on collisions), 0004 makes it unique.
        migrations.AddField(
            model_name="user",
            name="email_normalized",
            field=models.CharField(editable=False, max_length=512, null=True),
        ),
        # Lower(email) is replaced by the normalized column (auth_app/emails.py), which also folds
        # what lower() does not (ſ, full-width forms) and nothing that lower() folds but should not.
        migrations.RemoveConstraint(model_name="user", name="user_email_ci_unique"),
        migrations.AddField(
            model_name="loginfailure",
            name="subject",
            field=models.CharField(choices=[("email", "Email"), ("address", "Address")], default="email", max_length=7),
        ),
    ]
