"""GET /api/images (the caller's own, cursor-paged, first page cached) and DELETE /api/images/{id}."""

from __future__ import annotations

import threading
import unittest
from datetime import timedelta
from pathlib import Path

from django.db import connection, connections, transaction
from django.utils import timezone

from auth_app.tests.factories import make_token, make_user
from billing_app.models import UsageRecord
from billing_app.tests.factories import make_account
from image_app import services
from image_app.generator import Generator
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase, LiveTestCase, private_media_root

URL = "/api/images"


def make_images(owner, count: int, **extra) -> list[Image]:
    """``count`` images of ``owner``, one second apart, oldest first."""
    start = timezone.now() - timedelta(hours=1)
    return [
        make_image(owner=owner, prompt=f"p{i}", created_at=start + timedelta(seconds=i), **extra) for i in range(count)
    ]


class ImageListTestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner, self.other, self.staff = make_user(), make_user(), make_user(staff=True)

    def as_user(self, user):
        return self.api.bearer(make_token(user) if user else None)

    def listing(self, user, **params) -> dict:
        response = self.as_user(user).get(URL, params)
        self.assertEqual(response.status_code, 200, response.content)
        return response.json()

    def ids(self, user, **params) -> list[int]:
        return [item["id"] for item in self.listing(user, **params)["data"]["items"]]

    def saved(self, write) -> None:
        """Run a write outside the API as production would: committed, so its invalidation applies."""
        with self.captureOnCommitCallbacks(execute=True):
            write()


class ListTests(ImageListTestCase):
    def test_the_callers_own_images_newest_first_as_their_metadata(self):
        mine = make_images(self.owner, 3)
        make_images(self.other, 2)
        body = self.listing(self.owner)
        self.assertEqual([i["id"] for i in body["data"]["items"]], [image.pk for image in reversed(mine)])
        self.assertIsNone(body["data"]["next"])
        single = self.as_user(self.owner).get(f"{URL}/{mine[-1].pk}").json()["data"]
        self.assertEqual(body["data"]["items"][0], single)
        self.assertEqual(self.ids(self.staff), [])  # staff list their own images too

    def test_status_filters_and_bad_parameters_are_400_naming_them(self):
        queued, done = make_images(self.owner, 2)
        self.saved(lambda: Image.objects.filter(pk=done.pk).update(status="completed"))
        self.assertEqual(self.ids(self.owner, status="completed"), [done.pk])
        self.assertEqual(self.ids(self.owner, status="queued"), [queued.pk])
        self.assertEqual(self.ids(self.owner), [done.pk, queued.pk])
        for params, field in (
            ({"status": "done"}, "status"),
            ({"status": "QUEUED"}, "status"),
            ({"limit": "0"}, "limit"),
            ({"limit": "101"}, "limit"),
            ({"limit": "x"}, "limit"),
            ({"cursor": "nope"}, "cursor"),
        ):
            with self.subTest(params=params):
                response = self.as_user(self.owner).get(URL, params)
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), [field])
        self.assertEqual(self.as_user(None).get(URL).status_code, 401)

    def test_every_image_once_across_pages_while_images_are_added(self):
        existing = make_images(self.owner, 5)
        seen, cursor, added = [], None, []
        while True:
            data = self.listing(self.owner, limit=2, **({"cursor": cursor} if cursor else {}))["data"]
            seen += [item["id"] for item in data["items"]]
            cursor = data["next"]
            if cursor is None:
                break
            created = self.as_user(self.owner).post(URL, {"prompt": "new", "width": 64, "height": 64})
            added.append(created.json()["id"])
        self.assertEqual(seen, [image.pk for image in reversed(existing)])
        self.assertEqual(self.ids(self.owner, limit=100)[: len(added)], list(reversed(added)))

    def test_a_cursor_is_bound_to_its_owner_status_and_listing(self):
        make_images(self.owner, 3)
        make_images(self.other, 3)
        cursor = self.listing(self.owner, limit=1)["data"]["next"]
        queued_cursor = self.listing(self.owner, limit=1, status="queued")["data"]["next"]
        self.assertEqual(len(self.ids(self.owner, limit=1, cursor=cursor)), 1)
        refused = [
            (self.other, {"cursor": cursor}),  # another owner's
            (self.owner, {"cursor": cursor, "status": "queued"}),  # another filter's
            (self.owner, {"cursor": queued_cursor}),
            (self.owner, {"cursor": cursor[:-2] + ("AA" if cursor[-2:] != "AA" else "BB")}),  # tampered
        ]
        make_account(self.owner), make_account(self.owner, name="second")
        account_cursor = self.as_user(self.owner).get("/api/billing/accounts", {"limit": 1}).json()["data"]["next"]
        self.assertIsNotNone(account_cursor)
        refused.append((self.owner, {"cursor": account_cursor}))  # the account listing's
        for user, params in refused:
            with self.subTest(user=user.pk, params=params):
                response = self.as_user(user).get(URL, {"limit": 1, **params})
                self.assertEqual(response.status_code, 400)
                self.assertEqual(list(response.json()), ["cursor"])


