"""The benchmark's data: a database seeded by seed_demo (reused when already big enough), plus the
images, preferences and tokens the endpoints need."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class Size:
    users: int
    accounts: int
    usage: int
    large_accounts: int
    large_account_usage: int
    images: int


FULL = Size(users=10_000, accounts=10_000, usage=2_000_000, large_accounts=3, large_account_usage=250_000, images=2_000)
SMOKE = Size(users=40, accounts=40, usage=6_000, large_accounts=1, large_account_usage=2_000, images=20)


@dataclass(frozen=True)
class Fixtures:
    users: int
    accounts: int
    usage_records: int
    images: int
    largest_account: int
    largest_records: int
    typical_account: int
    typical_records: int
    large_accounts: list[tuple[int, int]]  # (id, records) of every account at the large size or over
    image_id: int
    user_id: int  # owner of the largest account: me, preferences, image, validate-token
    typical_owner_id: int
    token: str
    typical_token: str
    staff_token: str
    newest_usage: str


def _admin_url(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    name = parts.path.lstrip("/")
    if not name:
        raise SystemExit(f"the database URL names no database: {url}")
    return urlunsplit(parts._replace(scheme="postgresql", path="/postgres")), name


def ensure_database(url: str) -> bool:
    """Create the database if it does not exist; True when it was created."""
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            return False
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return True


def drop_database(url: str) -> None:
    admin, name = _admin_url(url)
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _counts() -> dict[str, int]:
    from django.contrib.auth import get_user_model
    from django.db.models import Count

    from billing_app.models import Account, UsageRecord
    from techbirdsfly.seeding import DEMO_DOMAIN

    largest = (
        UsageRecord.objects.values("account_id").annotate(n=Count("id")).order_by("-n").values_list("n", flat=True)[:1]
    )
    return {
        "users": get_user_model().objects.filter(email__endswith=f"@{DEMO_DOMAIN}", is_staff=False).count(),
        "accounts": Account.objects.count(),
        "usage": UsageRecord.objects.count(),
        "largest": next(iter(largest), 0),
    }


def seeded_enough(size: Size) -> bool:
    counts = _counts()
    return (
        counts["users"] >= size.users
        and counts["accounts"] >= size.accounts
        and counts["usage"] >= size.usage
        and counts["largest"] >= size.large_account_usage
    )


def ensure_data(size: Size, log: Any) -> str:
    """Migrate and seed unless the data set is already there; returns what was done."""
    from django.core.management import call_command

    call_command("migrate", verbosity=0, interactive=False)
    if seeded_enough(size):
        return "reused the seeded database"
    log(
        f"seeding {size.users:,} users, {size.accounts:,} accounts, {size.usage:,} usage records "
        f"({size.large_accounts} accounts of {size.large_account_usage:,}) with seed_demo"
    )
    call_command(
        "seed_demo",
        users=size.users,
        accounts=size.accounts,
        usage=size.usage,
        large_accounts=size.large_accounts,
        large_account_usage=size.large_account_usage,
        seed=42,
        reset=True,
        verbosity=0,
    )
    return "seeded with seed_demo"


def prepare_fixtures(size: Size) -> Fixtures:
    """Images, preferences and fresh tokens; the largest and a typical (median) account."""
    from django.contrib.auth import get_user_model
    from django.db.models import Count, Max
    from django.utils import timezone

    from auth_app.services import token_pair_issue
    from billing_app.models import Account, UsageRecord
    from image_app.models import Image
    from techbirdsfly.seeding import STAFF_EMAIL
    from user_app.models import UserPreferences

    User = get_user_model()
    per_account = list(
        UsageRecord.objects.values("account_id").annotate(n=Count("id")).order_by("n").values_list("account_id", "n")
    )
    largest_id, largest_n = per_account[-1]
    typical_id, typical_n = per_account[len(per_account) // 2]
    large = [(a, n) for a, n in reversed(per_account) if n >= size.large_account_usage]
    owners = dict(Account.objects.filter(pk__in=[largest_id, typical_id]).values_list("pk", "owner_id"))
    user = User.objects.get(pk=owners[largest_id])
    typical_owner = User.objects.get(pk=owners[typical_id])
    staff = User.objects.get(email=STAFF_EMAIL)

    # Images of every status, for the metadata endpoint and the dashboard's image counts. New rows
    # have nothing cached, so bulk_create (which sends no signals) invalidates nothing, and need not.
    missing = size.images - Image.objects.count()
    if missing > 0:
        statuses = [Image.Status.COMPLETED] * 7 + [Image.Status.QUEUED, Image.Status.RUNNING, Image.Status.FAILED]
        owner_ids = list(User.objects.filter(is_staff=False).order_by("pk").values_list("pk", flat=True)[:1000])
        now = timezone.now()
        Image.objects.bulk_create(
            [
                Image(
                    owner_id=owner_ids[i % len(owner_ids)],
                    prompt=f"benchmark image {i}: a heron over a lake at dawn, watercolour",
                    width=512,
                    height=512,
                    style="watercolour",
                    status=statuses[i % len(statuses)],
                    result_url=f"https://cdn.example.invalid/bench/{i}.png",
                    bytes=180_000 + i,
                    checksum=f"{i:064x}",
                    completed_at=now,
                )
                for i in range(missing)
            ],
            batch_size=1000,
        )
    image = Image.objects.filter(owner=user, status=Image.Status.COMPLETED).order_by("pk").first()
    if image is None:
        image = Image.objects.create(
            owner=user, prompt="benchmark image of the largest customer", width=1024, height=768,
            status=Image.Status.COMPLETED, result_url="https://cdn.example.invalid/bench/largest.png",
            bytes=420_000, checksum="0" * 64, completed_at=timezone.now(),
        )  # fmt: skip
    UserPreferences.objects.update_or_create(
        user=user, defaults={"theme": "dark", "language": "en-GB", "timezone": "Europe/London"}
    )
    newest = UsageRecord.objects.aggregate(newest=Max("recorded_at"))["newest"]
    return Fixtures(
        users=User.objects.count(),
        accounts=Account.objects.count(),
        usage_records=UsageRecord.objects.count(),
        images=Image.objects.count(),
        largest_account=largest_id,
        largest_records=largest_n,
        typical_account=typical_id,
        typical_records=typical_n,
        large_accounts=large,
        image_id=image.pk,
        user_id=user.pk,
        typical_owner_id=typical_owner.pk,
        token=token_pair_issue(user=user).access_token,
        typical_token=token_pair_issue(user=typical_owner).access_token,
        staff_token=token_pair_issue(user=staff).access_token,
        newest_usage=newest.isoformat() if newest else "none",
    )


def connect_params() -> dict:
    """psycopg's connection arguments for the benchmark's database, as Django builds them."""
    from django.db import connection

    params = connection.get_connection_params()
    for django_only in ("cursor_factory", "context"):
        params.pop(django_only, None)
    return params
