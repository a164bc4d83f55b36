"""Requests of one user racing each other, on real threads against the real database.

Each test checks that its threads really met (a login that began before a change committed and
ended after it, a refresh in flight during a password change, a login blocked on the user's row
lock): a race whose threads never overlap proves nothing.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from django.contrib.auth.hashers import MD5PasswordHasher, PBKDF2PasswordHasher
from django.db import connection, connections, transaction
from django.test import override_settings
from rest_framework.exceptions import APIException

from auth_app import services
from auth_app.models import AuthToken, User
from auth_app.selectors import token_validate
from auth_app.tests.factories import PASSWORD, make_user
from auth_app.tokens import token_hash
from techbirdsfly.testing import LiveTestCase

NEW_PASSWORD = "another horse battery staple"
TRIALS = 4


class SlowCheckHasher(MD5PasswordHasher):
    """MD5 whose check takes a while, as Argon2 does, so that logins stay in flight long enough to meet."""

    def verify(self, password: str, encoded: str) -> bool:
        time.sleep(0.01)
        return super().verify(password, encoded)


class HeldPBKDF2Hasher(PBKDF2PasswordHasher):
    """PBKDF2 (cheap here) whose check, once ``hold`` is set, waits after verifying until ``release``."""

    iterations = 1_000
    hold = threading.Event()
    verified = threading.Event()
    release = threading.Event()

    def verify(self, password: str, encoded: str) -> bool:
        ok = super().verify(password, encoded)
        if self.hold.is_set():
            self.verified.set()
            self.release.wait(10)
        return ok


def in_thread(target: Callable[[], None]) -> threading.Thread:
    def run() -> None:
        try:
            target()
        finally:
            connections.close_all()  # this thread's own connection

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread


def alive(access_token: str) -> bool:
    return token_validate(raw_token=access_token).value is not None


def live_tokens(user: User) -> set[str]:
    """Hashes of the user's tokens that still work, as the database says."""
    return set(AuthToken.objects.filter(user=user, revoked_at__isnull=True).values_list("token_hash", flat=True))


@override_settings(PASSWORD_HASHERS=["auth_app.tests.test_races.SlowCheckHasher"])
class LoginBesidePasswordChangeTests(LiveTestCase):
    def test_no_login_with_the_old_password_keeps_a_token(self):
        straddling = sum(self.trial(trial) for trial in range(TRIALS))
        self.assertGreater(straddling, 0, "no login was in flight when a change committed: the race never happened")

    def trial(self, trial: int) -> int:
        """Four login loops with the old password beside a change; the logins the commit fell inside."""
        user = make_user(email=f"race{trial}@example.com")
        stop = threading.Event()
        tries: list[tuple[float, float, services.TokenPair | None]] = []

        def loop() -> None:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    pair = services.user_login(email=user.email, password=PASSWORD, address=None)
                except APIException:
                    pair = None  # the old password no longer works
                tries.append((began, time.monotonic(), pair))

        threads = [in_thread(loop) for _ in range(4)]
        while len(tries) < 4:  # logins are flowing
            time.sleep(0.005)
        fresh = services.password_change(
            user_id=user.pk, current_password=PASSWORD, new_password=NEW_PASSWORD, address=None
        )
        committed = time.monotonic()
        time.sleep(0.1)  # logins keep trying after the change
        stop.set()
        for thread in threads:
            thread.join(10)
        survivors = [pair for *_, pair in tries if pair and alive(pair.access_token)]
        self.assertEqual(survivors, [], f"trial {trial}: tokens of the old password outlived the change")
        self.assertTrue(alive(fresh.access_token))
        self.assertEqual(live_tokens(user), {token_hash(fresh.access_token), token_hash(fresh.refresh_token)})
        return sum(began < committed < ended for began, ended, _ in tries)


class RefreshBesidePasswordChangeTests(LiveTestCase):
    def test_refresh_loops_never_fail_a_password_change_and_none_survives_it(self):
        in_flight = sum(self.trial(trial) for trial in range(TRIALS))
        self.assertGreater(in_flight, 0, "no refresh was in flight when a change began: the race never happened")

    def trial(self, trial: int) -> int:
        """Three sessions refreshing in loops beside a change; how many refreshes were in flight as it began."""
        user = make_user(email=f"refresh{trial}@example.com")
        latest = {n: services.token_pair_issue(user=user) for n in range(3)}
        stop = threading.Event()
        refreshed = threading.Semaphore(0)
        active = [0]
        lock = threading.Lock()

        def loop(n: int) -> None:
            while not stop.is_set():
                with lock:
                    active[0] += 1
                try:
                    latest[n] = services.token_refresh(refresh_token=latest[n].refresh_token)
                except APIException:
                    return  # revoked by the change: this session is over
                finally:
                    with lock:
                        active[0] -= 1
                refreshed.release()

        threads = [in_thread(lambda n=n: loop(n)) for n in latest]
        for _ in range(6):
            refreshed.acquire(timeout=10)
        with lock:
            in_flight = active[0]
        # Any database error here (a deadlock) fails the test: the change must always go through.
        fresh = services.password_change(
            user_id=user.pk, current_password=PASSWORD, new_password=NEW_PASSWORD, address=None
        )
        stop.set()
        for thread in threads:
            thread.join(10)
        self.assertEqual([n for n, pair in latest.items() if alive(pair.access_token)], [], f"trial {trial}")
        for pair in latest.values():
            with self.assertRaises(APIException):
                services.token_refresh(refresh_token=pair.refresh_token)
        self.assertTrue(alive(fresh.access_token))
        return in_flight


