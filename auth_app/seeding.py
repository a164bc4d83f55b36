"""auth_app's stage of ``manage.py seed_demo``: the demo users, and the staff user."""

from __future__ import annotations

from datetime import timedelta

from django.contrib.auth import get_user_model
from django.contrib.auth.hashers import make_password

from techbirdsfly.seeding import (
    ACTIVITY_DAYS,
    DEMO_PASSWORD,
    STAFF_EMAIL,
    SeedContext,
    Stage,
    StageOption,
    batches,
    demo_email,
)

_FIRST = ("Ada", "Grace", "Alan", "Linus", "Margaret", "Ken", "Barbara", "Dennis", "Frances", "Edsger", "Radia")
_LAST = ("Lovelace", "Hopper", "Turing", "Torvalds", "Hamilton", "Thompson", "Liskov", "Ritchie", "Allen", "Perlman")


def seed_users(ctx: SeedContext) -> str:
    User = get_user_model()
    rng = ctx.rng("users")
    # Hashing is deliberately slow: hash the one demo password once and give every user that hash.
    password = make_password(DEMO_PASSWORD)
    count = ctx.option("users")
    users = [
        User(
            email=demo_email(i),
            name=f"{rng.choice(_FIRST)} {rng.choice(_LAST)}",
            password=password,
            date_joined=ctx.now - timedelta(days=ACTIVITY_DAYS + rng.randint(1, 365)),
        )
        for i in range(count)
    ]
    staff = User(email=STAFF_EMAIL, name="Demo Staff", password=password, is_staff=True, date_joined=ctx.now)
    with ctx.progress(total=count + 1, desc="users") as bar:
        for batch in batches([*users, staff], ctx.batch_size):
            User.objects.bulk_create(batch)
            bar.update(len(batch))
    ctx.users, ctx.staff = users, staff
    return f"{count:,} users (+1 staff)"


def reset_users(ctx: SeedContext) -> None:
    ctx.demo_users().delete()  # cascades to whatever other apps hang on a user


STAGES = [
    Stage(
        "users",
        seed_users,
        reset_users,
        options=(StageOption("--users", 100, "demo users (plus one staff user)"),),
    )
]
