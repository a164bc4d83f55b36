"""Redis nodes started the way production starts them, for the infra tests.

Each node runs infra/redis/entrypoint.sh (or sentinel-entrypoint.sh) with a private copy of
infra/redis/redis.conf (or sentinel.conf) whose port, bind address and directory are rewritten for
loopback. Nothing else in the files changes, so the tests exercise the shipped configuration.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import redis
from django.conf import settings

from techbirdsfly.testing import free_port

INFRA = Path(settings.BASE_DIR) / "infra"
REDIS_CONF = INFRA / "redis" / "redis.conf"
SENTINEL_CONF = INFRA / "redis" / "sentinel.conf"
MASTER_NAME = "mymaster"

# Test-only secrets, with characters that need quoting in redis.conf and escaping in a URL.
PASSWORDS = {
    "REDIS_ADMIN_PASSWORD": "admin pass/1",
    "REDIS_APP_PASSWORD": 'app"pass\\2@:',
    "REDIS_REPLICA_PASSWORD": "replica-pass-3",
    "REDIS_SENTINEL_AUTH_PASSWORD": "sentinel-user-pass-4",
    "REDIS_SENTINEL_PASSWORD": "sentinel pass 5",
}
APP_USER = "app"
APP_PASSWORD = PASSWORDS["REDIS_APP_PASSWORD"]


def rewrite(text: str, replacements: dict[str, str], extra: list[str] = ()) -> str:
    """Replace whole directives: each key is a directive's leading words, each value its new line."""
    for prefix, line in replacements.items():
        pattern = re.compile(rf"^{re.escape(prefix)}\s.*$", re.MULTILINE)
        if not pattern.search(text):
            raise AssertionError(f"{prefix!r} is not in the shipped config any more")
        text = pattern.sub(line.replace("\\", "\\\\"), text)
    return text + "\n" + "\n".join(extra) + "\n"


def _wait(check, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except (redis.RedisError, OSError) as exc:
            last = exc
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what} (last error: {last!r})")


wait_for = _wait


