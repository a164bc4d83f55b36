"""Every row of API.md's image table, against the real Redis and database."""

from __future__ import annotations

import hashlib
import io
from decimal import Decimal

from django.test import override_settings
from PIL import Image as PILImage

from auth_app.tests.factories import make_token, make_user
from billing_app.models import UsageRecord
from billing_app.tests.factories import make_account
from image_app.generator import Generator
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.testing import CacheTestCase, CommitAPIClient, private_media_root

CHECKSUM = "ab" * 32


class ImageAPITestCase(CacheTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.owner = make_user()
        self.other = make_user()
        self.staff = make_user(staff=True)

    def as_user(self, user):
        return self.api.bearer(make_token(user) if user else None)

    def ttl(self, key: str) -> int:
        return self.redis.ttl(f"ImageService_{key}")


class CreateTests(ImageAPITestCase):
    def test_anonymous_is_401(self):
        response = self.api.post("/api/images", {"prompt": "x", "width": 64, "height": 64})
        self.assertEqual(response.status_code, 401)
        self.assertFalse(Image.objects.exists())

    def test_creates_a_queued_image_owned_by_the_caller(self):
        response = self.as_user(self.owner).post(
            "/api/images", {"prompt": "a kingfisher", "width": 512, "height": 256, "style": "orbs"}
        )
        self.assertEqual(response.status_code, 201, response.content)
        body = response.json()
        for field, value in {"status": "queued", "prompt": "a kingfisher", "width": 512, "height": 256}.items():
            self.assertEqual(body[field], value)
        self.assertEqual(body["style"], "orbs")
        self.assertTrue(body["createdAt"].endswith("+00:00"))
        image = Image.objects.get(pk=body["id"])
        self.assertEqual((image.owner_id, image.status), (self.owner.pk, "queued"))

    def test_style_is_optional(self):
        response = self.as_user(self.owner).post("/api/images", {"prompt": "p", "width": 64, "height": 2048})
        self.assertEqual(response.status_code, 201)
        self.assertIsNone(response.json()["style"])

    def test_bad_input_is_400_naming_the_field(self):
        good = {"prompt": "p", "width": 64, "height": 64}
        cases = [
            ({"prompt": ""}, "prompt"),
            ({"prompt": "   "}, "prompt"),
            ({"prompt": "x" * 2001}, "prompt"),
            ({"prompt": 123}, "prompt"),
            ({"prompt": "a\x00b"}, "prompt"),
            ({"width": 63}, "width"),
            ({"width": 2049}, "width"),
            ({"height": 0}, "height"),
            ({"height": "512"}, "height"),
            ({"width": 512.0}, "width"),
            ({"width": True}, "width"),
            ({"width": None}, "width"),
            ({"style": "s" * 65}, "style"),
            ({"style": 7}, "style"),
        ]
        client = self.as_user(self.owner)
        for change, field in cases:
            response = client.post("/api/images", {**good, **change})
            self.assertEqual(response.status_code, 400, change)
            self.assertIn(field, response.json(), change)
        for missing in ("prompt", "width", "height"):
            body = {k: v for k, v in good.items() if k != missing}
            response = client.post("/api/images", body)
            self.assertEqual(response.status_code, 400, missing)
            self.assertIn(missing, response.json())
        self.assertFalse(Image.objects.exists())

    def test_longest_prompt_and_extreme_sizes_are_accepted(self):
        response = self.as_user(self.owner).post("/api/images", {"prompt": "x" * 2000, "width": 2048, "height": 64})
        self.assertEqual(response.status_code, 201, response.content)

    def test_malformed_json_is_400(self):
        client = self.as_user(self.owner)
        for raw in ("{bad json", "[1, 2]", '"a string"', ""):
            response = client.generic("POST", "/api/images", raw, content_type="application/json")
            self.assertEqual(response.status_code, 400, raw)
            self.assertEqual(response["Content-Type"], "application/json", raw)


class ReadTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = make_image(owner=self.owner)
        self.url = f"/api/images/{self.image.pk}"

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.get(self.url).status_code, 401)

    def test_owner_reads_from_the_database_then_from_redis(self):
        client = self.as_user(self.owner)
        first = client.get(self.url)
        self.assertEqual(first.status_code, 200)
        self.assertFalse(first.json()["fromCache"])
        with self.assertNumQueries(0):  # token record and metadata both come out of Redis
            second = client.get(self.url)
        self.assertTrue(second.json()["fromCache"])
        self.assertEqual(first.json()["data"], second.json()["data"])
        data = second.json()["data"]
        expected = {"id", "status", "prompt", "width", "height", "style", "resultUrl", "bytes", "checksum"}
        self.assertLessEqual(expected | {"createdAt", "completedAt"}, set(data))
        self.assertEqual((data["id"], data["status"], data["width"], data["height"]), (self.image.pk, "queued", 96, 64))
        self.assertIsNone(data["resultUrl"])

    def test_keys_have_the_prefix_and_a_ttl(self):
        self.as_user(self.owner).get(self.url)
        keys = [k for k in self.redis_keys() if not k.startswith("AuthService_")]
        self.assertIn(f"ImageService_image:metadata:{self.image.pk}", keys)
        self.assertIn(f"ImageService_image:image:{self.image.pk}:gen", keys)
        for key in keys:
            self.assertTrue(key.startswith("ImageService_image:"), key)
            self.assertGreater(self.redis.ttl(key), 0, key)
        self.assertLessEqual(self.ttl(f"image:metadata:{self.image.pk}"), 3600)

    def test_staff_may_read_anyones_image(self):
        response = self.as_user(self.staff).get(self.url)
        self.assertEqual(response.status_code, 200)
        self.assertEqual(response.json()["data"]["id"], self.image.pk)

    def test_another_user_gets_404_even_from_a_warm_cache(self):
        self.as_user(self.owner).get(self.url)
        response = self.as_user(self.other).get(self.url)
        self.assertEqual(response.status_code, 404)
        self.assertNotIn("prompt", response.content.decode())

    def test_unknown_and_malformed_ids_are_404(self):
        client = self.as_user(self.owner)
        for path in ("/api/images/999999", "/api/images/abc", "/api/images/99999999999999999999", "/api/images/-1"):
            response = client.get(path)
            self.assertEqual(response.status_code, 404, path)
            self.assertEqual(response["Content-Type"], "application/json", path)

    def test_an_unknown_id_is_not_cached(self):
        client = self.as_user(self.owner)
        client.get("/api/images/999999")
        self.assertNotIn("ImageService_image:metadata:999999", self.redis_keys())

    def test_orm_and_admin_changes_invalidate(self):
        client = self.as_user(self.owner)
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            self.image.status = Image.Status.FAILED
            self.image.save()
        response = client.get(self.url)
        self.assertEqual((response.json()["fromCache"], response.json()["data"]["status"]), (False, "failed"))
        client.get(self.url)
        with self.captureOnCommitCallbacks(execute=True):
            Image.objects.filter(pk=self.image.pk).update(prompt="changed in bulk")
        response = client.get(self.url)
        self.assertEqual((response.json()["fromCache"], response.json()["data"]["prompt"]), (False, "changed in bulk"))
        with self.captureOnCommitCallbacks(execute=True):
            self.image.delete()
        self.assertEqual(client.get(self.url).status_code, 404)

    def test_admin_page_change_invalidates(self):
        client = self.as_user(self.owner)
        client.get(self.url)
        superuser = make_user(staff=True, is_superuser=True)
        self.client.force_login(superuser)
        with self.captureOnCommitCallbacks(execute=True):
            response = self.client.post(
                f"/admin/image_app/image/{self.image.pk}/change/",
                {
                    "owner": self.owner.pk,
                    "prompt": "edited in the admin",
                    "width": 96,
                    "height": 64,
                    "style": "",
                    "status": "queued",
                    "result_url": "",
                    "failure_reason": "",
                    "created_at_0": "2026-01-01",
                    "created_at_1": "00:00:00",
                },
            )
        self.assertEqual(response.status_code, 302, response.content[:2000])
        response = client.get(self.url)
        self.assertEqual(response.json()["data"]["prompt"], "edited in the admin")
        self.assertFalse(response.json()["fromCache"])


class PatchTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        self.image = make_image(owner=self.owner)
        self.url = f"/api/images/{self.image.pk}"

    def test_anonymous_is_401(self):
        self.assertEqual(self.api.patch(self.url, {"status": "running"}).status_code, 401)

    def test_non_staff_is_403_before_any_lookup(self):
        for path in (self.url, "/api/images/999999"):
            response = self.as_user(self.owner).patch(path, {"status": "running"})
            self.assertEqual(response.status_code, 403, path)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "queued")

    def test_unknown_id_is_404_for_staff(self):
        self.assertEqual(self.as_user(self.staff).patch("/api/images/999999", {"status": "running"}).status_code, 404)

    def test_bad_input_is_400_naming_the_field(self):
        cases = [
            ({}, "status"),
            ({"status": "queued"}, "status"),
            ({"status": "done"}, "status"),
            ({"status": 1}, "status"),
            ({"status": "completed", "bytes": -1}, "bytes"),
            ({"status": "completed", "bytes": "12"}, "bytes"),
            ({"status": "completed", "checksum": "xyz"}, "checksum"),
            ({"status": "completed", "checksum": "g" * 64}, "checksum"),
            ({"status": "completed", "resultUrl": "javascript:alert(1)"}, "resultUrl"),
            ({"status": "completed", "resultUrl": "//evil.example/x.png"}, "resultUrl"),
            ({"status": "failed", "failureReason": "r" * 1001}, "failureReason"),
        ]
        client = self.as_user(self.staff)
        for body, field in cases:
            response = client.patch(self.url, body)
            self.assertEqual(response.status_code, 400, body)
            self.assertIn(field, response.json(), body)
        response = client.generic("PATCH", self.url, "{nope", content_type="application/json")
        self.assertEqual(response.status_code, 400)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "queued")

    def test_staff_moves_an_image_through_its_states_and_each_change_invalidates(self):
        reader = self.as_user(self.owner)
        reader.get(self.url)
        self.assertTrue(reader.get(self.url).json()["fromCache"])
        staff_token = make_token(self.staff)
        owner_token = make_token(self.owner)

        response = self.api.bearer(staff_token).patch(self.url, {"status": "running"})
        self.assertEqual(response.status_code, 200, response.content)
        self.assertEqual(response.json()["status"], "running")
        read = self.api.bearer(owner_token).get(self.url).json()
        self.assertEqual((read["fromCache"], read["data"]["status"]), (False, "running"))
        self.image.refresh_from_db()
        self.assertIsNotNone(self.image.lease_expires_at)  # a generator that vanishes cannot keep it forever

        body = {"status": "completed", "resultUrl": "https://cdn.example.com/17.png", "bytes": 1234}
        response = self.api.bearer(staff_token).patch(self.url, {**body, "checksum": CHECKSUM.upper()})
        self.assertEqual(response.status_code, 200, response.content)
        read = self.api.bearer(owner_token).get(self.url).json()
        self.assertFalse(read["fromCache"])
        data = read["data"]
        self.assertEqual(
            (data["status"], data["resultUrl"], data["bytes"], data["checksum"]),
            ("completed", body["resultUrl"], 1234, CHECKSUM),
        )
        self.assertIsNotNone(data["completedAt"])

    def test_an_impossible_transition_is_409_and_changes_nothing(self):
        client = self.as_user(self.staff)
        self.assertEqual(client.patch(self.url, {"status": "failed", "failureReason": "bad prompt"}).status_code, 200)
        for status in ("running", "completed", "failed"):
            response = client.patch(self.url, {"status": status})
            self.assertEqual(response.status_code, 409, status)
            self.assertIn("status", response.json())
        self.image.refresh_from_db()
        self.assertEqual((self.image.status, self.image.failure_reason), ("failed", "bad prompt"))