class ListCacheTests(ImageListTestCase):
    def test_first_page_cached_per_owner_and_status_for_an_hour(self):
        make_images(self.owner, 2)
        self.assertEqual([self.listing(self.owner)["fromCache"] for _ in range(2)], [False, True])
        self.assertEqual([self.listing(self.owner, status="queued")["fromCache"] for _ in range(2)], [False, True])
        for status in ("all", "queued"):
            ttl = self.redis.ttl(f"ImageService_image:list:{self.owner.pk}:{status}")
            self.assertGreater(ttl, 3600 - 60)
            self.assertLessEqual(ttl, 3600)
        self.assertFalse(self.listing(self.other)["fromCache"])

    def test_a_new_or_changed_image_shows_in_the_next_listing_at_once(self):
        [image] = make_images(self.owner, 1)
        self.listing(self.owner)
        self.listing(self.owner, status="running")
        created = self.as_user(self.owner).post(URL, {"prompt": "fresh", "width": 64, "height": 64}).json()
        after = self.listing(self.owner)
        self.assertFalse(after["fromCache"])
        self.assertEqual(after["data"]["items"][0]["id"], created["id"])

        self.listing(self.owner)  # cached again
        self.saved(lambda: services.image_update(image=image, status="running", lease_owner="w"))
        after = self.listing(self.owner)
        self.assertFalse(after["fromCache"])
        self.assertEqual(after["data"]["items"][1]["status"], "running")
        self.assertEqual(self.ids(self.owner, status="running"), [image.pk])

    def test_an_image_moved_to_another_owner_leaves_one_list_and_joins_the_other(self):
        [image] = make_images(self.owner, 1)
        self.listing(self.owner)
        self.listing(self.other)
        moved = Image.objects.get(pk=image.pk)
        moved.owner = self.other
        self.saved(moved.save)
        self.assertEqual((self.ids(self.owner), self.ids(self.other)), ([], [image.pk]))
        self.saved(lambda: Image.objects.filter(pk=image.pk).update(owner=self.owner))
        self.assertEqual((self.ids(self.owner), self.ids(self.other)), ([image.pk], []))
        self.saved(lambda: Image.objects.bulk_create([Image(owner=self.other, prompt="b", width=64, height=64)]))
        self.assertEqual(len(self.ids(self.other)), 1)


