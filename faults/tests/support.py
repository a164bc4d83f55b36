"""Shared set-up for the fault tests: users with tokens, accounts and images, in committed rows."""

from __future__ import annotations

import itertools

from auth_app.models import User
from auth_app.services import token_pair_issue
from billing_app.models import Account, Price
from billing_app.tests.factories import PRICES
from faults.load import Actor
from image_app.models import Image

_seq = itertools.count(1)


def ensure_prices() -> None:
    # TransactionTestCase empties every table after a test, the migrated price list included.
    for metric, price in PRICES.items():
        Price.objects.get_or_create(metric=metric, defaults={"unit_price": price})


def make_actor(*, staff: bool = False, tag: str = "actor") -> Actor:
    n = next(_seq)
    user = User.objects.create_user(f"{tag}{n}@faults.example", None, name=f"{tag} {n}", is_staff=staff)
    account = Account.objects.create(owner=user, name=f"{tag} account {n}", plan="pro")
    image = Image.objects.create(owner=user, prompt=f"{tag} image {n}", width=128, height=128)
    token = token_pair_issue(user=user).access_token
    return Actor(user_id=user.pk, token=token, account_id=account.pk, image_id=image.pk, seed=n)


def make_actors(count: int, **kwargs) -> list[Actor]:
    ensure_prices()
    return [make_actor(**kwargs) for _ in range(count)]