class ResultTests(ImageAPITestCase):
    def setUp(self) -> None:
        super().setUp()
        private_media_root(self)
        self.image = make_image(owner=self.owner, width=200, height=120, style="rays")
        self.url = f"/api/images/{self.image.pk}/result"

    def render(self) -> dict:
        with self.captureOnCommitCallbacks(execute=True):
            self.assertEqual(Generator().run(once=True), 1)
        return self.as_user(self.owner).get(f"/api/images/{self.image.pk}").json()["data"]

    def test_not_rendered_yet_is_404(self):
        self.assertEqual(self.as_user(self.owner).get(self.url).status_code, 404)

    def test_owner_and_staff_download_the_png_that_matches_the_metadata(self):
        data = self.render()
        self.assertEqual(data["resultUrl"], self.url)
        for user in (self.owner, self.staff):
            response = self.as_user(user).get(data["resultUrl"], HTTP_ACCEPT="image/png")
            self.assertEqual(response.status_code, 200)
            self.assertEqual(response["Content-Type"], "image/png")
            png = b"".join(response.streaming_content)
            self.assertEqual(len(png), data["bytes"])
            self.assertEqual(hashlib.sha256(png).hexdigest(), data["checksum"])
            self.assertEqual(PILImage.open(io.BytesIO(png)).size, (200, 120))

    def test_others_get_404_and_anonymous_401(self):
        self.render()
        response = self.as_user(self.other).get(self.url, HTTP_ACCEPT="image/png")
        self.assertEqual(response.status_code, 404)
        self.assertEqual(response["Content-Type"], "application/json")
        self.assertEqual(self.api.bearer(None).get(self.url).status_code, 401)
        self.assertEqual(self.as_user(self.owner).get("/api/images/999999/result").status_code, 404)


