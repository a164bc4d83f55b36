"""Nothing secret reaches Redis: no raw token and no password, in any key or value."""

from __future__ import annotations

from auth_app.tests.factories import PASSWORD, make_user
from techbirdsfly.testing import CacheTestCase


class NoSecretsInRedisTests(CacheTestCase):
    def test_a_login_refresh_logout_cycle_leaves_no_secret_in_redis(self):
        make_user(email="s@example.com")
        secrets = [PASSWORD]
        for _ in range(2):
            pair = self.api.post("/api/auth/login", {"email": "s@example.com", "password": PASSWORD}).json()
            secrets += [pair["accessToken"], pair["refreshToken"]]
            self.api.bearer(pair["accessToken"]).get("/api/auth/me")
            self.api.post("/api/auth/validate-token", {"token": pair["accessToken"]})
            new = self.api.bearer(None).post("/api/auth/refresh", {"refreshToken": pair["refreshToken"]}).json()
            secrets += [new["accessToken"], new["refreshToken"]]
            self.api.bearer(new["accessToken"]).get("/api/auth/me")
            self.api.post("/api/auth/logout")
        self.api.post("/api/auth/login", {"email": "s@example.com", "password": "wrong " + PASSWORD})
        secrets.append("wrong " + PASSWORD)

        dump = []
        for key in self.redis.scan_iter(count=1000):
            dump.append(key)
            if self.redis.type(key) == b"string":
                dump.append(self.redis.get(key))
        self.assertGreater(len(dump), 4)
        blob = b"\n".join(dump)
        for secret in secrets:
            self.assertNotIn(secret.encode(), blob)
