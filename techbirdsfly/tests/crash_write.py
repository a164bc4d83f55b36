"""A process that records usage and is SIGKILLed partway through (test_db.OneCommitCrashTests).

``python -m techbirdsfly.tests.crash_write POINT USER_ID ACCOUNT_ID``, with the environment of
``server_env``. POINT is where the process kills itself:

- ``before-journal``: just before the journal row's INSERT is sent, after the usage record's INSERT;
- ``after-journal``: just after the journal row's INSERT, before anything else (a commit included);
- ``before-commit``: as the transaction is about to commit;
- ``none``: not at all (the write completes).
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def main(point: str, user_id: int, account_id: int) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "techbirdsfly.settings")
    import django

    django.setup()
    from django.db import connection

    from auth_app.models import User
    from billing_app.services import usage_record_create

    viewer = User.objects.get(pk=user_id)

    def hook(execute, sql, params, many, context):
        journal = "INSERT INTO techbirdsfly_cachejournal" in " ".join(sql.split())  # the journal's write
        if journal and point == "before-journal":
            _die()
        result = execute(sql, params, many, context)
        if journal and point == "after-journal":
            _die()
        return result

    if point == "before-commit":
        commit = connection.commit

        def commit_then_die() -> None:
            _die()
            commit()

        connection.commit = commit_then_die  # the Atomic block that ends the transaction calls it
    with connection.execute_wrapper(hook):
        usage_record_create(viewer=viewer, account_id=account_id, metric="api.call", units=7)
    print("written", flush=True)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