class DeleteTests(ImageListTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.media = private_media_root(self)
        self.account = make_account(self.owner)
        self.image = make_image(owner=self.owner, account=self.account)
        self.url = f"{URL}/{self.image.pk}"

    def render(self) -> Path:
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(Generator().run(once=True), 1)
        self.image.refresh_from_db()
        path = self.media / self.image.result_file
        self.assertTrue(path.exists())
        return path

    def test_owner_deletes_a_rendered_image_its_file_goes_and_its_usage_stays_billed(self):
        path = self.render()
        [usage] = UsageRecord.objects.filter(account=self.account)
        summary = f"/api/billing/summary/{self.account.pk}"
        before = self.as_user(self.owner).get(summary).json()["data"]
        response = self.as_user(self.owner).delete(self.url)
        self.assertEqual(response.status_code, 204, response.content)
        self.assertEqual(response.content, b"")
        self.assertFalse(Image.objects.filter(pk=self.image.pk).exists())
        self.assertFalse(path.exists())
        self.assertEqual(list(UsageRecord.objects.filter(account=self.account)), [usage])
        after = self.as_user(self.owner).get(summary).json()["data"]
        self.assertEqual((after["totalUsageUnits"], after["unbilledAmount"]), (1, before["unbilledAmount"]))
        self.assertEqual(self.as_user(self.owner).get(f"{self.url}/result").status_code, 404)

    def test_the_image_and_its_owners_listings_are_invalidated(self):
        self.as_user(self.owner).get(self.url)
        self.assertTrue(self.as_user(self.owner).get(self.url).json()["fromCache"])
        self.listing(self.owner)
        self.listing(self.owner, status="queued")
        self.assertEqual(self.as_user(self.owner).delete(self.url).status_code, 204)
        self.assertEqual(self.as_user(self.owner).get(self.url).status_code, 404)
        for params in ({}, {"status": "queued"}):
            after = self.listing(self.owner, **params)
            self.assertEqual((after["fromCache"], after["data"]["items"]), (False, []))

    def test_staff_may_delete_anyones_image(self):
        self.assertEqual(self.as_user(self.staff).delete(self.url).status_code, 204)
        self.assertFalse(Image.objects.filter(pk=self.image.pk).exists())

    def test_others_unknown_and_anonymous(self):
        self.assertEqual(self.as_user(None).delete(self.url).status_code, 401)
        response = self.as_user(self.other).delete(self.url)
        self.assertEqual(response.status_code, 404)
        self.assertIn("detail", response.json())
        self.assertEqual(self.as_user(self.owner).delete(f"{URL}/999999999").status_code, 404)
        self.assertEqual(self.as_user(self.owner).delete(f"{URL}/abc").status_code, 404)
        self.assertTrue(Image.objects.filter(pk=self.image.pk).exists())

    def test_a_running_image_is_409_and_stays(self):
        self.saved(lambda: services.image_claim_next(worker="w"))
        response = self.as_user(self.owner).delete(self.url)
        self.assertEqual(response.status_code, 409)
        self.assertIn("detail", response.json())
        self.assertTrue(Image.objects.filter(pk=self.image.pk, status="running").exists())
        # Another user still learns nothing about it: 404 comes before 409.
        self.assertEqual(self.as_user(self.other).delete(self.url).status_code, 404)

    def test_failed_and_queued_images_may_be_deleted(self):
        failed = make_image(owner=self.owner, status="failed")
        for image in (failed, self.image):
            self.assertEqual(self.as_user(self.owner).delete(f"{URL}/{image.pk}").status_code, 204)
        self.assertFalse(Image.objects.filter(owner=self.owner).exists())


@unittest.skipUnless(connection.vendor == "postgresql", "needs PostgreSQL's row locks")
class DeleteRaceTests(LiveTestCase):
    """A deletion and a generator's claim of one image, overlapping in real threads."""

    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.image = make_image(owner=self.owner)
        self.holding, self.release = threading.Event(), threading.Event()
        self.addCleanup(self.release.set)

    def hold(self, write) -> threading.Thread:
        """Run ``write`` in a thread's transaction that stays open (its row locks held) until ``release``."""

        def run() -> None:
            try:
                with transaction.atomic():
                    write()
                    self.holding.set()
                    self.release.wait(10)
            finally:
                connections.close_all()

        thread = threading.Thread(target=run)
        thread.start()
        self.assertTrue(self.holding.wait(10))
        return thread

    def test_a_delete_waits_for_a_claim_in_flight_then_refuses_the_running_image(self):
        claim = self.hold(lambda: services.image_claim_next(worker="w"))
        outcome: list[object] = []

        def delete() -> None:
            try:
                services.image_delete(image_id=self.image.pk, viewer=self.owner)
                outcome.append("deleted")
            except services.ImageRunning as exc:
                outcome.append(exc)
            finally:
                connections.close_all()

        deleter = threading.Thread(target=delete)
        deleter.start()
        deleter.join(0.5)
        self.assertTrue(deleter.is_alive(), "the delete should wait for the claim's row lock")
        self.release.set()
        claim.join(10)
        deleter.join(10)
        self.assertEqual(len(outcome), 1)
        self.assertIsInstance(outcome[0], services.ImageRunning)
        self.assertTrue(Image.objects.filter(pk=self.image.pk, status="running").exists())

    def test_a_claim_skips_an_image_being_deleted(self):
        deleter = self.hold(lambda: services.image_delete(image_id=self.image.pk, viewer=self.owner))
        self.assertIsNone(services.image_claim_next(worker="w"))  # the row is locked: skipped, not waited on
        self.release.set()
        deleter.join(10)
        self.assertFalse(Image.objects.filter(pk=self.image.pk).exists())
        self.assertIsNone(services.image_claim_next(worker="w"))