class AccountTests(ImageAPITestCase):
    """POST /api/images with accountId: the account must be one the caller may see."""

    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(self.owner)
        self.others_account = make_account(self.other)

    def create(self, user, **extra):
        return self.as_user(user).post("/api/images", {"prompt": "p", "width": 64, "height": 64, **extra})

    def test_an_own_account_is_accepted_and_answered(self):
        response = self.create(self.owner, accountId=self.account.pk)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["accountId"], self.account.pk)
        self.assertEqual(Image.objects.get(pk=response.json()["id"]).account_id, self.account.pk)
        read = self.as_user(self.owner).get(f"/api/images/{response.json()['id']}").json()
        self.assertEqual(read["data"]["accountId"], self.account.pk)

    def test_without_an_account_the_answer_says_null(self):
        for extra in ({}, {"accountId": None}):
            response = self.create(self.owner, **extra)
            self.assertEqual(response.status_code, 201, response.content)
            self.assertIsNone(response.json()["accountId"])

    def test_staff_may_bill_anyones_account(self):
        response = self.create(self.staff, accountId=self.account.pk)
        self.assertEqual(response.status_code, 201, response.content)
        self.assertEqual(response.json()["accountId"], self.account.pk)

    def test_someone_elses_or_an_unknown_account_is_404(self):
        for account_id in (self.others_account.pk, 987654321):
            response = self.create(self.owner, accountId=account_id)
            self.assertEqual(response.status_code, 404, account_id)
            self.assertEqual(response["Content-Type"], "application/json")
        self.assertFalse(Image.objects.exists())

    def test_a_bad_account_id_is_400_naming_it(self):
        for bad in ("1", str(self.account.pk), 1.5, True, [1], {"id": 1}, 0, -1, 2**63):
            response = self.create(self.owner, accountId=bad)
            self.assertEqual(response.status_code, 400, bad)
            self.assertIn("accountId", response.json(), bad)
        self.assertFalse(Image.objects.exists())


class BillingTests(ImageAPITestCase):
    """A completed image with an account records one image.generate unit there, and the account's reads are fresh."""

    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(self.owner)
        self.image = make_image(owner=self.owner, account=self.account)
        self.url = f"/api/images/{self.image.pk}"
        self.staff_client = CommitAPIClient(self).bearer(make_token(self.staff))
        self.reader = CommitAPIClient(self).bearer(make_token(self.owner))

    def complete(self):
        return self.staff_client.patch(self.url, {"status": "completed", "resultUrl": "/r.png", "bytes": 3})

    def records(self):
        return list(UsageRecord.objects.filter(account=self.account))

    def test_completion_records_one_unit_and_the_cached_reads_are_fresh_at_once(self):
        summary_url, usage_url = f"/api/billing/summary/{self.account.pk}", f"/api/billing/usage/{self.account.pk}"
        for url in (summary_url, usage_url):  # warm both entries
            self.reader.get(url)
            self.assertTrue(self.reader.get(url).json()["fromCache"], url)
        self.assertEqual(self.staff_client.patch(self.url, {"status": "running"}).status_code, 200)
        self.assertEqual(self.records(), [])  # running is not billed

        response = self.complete()
        self.assertEqual(response.status_code, 200, response.content)
        [record] = self.records()
        self.assertEqual((record.metric_id, record.units, record.amount), ("image.generate", 1, Decimal("0.0400")))
        summary = self.reader.get(summary_url).json()
        self.assertFalse(summary["fromCache"])
        self.assertEqual((summary["data"]["totalUsageUnits"], summary["data"]["unbilledAmount"]), (1, "0.04"))
        usage = self.reader.get(usage_url).json()
        self.assertFalse(usage["fromCache"])
        self.assertEqual((usage["data"]["totalUnits"], usage["data"]["byMetric"]), (1, {"image.generate": 1}))

    def test_a_repeated_completion_records_nothing_more(self):
        self.assertEqual(self.complete().status_code, 200)
        self.assertEqual(self.complete().status_code, 409)
        # Set back by hand (the admin, a bulk update) and completed again: the database refuses a second record.
        Image.objects.filter(pk=self.image.pk).update(status=Image.Status.RUNNING)
        self.assertEqual(self.complete().status_code, 200)
        self.assertEqual(len(self.records()), 1)
        summary = self.reader.get(f"/api/billing/summary/{self.account.pk}").json()["data"]
        self.assertEqual((summary["totalUsageUnits"], summary["unbilledAmount"]), (1, "0.04"))

    def test_failed_images_and_images_without_an_account_record_nothing(self):
        self.assertEqual(self.staff_client.patch(self.url, {"status": "failed"}).status_code, 200)
        unbilled = make_image(owner=self.owner)
        response = self.staff_client.patch(f"/api/images/{unbilled.pk}", {"status": "completed"})
        self.assertEqual(response.status_code, 200)
        self.assertFalse(UsageRecord.objects.exists())


