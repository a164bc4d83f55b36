"""Refill User.email_normalized now that the domain is compared in its ASCII (IDNA) form.

Stops, naming the accounts, where an IDN domain and its ``xn--`` spelling made two accounts of one
address: which one to keep is a decision for a person, so nothing is merged or renamed.
"""

from collections import defaultdict

from django.db import migrations

from auth_app.emails import normalize_email


def refill(apps, schema_editor):
    User = apps.get_model("auth_app", "User")
    by_normalized = defaultdict(list)
    for pk, email, stored in User.objects.order_by("pk").values_list("pk", "email", "email_normalized").iterator():
        by_normalized[normalize_email(email)].append((pk, email, stored))
    collisions = {norm: users for norm, users in by_normalized.items() if len(users) > 1}
    if collisions:
        lines = [
            f"  {norm!r}: " + ", ".join(f"id {pk} {email!r}" for pk, email, _ in users)
            for norm, users in sorted(collisions.items())
        ]
        raise RuntimeError(
            "auth_app 0006: these accounts have emails whose domains are one domain in IDNA form:\n"
            + "\n".join(lines)
            + "\nDecide which account to keep for each, change or delete the others, then run migrate "
            "again. Nothing was changed."
        )
    for norm, [(pk, _, stored)] in by_normalized.items():
        if norm != stored:
            User.objects.filter(pk=pk).update(email_normalized=norm)


class Migration(migrations.Migration):
    dependencies = [("auth_app", "0005_token_revoked_reason")]

    operations = [migrations.RunPython(refill, migrations.RunPython.noop, elidable=False)]