class _Process:
    port: int
    dir: Path
    process: subprocess.Popen[bytes] | None = None

    def _spawn(self, script: str, env: dict[str, str]) -> None:
        self.log = self.dir / "server.log"
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                ["sh", str(INFRA / "redis" / script)],
                env={"PATH": os.environ["PATH"], **env},
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    @property
    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: a crash, no chance to save anything."""
        if self.alive:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)

    def pause(self) -> None:
        """SIGSTOP: the process is there but answers nothing, like a node stuck or cut off."""
        os.killpg(self.process.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.killpg(self.process.pid, signal.SIGCONT)

    def cleanup(self) -> None:
        if self.alive:
            os.killpg(self.process.pid, signal.SIGCONT)
        self.kill()
        shutil.rmtree(self.dir, ignore_errors=True)

    def log_tail(self) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-3000:]
        return ""


class RedisNode(_Process):
    """redis-server through infra/redis/entrypoint.sh and infra/redis/redis.conf."""

    def __init__(
        self,
        *,
        port: int | None = None,
        replica_of: RedisNode | None = None,
        extra: list[str] = (),
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port or free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tbf-infra-redis-"))
        self.replica_of = replica_of
        self.extra = list(extra)
        self.env = env or {}

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> RedisNode:
        conf = self.dir / "redis.conf"
        conf.write_text(
            rewrite(
                REDIS_CONF.read_text(),
                {"port": f"port {self.port}", "bind": "bind 127.0.0.1", "dir": f"dir {self.dir}"},
                self.extra,
            )
        )
        env = {**PASSWORDS, "REDIS_CONF": str(conf), "REDIS_RUNTIME_DIR": str(self.dir), **self.env}
        if self.replica_of:
            env["REDIS_REPLICAOF"] = f"127.0.0.1 {self.replica_of.port}"
        self._spawn("entrypoint.sh", env)
        try:
            _wait(lambda: self.admin().ping(), 10, f"redis-server on {self.port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        return self

    def client(self, username: str | None = None, password: str | None = None, **kwargs: Any) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, username=username, password=password, socket_timeout=5, **kwargs
        )

    def admin(self) -> redis.Redis:
        return self.client("admin", PASSWORDS["REDIS_ADMIN_PASSWORD"])

    def app(self) -> redis.Redis:
        return self.client(APP_USER, APP_PASSWORD)

    def shutdown(self) -> None:
        """A clean stop (SHUTDOWN as admin): Redis writes its RDB snapshot and AOF first."""
        with contextlib.suppress(redis.ConnectionError):
            self.admin().shutdown()
        self.process.wait(timeout=15)

    def role(self) -> str:
        return self.admin().execute_command("ROLE")[0].decode()


class SentinelNode(_Process):
    """A sentinel through infra/redis/sentinel-entrypoint.sh and infra/redis/sentinel.conf."""

    def __init__(self, master: RedisNode, *, down_after_ms: int = 1000, failover_timeout_ms: int = 4000) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tbf-infra-sentinel-"))
        self.master = master
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> SentinelNode:
        conf = self.dir / "sentinel.template.conf"
        conf.write_text(
            rewrite(
                SENTINEL_CONF.read_text(),
                {
                    "port": f"port {self.port}",
                    "bind": "bind 127.0.0.1",
                    "dir": f"dir {self.dir}",
                    f"sentinel monitor {MASTER_NAME}": f"sentinel monitor {MASTER_NAME} 127.0.0.1 {self.master.port} 2",
                    f"sentinel down-after-milliseconds {MASTER_NAME}": (
                        f"sentinel down-after-milliseconds {MASTER_NAME} {self.down_after_ms}"
                    ),
                    f"sentinel failover-timeout {MASTER_NAME}": (
                        f"sentinel failover-timeout {MASTER_NAME} {self.failover_timeout_ms}"
                    ),
                },
            )
        )
        env = {**PASSWORDS, "SENTINEL_CONF": str(conf), "SENTINEL_STATE_DIR": str(self.dir)}
        self._spawn("sentinel-entrypoint.sh", env)
        try:
            _wait(lambda: self.client().ping(), 10, f"sentinel on {self.port}")
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.log_tail()}") from None
        return self

    def client(self) -> redis.Redis:
        return redis.Redis(
            host="127.0.0.1", port=self.port, password=PASSWORDS["REDIS_SENTINEL_PASSWORD"], socket_timeout=2
        )

    def master_state(self) -> dict[str, Any]:
        return self.client().sentinel_master(MASTER_NAME)

    def master_port(self) -> int:
        return int(self.client().sentinel_get_master_addr_by_name(MASTER_NAME)[1])


def start_sentinel_stack(test: Any) -> tuple[RedisNode, RedisNode, list[SentinelNode]]:
    """A master, its replica and three sentinels that see each other, all stopped by ``test``'s cleanups."""
    master = RedisNode().start()
    test.addCleanup(master.cleanup)
    replica = RedisNode(replica_of=master).start()
    test.addCleanup(replica.cleanup)
    wait_for(lambda: replica.admin().info("replication")["master_link_status"] == "up", 15, "replication link")
    sentinels = []
    for _ in range(3):
        sentinel = SentinelNode(master).start()
        test.addCleanup(sentinel.cleanup)
        sentinels.append(sentinel)
    for sentinel in sentinels:
        wait_for(
            lambda s=sentinel: s.master_state()["num-other-sentinels"] == 2 and s.master_state()["num-slaves"] == 1,
            20,
            f"sentinel {sentinel.port} to see its peers and the replica",
        )
    return master, replica, sentinels


def sentinel_server_env(sentinels: list[SentinelNode], **extra: str) -> dict[str, str]:
    """A server process's environment: Redis through these sentinels, as the app's ACL user."""
    from techbirdsfly.testing import server_env

    env = server_env(
        REDIS_SENTINELS=",".join(s.address for s in sentinels),
        REDIS_SENTINEL_MASTER=MASTER_NAME,
        REDIS_SENTINEL_PASSWORD=PASSWORDS["REDIS_SENTINEL_PASSWORD"],
        REDIS_USERNAME=APP_USER,
        REDIS_PASSWORD=APP_PASSWORD,
        **extra,
    )
    env["REDIS_URL"] = "redis://unused-with-sentinel:1/0"  # server_env's private test Redis must not be used
    return env
