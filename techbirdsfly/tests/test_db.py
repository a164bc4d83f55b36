"""One commit per write: a write and its cache journal row commit together or not at all (techbirdsfly/db.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from contextlib import contextmanager
from typing import Any

from django.conf import settings
from django.db import connection
from rest_framework.exceptions import AuthenticationFailed

from auth_app import services as auth_services
from auth_app.models import AuthToken, User
from billing_app import services as billing_services
from billing_app.models import Account, UsageRecord
from billing_app.tests.factories import make_account, make_usage, make_user
from image_app import services as image_services
from image_app.models import Image
from image_app.tests.factories import make_image
from techbirdsfly.models import CacheJournal
from techbirdsfly.testing import LiveTestCase, server_env
from user_app import services as user_services
from user_app.models import UserPreferences


class OneCommitCrashTests(LiveTestCase):
    """A process killed while recording usage leaves the record and its journal row both, or neither."""

    def setUp(self) -> None:
        super().setUp()
        self.user = make_user()
        self.account = make_account(self.user)

    def crash(self, point: str) -> subprocess.CompletedProcess:
        env = {**os.environ, **server_env(CACHE_JOURNAL_POLL="0", DJANGO_ENV_FILE="")}
        return subprocess.run(
            [sys.executable, "-m", "techbirdsfly.tests.crash_write", point, str(self.user.pk), str(self.account.pk)],
            cwd=settings.BASE_DIR,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def found(self) -> tuple[int, int]:
        records = UsageRecord.objects.filter(account=self.account).count()
        rows = CacheJournal.objects.filter(app="billing", scope=f"billing:account:{self.account.pk}").count()
        return records, rows

    def test_killed_between_the_write_and_its_journal_row_leaves_neither(self):
        done = self.crash("before-journal")
        self.assertEqual(done.returncode, -9, done.stderr)  # it did reach the journal row's INSERT
        self.assertEqual(self.found(), (0, 0))

    def test_killed_after_the_journal_row_before_the_commit_leaves_neither(self):
        done = self.crash("after-journal")
        self.assertEqual(done.returncode, -9, done.stderr)
        self.assertEqual(self.found(), (0, 0))

    def test_killed_at_the_commit_leaves_neither(self):
        done = self.crash("before-commit")
        self.assertEqual(done.returncode, -9, done.stderr)  # there is a commit to die at: one transaction
        self.assertEqual(self.found(), (0, 0))

    def test_a_write_that_completes_leaves_both(self):
        done = self.crash("none")
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertEqual(self.found(), (1, 1))


class OneTransactionTests(LiveTestCase):
    """Every service that writes and invalidates sends its journal rows in the write's own transaction."""

    @contextmanager
    def statements(self):
        """Record each INSERT/UPDATE/DELETE with the transaction it ran in (None: autocommit, its own)."""
        seen: list[tuple[bool, Any]] = []
        commits = [0]
        real_commit = connection.commit

        def counting_commit() -> None:
            commits[0] += 1
            real_commit()

        def hook(execute, sql, params, many, context):
            verb = sql.lstrip().split(" ", 1)[0].upper()
            # The journal's write is one statement that starts with WITH (journal_sql._RECORD).
            journal = "INSERT INTO techbirdsfly_cachejournal" in " ".join(sql.split())
            if journal or verb in {"INSERT", "UPDATE", "DELETE"}:
                seen.append((journal, commits[0] if connection.in_atomic_block else object()))
            return execute(sql, params, many, context)

        connection.commit = counting_commit
        try:
            with connection.execute_wrapper(hook):
                yield seen
        finally:
            del connection.commit

    def assert_one_commit(self, write) -> None:
        with self.statements() as seen:
            write()
        journal_rows = [i for i, (journal, _) in enumerate(seen) if journal]
        self.assertTrue(journal_rows, "the write invalidated nothing")
        for i in journal_rows:
            before = [tx for journal, tx in seen[:i] if not journal]
            self.assertTrue(before, "a journal row with no write before it")
            self.assertEqual(seen[i][1], before[-1], f"journal row {i} commits apart from its write")
            self.assertIsInstance(seen[i][1], int)  # inside a transaction, not committed on its own

    def test_billing(self):
        user = make_user()
        account = make_account(user)
        self.assert_one_commit(
            lambda: billing_services.usage_record_create(viewer=user, account_id=account.pk, metric="api.call", units=2)
        )
        self.assert_one_commit(
            lambda: billing_services.account_create(owner=user, name="B", plan="pro", currency="USD")
        )
        self.assert_one_commit(
            lambda: billing_services.usage_record_once(account_id=account.pk, metric="api.call", units=1, source="x:1")
        )
        invoice = [None]
        self.assert_one_commit(lambda: invoice.__setitem__(0, billing_services.invoice_issue(account_id=account.pk)))
        self.assert_one_commit(lambda: billing_services.invoice_pay(account_id=account.pk, invoice_id=invoice[0].pk))
        # What the admin and scripts do: the querysets and save()/delete() with no transaction around them.
        self.assert_one_commit(lambda: Account.objects.filter(pk=account.pk).update(name="renamed"))
        self.assert_one_commit(lambda: make_usage(account))
        self.assert_one_commit(lambda: UsageRecord.objects.filter(account=account).delete())
        self.assert_one_commit(lambda: make_usage(account).delete())

    def test_image(self):
        user = make_user()
        self.assert_one_commit(lambda: image_services.image_create(owner=user, prompt="p", width=64, height=64))
        image = make_image(owner=user)
        self.assert_one_commit(lambda: image_services.image_update(image=image, status=Image.Status.FAILED))
        self.assert_one_commit(lambda: image_services.image_delete(image_id=image.pk, viewer=user))
        self.assert_one_commit(lambda: Image.objects.filter(owner=user).update(prompt="q"))

    def test_user(self):
        user = make_user()
        self.assert_one_commit(lambda: user_services.preferences_update(user_id=user.pk, theme="dark"))
        self.assert_one_commit(lambda: UserPreferences.objects.filter(user=user).update(theme="light"))

    def test_auth(self):
        user = make_user()
        pair = auth_services.token_pair_issue(user=user)
        token = AuthToken.objects.get(kind=AuthToken.Kind.ACCESS, user=user)
        self.assert_one_commit(lambda: auth_services.token_family_revoke(family=token.family))
        pair = auth_services.token_pair_issue(user=user)
        token = AuthToken.objects.get(kind=AuthToken.Kind.ACCESS, user=user, revoked_at__isnull=True)
        self.assert_one_commit(lambda: auth_services.token_logout(pair=token.pair))
        pair = auth_services.token_pair_issue(user=user)
        auth_services.token_refresh(refresh_token=pair.refresh_token)

        def reuse() -> None:  # a spent refresh token: its family is revoked, then the error raised
            with self.assertRaises(AuthenticationFailed):
                auth_services.token_refresh(refresh_token=pair.refresh_token)

        self.assert_one_commit(reuse)
        self.assert_one_commit(lambda: User.objects.filter(pk=user.pk).update(password="!"))
        self.assert_one_commit(lambda: User.objects.filter(pk=user.pk).update(name="N"))
        user.refresh_from_db()
        user.name = "M"
        self.assert_one_commit(user.save)
