"""The cache serializer's signature: Django's salted_hmac, and SECRET_KEY rotation with fallbacks."""

from __future__ import annotations

from django.conf import settings
from django.test import SimpleTestCase, override_settings
from django.utils.crypto import salted_hmac

from auth_app.tests.factories import make_token, make_user
from techbirdsfly.cache.serializers import SALT, CorruptValue, SafeJSONSerializer
from techbirdsfly.testing import CacheTestCase

OLD_KEY = "the-key-before-rotation-0123456789-abcdefghijklmnopqrstuvwxyz"
NEW_KEY = "the-key-after-rotation-0123456789-abcdefghijklmnopqrstuvwxyz!"


def serializer(secret: str, *fallbacks: str) -> SafeJSONSerializer:
    with override_settings(SECRET_KEY=secret, SECRET_KEY_FALLBACKS=list(fallbacks)):
        return SafeJSONSerializer({})


def django_tag(payload: bytes, secret: str) -> bytes:
    return salted_hmac(SALT, payload, secret=secret, algorithm="sha256").hexdigest()[:32].encode()


class SignatureTests(SimpleTestCase):
    # Tags are salted_hmac(SALT, payload, algorithm="sha256") under SECRET_KEY or one of its fallbacks.
    def test_a_value_signed_under_a_fallback_key_verifies_until_that_key_is_dropped(self):
        record, counter = serializer(OLD_KEY).dumps({"userId": 7}), serializer(OLD_KEY).dumps("3.history.x")
        rotated = serializer(NEW_KEY, "some-other-old-key", OLD_KEY)
        tag, payload = rotated.dumps({"userId": 7}).split(b".", 1)
        self.assertEqual(tag, django_tag(payload, NEW_KEY))  # new values: the current key, never a fallback
        self.assertEqual(record.split(b".", 1)[0], django_tag(payload, OLD_KEY))
        self.assertEqual(rotated.verify_and_parse(record), {"userId": 7})
        self.assertEqual(rotated.loads(record), {"userId": 7})
        self.assertEqual(rotated.loads(counter), "3.history.x")  # and remembered, decoded
        self.assertIn(counter, rotated._verified)
        with self.assertRaises(CorruptValue):  # a fallback accepts only what its key signed
            rotated.loads(counter[:32] + b'."4.history.x"')

        # Once the old key is no longer a fallback, what it signed is a miss, even the forms that a
        # serializer still accepting it remembered as verified.
        done = serializer(NEW_KEY)
        self.assertIsNot(done._verified, rotated._verified)
        for stored in (record, counter):
            with self.assertRaises(CorruptValue):
                done.loads(stored)
        with self.assertRaises(CorruptValue):
            serializer(NEW_KEY, "some-other-old-key").loads(counter)
        self.assertEqual(done.loads(done.dumps("3.history.x")), "3.history.x")


class RotationTests(CacheTestCase):
    def test_rotating_secret_key_with_the_old_one_as_fallback_keeps_warm_requests_warm(self):
        # As a deployment rotates DJANGO_SECRET_KEY with the old key in DJANGO_SECRET_KEY_FALLBACKS: the
        # processes restart (new serializers) and find Redis holding what the old key signed.
        with override_settings(SECRET_KEY=OLD_KEY, SECRET_KEY_FALLBACKS=[], CACHES=settings.CACHES):
            token = make_token(make_user(email="rotate@example.com"))
            self.assertEqual(self.api.bearer(token).get("/api/auth/me").status_code, 200)
            with self.assertNumQueries(0):
                self.assertIs(self.api.get("/api/auth/me").json()["fromCache"], True)
        with override_settings(SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=[OLD_KEY], CACHES=settings.CACHES):
            with self.assertNumQueries(0):  # the token's record and the profile: still hits
                response = self.api.get("/api/auth/me")
            self.assertEqual((response.status_code, response.json()["fromCache"]), (200, True))
            self.assertEqual(response.json()["data"]["email"], "rotate@example.com")