@override_settings(IMAGE_QUEUE_LIMIT=10)  # the default
class QueueLimitTests(ImageAPITestCase):
    def create(self, user):
        return self.as_user(user).post("/api/images", {"prompt": "p", "width": 64, "height": 64})

    def test_the_eleventh_unfinished_image_is_429_and_a_finished_one_frees_a_slot(self):
        ids = []
        for _ in range(10):
            response = self.create(self.owner)
            self.assertEqual(response.status_code, 201, response.content)
            ids.append(response.json()["id"])
        Image.objects.filter(pk=ids[0]).update(status=Image.Status.RUNNING)  # running counts too

        refused = self.create(self.owner)
        self.assertEqual(refused.status_code, 429, refused.content)
        self.assertEqual(refused["Content-Type"], "application/json")
        self.assertGreaterEqual(int(refused["Retry-After"]), 1)
        self.assertIn("10 images", refused.json()["detail"])
        self.assertEqual(Image.objects.filter(owner=self.owner).count(), 10)
        self.assertEqual(self.create(self.other).status_code, 201)  # a per-user limit

        staff = CommitAPIClient(self).bearer(make_token(self.staff))
        self.assertEqual(staff.patch(f"/api/images/{ids[0]}", {"status": "completed"}).status_code, 200)
        self.assertEqual(self.create(self.owner).status_code, 201)
        self.assertEqual(self.create(self.owner).status_code, 429)
        self.assertEqual(staff.patch(f"/api/images/{ids[1]}", {"status": "failed"}).status_code, 200)
        self.assertEqual(self.create(self.owner).status_code, 201)
        self.assertEqual(self.create(self.owner).status_code, 429)

    def test_the_limit_is_a_setting(self):
        with override_settings(IMAGE_QUEUE_LIMIT=2):
            self.assertEqual([self.create(self.owner).status_code for _ in range(3)], [201, 201, 429])


class AdminCompletionTests(ImageAPITestCase):
    """An image completed in the Django admin goes through the same service: billed once, like any other."""

    def setUp(self) -> None:
        super().setUp()
        self.account = make_account(self.owner)
        self.image = make_image(owner=self.owner, account=self.account)
        self.client.force_login(self.staff)
        self.staff.is_superuser = True
        self.staff.save()

    def post_status(self, status: str):
        image = self.image
        created = image.created_at
        with self.captureOnCommitCallbacks(execute=True):
            return self.client.post(
                f"/admin/image_app/image/{image.pk}/change/",
                {
                    "owner": image.owner_id,
                    "account": image.account_id,
                    "prompt": image.prompt,
                    "width": image.width,
                    "height": image.height,
                    "style": image.style,
                    "status": status,
                    "result_url": "",
                    "failure_reason": "",
                    "created_at_0": f"{created:%Y-%m-%d}",
                    "created_at_1": f"{created:%H:%M:%S}",
                    "completed_at_0": "",
                    "completed_at_1": "",
                },
            )

    def test_completing_in_the_admin_bills_one_unit(self):
        self.assertEqual(self.post_status("completed").status_code, 302)
        self.image.refresh_from_db()
        self.assertEqual(self.image.status, "completed")
        self.assertIsNotNone(self.image.completed_at)
        [record] = UsageRecord.objects.filter(account=self.account)
        self.assertEqual((record.metric_id, record.units), ("image.generate", 1))

    def test_a_transition_the_service_refuses_is_a_form_error_not_a_500(self):
        self.post_status("completed")
        response = self.post_status("queued")
        self.assertEqual(response.status_code, 200)
        self.assertContains(response, "Cannot change status from completed to queued.")
        self.assertEqual(UsageRecord.objects.filter(account=self.account).count(), 1)
