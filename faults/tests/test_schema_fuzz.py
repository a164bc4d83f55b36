"""Property-based fuzzing of every operation in the OpenAPI schema the server publishes (schemathesis).

For every operation of GET /api/schema/, as an anonymous caller, as a user and as staff, schemathesis
generates valid requests and requests that break the schema (wrong types, missing fields, values
out of range, malformed path ids) and sends them to gunicorn. Every answer must:

- not be a server error (5xx);
- have a status code the schema documents for the operation, a documented content type, and a body
  that validates against the documented schema.

Operations with ids in the path are also fuzzed with the caller's real ids, so that the 200 answers
are checked too, not only the 404s of random ids. Generation is derandomized (the same cases on
every run, so CI is stable) and bounded by FUZZ_EXAMPLES per operation, caller and mode.
"""

from __future__ import annotations

import os

import schemathesis
from django.test import tag
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from auth_app.models import User
from auth_app.services import token_pair_issue
from faults.load import request
from faults.tests.support import make_actor, make_actors
from techbirdsfly.testing import GunicornServer, LiveTestCase, server_env

FUZZ_EXAMPLES = int(os.environ.get("FAULTS_FUZZ_EXAMPLES", "8"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
MODES = (schemathesis.GenerationMode.POSITIVE, schemathesis.GenerationMode.NEGATIVE)


@tag("live")
class SchemaFuzzTests(LiveTestCase):
    def setUp(self) -> None:
        super().setUp()  # LiveTestCase: the private Redis running and empty, breakers closed
        self.server = GunicornServer(env=server_env(), workers=2).start()
        self.addCleanup(self.server.stop)
        self.owner = make_actors(1, tag="fuzz")[0]
        self.staff = make_actor(staff=True, tag="fuzzstaff")

    def schema(self) -> schemathesis.BaseSchema:
        reply = request(self.server.url, "GET", "/api/schema/?format=json")
        self.assertEqual(reply.status, 200)
        return schemathesis.openapi.from_dict(reply.body)

    def token(self, role: str, user_id: int) -> str | None:
        # A new token for each operation: fuzzing POST /api/auth/logout spends the one it is given.
        if role == "anonymous":
            return None
        return token_pair_issue(user=User.objects.get(pk=user_id)).access_token

    def own_ids(self, role: str) -> dict[str, int]:
        actor = self.staff if role == "staff" else self.owner
        return {"account_id": actor.account_id, "image_id": actor.image_id, "user_id": actor.user_id}

    def fuzz(self, operation, role: str, *, known_ids: bool) -> int:
        user_id = self.staff.user_id if role == "staff" else self.owner.user_id
        token = self.token(role, user_id)
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        path_names = {p.name for p in operation.path_parameters}
        fixed = {name: value for name, value in self.own_ids(role).items() if name in path_names} if known_ids else {}
        sent = 0
        modes = MODES[:1] if known_ids else MODES
        for mode in modes:
            strategy = operation.as_strategy(generation_mode=mode, headers=headers, path_parameters=fixed or None)

            @settings(
                max_examples=FUZZ_EXAMPLES,
                deadline=None,
                derandomize=True,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=strategy)
            def run(case) -> None:
                nonlocal sent
                response = case.call(base_url=self.server.url, timeout=15)
                sent += 1
                case.validate_response(response, checks=CHECKS)

            try:
                run()
            except Unsatisfiable:
                # Nothing to break in this operation (no parameters, no body, the token fixed).
                if mode is not schemathesis.GenerationMode.NEGATIVE:
                    raise
        return sent

    def test_every_operation_as_every_caller(self):
        schema = self.schema()
        operations = [result.ok() for result in schema.get_all_operations()]
        self.assertGreater(len(operations), 20)
        sent = 0
        failures = []
        for operation in operations:
            for role in ("anonymous", "user", "staff"):
                for known_ids in (False, True) if operation.path_parameters else (False,):
                    try:
                        sent += self.fuzz(operation, role, known_ids=known_ids)
                    except (Exception, BaseExceptionGroup) as exc:  # collected: every operation is tried
                        failures.append(f"{operation.method.upper()} {operation.path} as {role}: {exc}"[:3000])
        print(f"\nschema-fuzz: operations={len(operations)} requests={sent} failures={len(failures)}")
        self.assertEqual(failures, [], "\n\n".join(failures))
