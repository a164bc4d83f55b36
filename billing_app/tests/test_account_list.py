"""GET /api/billing/accounts: the caller's own accounts, newest first, cursor-paged, first page cached."""

from __future__ import annotations

import base64
from datetime import timedelta

from django.utils import timezone

from billing_app.models import Account
from billing_app.money import iso
from techbirdsfly.testing import CacheTestCase

from .factories import make_token, make_user

URL = "/api/billing/accounts"


def make_accounts(owner, count: int, *, start=None, name: str = "acct") -> list[Account]:
    """``count`` accounts of ``owner``, one second apart, oldest first."""
    start = start or timezone.now() - timedelta(hours=1)
    return [
        Account.objects.create(owner=owner, name=f"{name}{i}", created_at=start + timedelta(seconds=i))
        for i in range(count)
    ]


class AccountListTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.other = make_user(), make_user()

    def as_user(self, user):
        return self.api.bearer(make_token(user))

    def listing(self, user, **params):
        response = self.as_user(user).get(URL, params)
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def walk(self, user, *, limit: int, between=None) -> list[int]:
        """Every id over all pages; ``between(page_number)`` runs before each following page."""
        ids, cursor, pages = [], None, 0
        while True:
            params = {"limit": limit} | ({"cursor": cursor} if cursor else {})
            data = self.listing(user, **params)["data"]
            self.assertLessEqual(len(data["items"]), limit)
            ids += [item["id"] for item in data["items"]]
            cursor, pages = data["next"], pages + 1
            if cursor is None:
                return ids
            self.assertTrue(data["items"], "a page before the last is never empty")
            if between:
                between(pages)


class ListingTests(AccountListTestCase):
    def test_the_callers_own_accounts_newest_first_with_their_fields(self):
        mine = make_accounts(self.owner, 3)
        make_accounts(self.other, 2)
        body = self.listing(self.owner)
        self.assertEqual(body["data"]["next"], None)
        self.assertEqual([item["id"] for item in body["data"]["items"]], [a.pk for a in reversed(mine)])
        newest = mine[-1]
        self.assertEqual(
            body["data"]["items"][0],
            {"id": newest.pk, "name": "acct2", "plan": "free", "currency": "USD", "createdAt": iso(newest.created_at)},
        )

    def test_staff_list_their_own_accounts_only(self):
        make_accounts(self.owner, 2)
        staff = make_user(staff=True)
        own = make_accounts(staff, 1)
        self.assertEqual([item["id"] for item in self.listing(staff)["data"]["items"]], [own[0].pk])

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(URL).status_code, 401)

    def test_limit_defaults_to_20_and_is_1_to_100(self):
        make_accounts(self.owner, 21)
        data = self.listing(self.owner)["data"]
        self.assertEqual((len(data["items"]), data["next"] is not None), (20, True))
        self.assertEqual(len(self.listing(self.owner, limit=100)["data"]["items"]), 21)
        for bad in ("0", "101", "-1", "ten", "2.5"):
            with self.subTest(limit=bad):
                response = self.as_user(self.owner).get(URL, {"limit": bad})
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), ["limit"])

    def test_a_new_account_of_the_same_instant_is_still_ordered(self):
        # The key is (createdAt, id): rows created in one instant are paged by id, none twice, none lost.
        moment = timezone.now() - timedelta(minutes=1)
        same = [Account.objects.create(owner=self.owner, name=f"s{i}", created_at=moment) for i in range(5)]
        self.assertEqual(self.walk(self.owner, limit=2), [a.pk for a in reversed(same)])


class PagingWhileAddingTests(AccountListTestCase):
    def test_every_account_once_while_accounts_are_added_between_pages(self):
        start = timezone.now() - timedelta(hours=1)
        existing = make_accounts(self.owner, 7, start=start)
        added: list[int] = []

        def add(page_number: int) -> None:
            # One newer account through the API, and one backdated between the existing ones.
            created = self.as_user(self.owner).post(URL, {"name": f"new{page_number}"}, format="json")
            self.assertEqual(created.status_code, 201)
            added.append(created.json()["id"])
            old = Account.objects.create(
                owner=self.owner, name=f"old{page_number}", created_at=start + timedelta(seconds=0.5)
            )
            added.append(old.pk)

        ids = self.walk(self.owner, limit=3, between=add)
        self.assertEqual(len(ids), len(set(ids)), "an account appeared on two pages")
        self.assertEqual([i for i in ids if i not in added], [a.pk for a in reversed(existing)])
        # Newer accounts are above every cursor handed out; a backdated one is below it, so listed once.
        self.assertTrue(set(ids) & set(added))
        self.assertEqual(
            self.walk(self.owner, limit=3),
            [a.pk for a in Account.objects.filter(owner=self.owner).order_by("-created_at", "-id")],
        )


