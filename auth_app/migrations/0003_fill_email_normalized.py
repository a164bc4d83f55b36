"""Fill User.email_normalized; stop, naming the accounts, where two emails normalize alike.

Two such accounts are one person's email spelt twice (or an attack that raced two
registrations). Which one to keep is a decision for a person: this migration merges and renames nothing.
"""

from collections import defaultdict

from django.db import migrations

from auth_app.emails import normalize_email


def fill(apps, schema_editor):
    User = apps.get_model("auth_app", "User")
    by_normalized = defaultdict(list)
    for pk, email in User.objects.order_by("pk").values_list("pk", "email").iterator():
        by_normalized[normalize_email(email)].append((pk, email))
    collisions = {norm: users for norm, users in by_normalized.items() if len(users) > 1}
    if collisions:
        lines = [
            f"  {norm!r}: " + ", ".join(f"id {pk} {email!r}" for pk, email in users)
            for norm, users in sorted(collisions.items())
        ]
        raise RuntimeError(
            "auth_app 0003: these accounts have emails that normalize to the same address "
            "(NFKC, case fold, trim) and cannot stay separate accounts:\n"
            + "\n".join(lines)
            + "\nDecide which account to keep for each, change or delete the others "
            "(e.g. in manage.py shell), then run migrate again. Nothing was changed."
        )
    for norm, [(pk, _)] in by_normalized.items():
        User.objects.filter(pk=pk).update(email_normalized=norm)


class Migration(migrations.Migration):
    dependencies = [("auth_app", "0002_user_email_normalized")]

    operations = [migrations.RunPython(fill, migrations.RunPython.noop, elidable=False)]