@override_settings(
    PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher", "auth_app.tests.test_races.HeldPBKDF2Hasher"]
)
class RehashBesideResetTests(LiveTestCase):
    def test_a_login_being_upgraded_never_puts_the_old_password_back(self):
        user = User.objects.create(email="legacy@example.com")
        User.objects.filter(pk=user.pk).update(password=HeldPBKDF2Hasher().encode(PASSWORD, "saltsaltsalt"))
        outcome: list[object] = []

        def login() -> None:
            try:
                outcome.append(services.user_login(email=user.email, password=PASSWORD, address=None))
            except APIException as exc:
                outcome.append(exc)

        HeldPBKDF2Hasher.hold.set()
        self.addCleanup(HeldPBKDF2Hasher.hold.clear)
        self.addCleanup(HeldPBKDF2Hasher.release.set)
        thread = in_thread(login)
        self.assertTrue(HeldPBKDF2Hasher.verified.wait(10))  # the old password checked, not yet rehashed
        HeldPBKDF2Hasher.hold.clear()
        reset = User.objects.get(pk=user.pk)
        reset.set_password(NEW_PASSWORD)
        reset.save()  # a reset commits while the login is between its check and its rehash
        HeldPBKDF2Hasher.release.set()
        thread.join(10)

        stored = User.objects.get(pk=user.pk)
        self.assertTrue(stored.check_password(NEW_PASSWORD))
        self.assertFalse(stored.check_password(PASSWORD))
        self.assertEqual(len(outcome), 1)
        self.assertIsInstance(outcome[0], APIException)  # no token for a password that is no longer the one
        self.assertEqual(live_tokens(user), set())


class TokenInsideChangeTests(LiveTestCase):
    """A login while a transaction that changes the user is open: its token must carry the committed state."""

    def race(self, change: Callable[[User], None], user: User) -> str:
        changed, commit = threading.Event(), threading.Event()
        blocked_pid: list[int] = []
        tokens: list[str] = []

        def writer() -> None:
            with transaction.atomic():
                change(User.objects.get(pk=user.pk))
                changed.set()
                commit.wait(10)

        def login() -> None:
            connection.ensure_connection()
            blocked_pid.append(connection.connection.info.backend_pid)
            try:
                pair = services.user_login(email=user.email, password=PASSWORD, address=None)
            except APIException:
                return
            tokens.append(pair.access_token)
            token_validate(raw_token=pair.access_token)  # its record, computed (and cached) at once

        writing = in_thread(writer)
        self.assertTrue(changed.wait(10))
        logging_in = in_thread(login)
        # Until the login is done or waits on a lock held by the open transaction.
        deadline = time.monotonic() + 10
        while logging_in.is_alive() and time.monotonic() < deadline:
            if blocked_pid and self.waits_on_a_lock(blocked_pid[0]):
                break
            time.sleep(0.005)
        commit.set()
        writing.join(10)
        logging_in.join(10)
        return tokens[0] if tokens else ""

    @staticmethod
    def waits_on_a_lock(pid: int) -> bool:
        with connection.cursor() as cursor:
            cursor.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", [pid])
            row = cursor.fetchone()
        return bool(row and row[0] == "Lock")

    def test_a_demotion_reaches_a_token_issued_while_it_was_open(self):
        user = make_user(email="boss@example.com", staff=True)
        # QuerySet.update takes a weaker row lock than save() does, one a token's insert does not wait for.
        token = self.race(lambda row: User.objects.filter(pk=row.pk).update(is_staff=False), user)
        self.assertTrue(token)
        self.assertIs(token_validate(raw_token=token).value["isStaff"], False)

    def test_a_deactivation_reaches_a_token_issued_while_it_was_open(self):
        user = make_user(email="leaver@example.com")
        token = self.race(lambda row: User.objects.filter(pk=row.pk).update(is_active=False), user)
        self.assertTrue(not token or not alive(token))

    def test_a_demotion_by_save_reaches_a_token_issued_while_it_was_open(self):
        user = make_user(email="chief@example.com", staff=True)

        def demote(row: User) -> None:
            row.is_staff = False
            row.save()

        token = self.race(demote, user)
        self.assertIs(token_validate(raw_token=token).value["isStaff"], False)


class EveryWritePathTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()
        self.user = make_user(email="paths@example.com", staff=True)
        self.token = services.token_pair_issue(user=self.user).access_token
        self.assertTrue(alive(self.token))  # cached

    def test_a_password_through_the_base_manager_revokes(self):
        User._base_manager.filter(pk=self.user.pk).update(password="!")
        self.assertFalse(alive(self.token))
        self.assertEqual(live_tokens(self.user), set())

    def test_a_deactivation_through_the_base_manager_invalidates(self):
        User._base_manager.filter(pk=self.user.pk).update(is_active=False)
        self.assertFalse(alive(self.token))

    def test_a_demotion_through_bulk_update_invalidates(self):
        self.user.is_staff = False
        User._base_manager.bulk_update([self.user], ["is_staff"])
        self.assertIs(token_validate(raw_token=self.token).value["isStaff"], False)