class CursorTests(AccountListTestCase):
    def setUp(self) -> None:
        super().setUp()
        make_accounts(self.owner, 5)
        make_accounts(self.other, 5, name="theirs")
        self.cursor = self.listing(self.owner, limit=2)["data"]["next"]
        self.assertIsNotNone(self.cursor)

    def assertRefused(self, user, cursor: str) -> None:
        response = self.as_user(user).get(URL, {"cursor": cursor, "limit": 2})
        self.assertEqual(response.status_code, 400, response.content)
        self.assertEqual(list(response.json()), ["cursor"])

    def test_the_cursor_leads_to_the_next_page(self):
        data = self.listing(self.owner, limit=2, cursor=self.cursor)["data"]
        self.assertEqual([item["name"] for item in data["items"]], ["acct2", "acct1"])
        self.assertFalse(self.listing(self.owner, limit=2, cursor=self.cursor)["fromCache"])

    def test_another_owners_cursor_is_refused(self):
        self.assertRefused(self.other, self.cursor)

    def test_a_tampered_cursor_is_refused(self):
        payload, stamp, signature = self.cursor.split(":")
        flipped = signature[:-1] + ("A" if signature[-1] != "A" else "B")
        self.assertRefused(self.owner, f"{payload}:{stamp}:{flipped}")
        # The payload rewritten to name the other owner, the signature kept.
        decoded = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)).decode()
        forged = decoded.replace(f'"o":{self.owner.pk}', f'"o":{self.other.pk}')
        self.assertNotEqual(forged, decoded)
        encoded = base64.urlsafe_b64encode(forged.encode()).decode().rstrip("=")
        self.assertRefused(self.other, f"{encoded}:{stamp}:{signature}")
        for junk in ("abc", ":", "::", "x" * 600, self.cursor + "x"):
            with self.subTest(cursor=junk[:20]):
                self.assertRefused(self.owner, junk)


class CacheTests(AccountListTestCase):
    def key(self) -> str:
        return f"BillingService_billing:accounts:{self.owner.pk}"

    def test_first_page_cached_per_owner_for_15_minutes(self):
        make_accounts(self.owner, 2)
        first = self.listing(self.owner)
        second = self.listing(self.owner)
        self.assertEqual((first["fromCache"], second["fromCache"]), (False, True))
        self.assertEqual(second["data"], first["data"])
        self.assertGreater(self.redis.ttl(self.key()), 15 * 60 - 60)
        self.assertLessEqual(self.redis.ttl(self.key()), 15 * 60)
        # Any limit is cut from the one cached first page.
        self.assertTrue(self.listing(self.owner, limit=1)["fromCache"])
        self.assertFalse(self.listing(self.other)["fromCache"])

    def test_a_new_account_shows_in_the_next_listing_at_once(self):
        make_accounts(self.owner, 1)
        self.listing(self.owner)
        self.assertTrue(self.listing(self.owner)["fromCache"])
        created = self.as_user(self.owner).post(URL, {"name": "fresh"}, format="json").json()
        after = self.listing(self.owner)
        self.assertFalse(after["fromCache"])
        self.assertEqual(after["data"]["items"][0]["id"], created["id"])

    def test_a_changed_moved_or_deleted_account_shows_at_once(self):
        account, kept = make_accounts(self.owner, 2)
        self.listing(self.owner)
        self.listing(self.other)

        account.name = "renamed"
        with self.captureOnCommitCallbacks(execute=True):
            account.save()
        self.assertEqual(self.listing(self.owner)["data"]["items"][1]["name"], "renamed")

        with self.captureOnCommitCallbacks(execute=True):
            Account.objects.filter(pk=account.pk).update(plan="pro")  # no signal: the queryset invalidates
        self.assertEqual(self.listing(self.owner)["data"]["items"][1]["plan"], "pro")

        self.listing(self.other)
        account = Account.objects.get(pk=account.pk)
        account.owner = self.other
        with self.captureOnCommitCallbacks(execute=True):
            account.save()
        self.assertEqual([i["id"] for i in self.listing(self.owner)["data"]["items"]], [kept.pk])
        self.assertEqual([i["id"] for i in self.listing(self.other)["data"]["items"]], [account.pk])

        with self.captureOnCommitCallbacks(execute=True):
            Account.objects.bulk_create([Account(owner=self.owner, name="bulk")])
        self.assertEqual(self.listing(self.owner)["data"]["items"][0]["name"], "bulk")

        with self.captureOnCommitCallbacks(execute=True):
            kept.delete()
        self.assertNotIn(kept.pk, [i["id"] for i in self.listing(self.owner)["data"]["items"]])
