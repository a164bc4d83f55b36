"""The compose files, the Dockerfile and gunicorn.conf.py, checked without a Docker engine.

The YAML is parsed and its structure asserted (services, health checks, dependency conditions,
networks, images, environment); the commands the containers would run (health checks, the image
build's collectstatic, the app's settings under each compose environment) are run here for real.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import yaml
from django.conf import settings
from django.core.management import get_commands
from django.test import SimpleTestCase, TransactionTestCase, tag

from techbirdsfly.testing import GunicornServer, server_env

from .infra_nodes import INFRA, PASSWORDS, RedisNode, SentinelNode
from .nginx_server import CONN_PER_ADDRESS

ROOT = Path(settings.BASE_DIR)
COMPOSE = INFRA / "docker-compose.yml"
COMPOSE_HA = INFRA / "docker-compose.ha.yml"
COMPOSE_REDIS = INFRA / "redis" / "docker-compose.yml"
VARIABLE = re.compile(r"\$\{(\w+)(?::([-?])([^}]*))?\}")


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def env_example() -> dict[str, str]:
    pairs = (line.split("=", 1) for line in (INFRA / ".env.example").read_text().splitlines() if "=" in line)
    return {k.strip(): v.strip() for k, v in pairs if not k.lstrip().startswith("#")}


def interpolate(value: str, env: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?error}, then $$ -> $."""

    def one(match: re.Match) -> str:
        name, kind, arg = match.groups()
        found = env.get(name, "")
        if found:
            return found
        if kind == "?":
            raise AssertionError(f"compose would refuse to start: {name} ({arg})")
        return arg if kind == "-" else ""

    return VARIABLE.sub(one, value).replace("$$", "$")


def mounts(service: dict) -> dict[str, str]:
    """A service's volumes as {path in the container: source}."""
    return {volume.split(":")[1]: volume.split(":")[0] for volume in service["volumes"]}


def shell(test: list[str]) -> str:
    assert test[0] == "CMD-SHELL", test
    return test[1]


class ComposeFileTests(SimpleTestCase):
    def test_redis_alone_is_the_hardened_74_alpine_container(self) -> None:
        redis = load(COMPOSE_REDIS)["services"]["redis"]
        self.assertEqual(redis["image"], "redis:7.4-alpine")
        self.assertEqual(redis["container_name"], "techbirdsfly-redis")
        self.assert_hardened_redis(redis, COMPOSE_REDIS.parent)
        self.assertTrue(all(port.startswith("127.0.0.1:") for port in redis["ports"]), "published beyond loopback")

    def assert_hardened_redis(self, service: dict, base: Path) -> None:
        self.assertEqual(service["user"], "redis")
        self.assertEqual(service["entrypoint"], ["/bin/sh", "/usr/local/etc/redis/entrypoint.sh"])
        targets = mounts(service)
        self.assertEqual((base / targets["/usr/local/etc/redis/redis.conf"]).resolve(), INFRA / "redis" / "redis.conf")
        entrypoint = (base / targets["/usr/local/etc/redis/entrypoint.sh"]).resolve()
        self.assertEqual(entrypoint, INFRA / "redis" / "entrypoint.sh")
        self.assertIn("/data", targets)  # a volume: AOF and RDB outlive the container
        self.assertIn("redis-cli", shell(service["healthcheck"]["test"]))
        self.assertIn("ping", shell(service["healthcheck"]["test"]))
        self.assertIn("REDISCLI_AUTH", shell(service["healthcheck"]["test"]))  # with auth, not on argv
        self.assertTrue(service["environment"]["REDIS_ADMIN_PASSWORD"].startswith("${REDIS_ADMIN_PASSWORD:?"))
        self.assertTrue(service["environment"]["REDIS_APP_PASSWORD"].startswith("${REDIS_APP_PASSWORD:?"))

    def test_the_stack_waits_for_healthy_postgres_and_redis_on_one_network(self) -> None:
        compose = load(COMPOSE)
        services = compose["services"]
        self.assertEqual(
            set(services), {"nginx", "static", "web", "generator", "migrate", "postgres", "pgbouncer", "redis"}
        )
        self.assertEqual(compose["networks"]["techbirdsfly_network"]["name"], "techbirdsfly_network")
        for name, service in services.items():
            self.assertEqual(service["networks"], ["techbirdsfly_network"], name)
        self.assertEqual(services["redis"]["image"], "redis:7.4-alpine")
        self.assert_hardened_redis(services["redis"], INFRA)
        self.assertNotIn("ports", services["redis"])  # only the app reaches it
        self.assertTrue(services["postgres"]["image"].startswith("postgres:"))
        self.assertIn("pg_isready", shell(services["postgres"]["healthcheck"]["test"]))

        for name in ("web", "generator"):
            depends = services[name]["depends_on"]
            self.assertEqual(depends["postgres"], {"condition": "service_healthy"}, name)
            self.assertEqual(depends["pgbouncer"], {"condition": "service_healthy"}, name)
            self.assertEqual(depends["redis"], {"condition": "service_healthy"}, name)
            self.assertEqual(depends["migrate"], {"condition": "service_completed_successfully"}, name)
            self.assertEqual(services[name]["build"], {"context": "..", "dockerfile": "Dockerfile"})
        self.assertEqual(services["web"]["image"], services["generator"]["image"])
        self.assertEqual(
            services["web"]["command"],
            ["gunicorn", "--config", "infra/gunicorn.conf.py", "techbirdsfly.wsgi:application"],
        )
        self.assertEqual(services["generator"]["command"], ["python", "manage.py", "run_generator"])
        self.assertIn("run_generator", get_commands())  # the command the generator runs exists
        self.assertEqual(services["migrate"]["command"], ["python", "manage.py", "migrate", "--noinput"])
        self.assertEqual(services["migrate"]["depends_on"], {"postgres": {"condition": "service_healthy"}})
        self.assertIn("/api/health", " ".join(services["web"]["healthcheck"]["test"]))
        environment = services["web"]["environment"]
        for variable in ("DATABASE_URL", "REDIS_URL", "DJANGO_SECRET_KEY"):
            self.assertIn(variable, environment)
        self.assertEqual(environment["REDIS_USERNAME"], "app")

    def test_only_nginx_is_published_and_it_fronts_web(self) -> None:
        for path in (COMPOSE, COMPOSE_HA):
            services = load(path)["services"]
            published = sorted(name for name, service in services.items() if "ports" in service)
            self.assertEqual(published, ["nginx"], path.name)
            web, nginx, static = services["web"], services["nginx"], services["static"]
            self.assertEqual(web["expose"], ["8000"], path.name)
            self.assertEqual(nginx["ports"], ["${WEB_PORT:-8000}:80"], path.name)
            self.assertRegex(nginx["image"], r"^nginx:\d+\.\d+-alpine$")  # pinned to a release line
            self.assertEqual(
                nginx["depends_on"],
                {"web": {"condition": "service_healthy"}, "static": {"condition": "service_completed_successfully"}},
            )
            self.assertIn("/api/health", shell(nginx["healthcheck"]["test"]))
            # The template the image renders is the one the tests run (test_infra_nginx.py).
            targets = mounts(nginx)
            templates = (INFRA / targets["/etc/nginx/templates"]).resolve()
            self.assertEqual(templates, INFRA / "nginx" / "templates")
            self.assertTrue((templates / "default.conf.template").is_file())
            template = (templates / "default.conf.template").read_text()
            # The stream front (connections per address), which the image renders into a stream {} block.
            self.assertTrue((templates / "front.conf.stream-template").is_file())
            template += (templates / "front.conf.stream-template").read_text()
            env = nginx["environment"]
            self.assertEqual(env["TBF_CONN_PER_ADDRESS"], str(CONN_PER_ADDRESS))  # what the tests run
            used = set(re.findall(r"\$\{(TBF_\w+)\}", template))
            self.assertEqual(used, {name for name in env if name.startswith("TBF_")}, path.name)
            self.assertEqual(env["NGINX_ENVSUBST_FILTER"], "TBF_")
            # nginx reaches gunicorn where gunicorn.conf.py binds it, with the app's own body limit.
            self.assertEqual(env["TBF_UPSTREAM"], "web:8000")
            self.assertEqual(env["TBF_MAX_BODY_BYTES"], web["environment"]["DJANGO_MAX_BODY_BYTES"])
            # nginx serves the volume the static service fills from the image's STATIC_ROOT.
            self.assertEqual(targets[env["TBF_STATIC_ROOT"]], "static")
            self.assertEqual(mounts(static)["/data/static"], "static")
            self.assertIn("/app/staticfiles/.", static["command"][-1])
            self.assertEqual(static["restart"], "no")
            self.assertIn("static", load(path)["volumes"])
            # The app believes the one proxy in front; nginx writes X-Forwarded-For/-Proto itself.
            self.assertEqual(web["environment"]["DJANGO_TRUSTED_PROXY_COUNT"], "1")
            self.assertEqual(web["environment"]["DJANGO_BEHIND_TLS_PROXY"], "1")
            self.assertIn("proxy_set_header X-Forwarded-For $remote_addr;", template)
            self.assertIn("proxy_set_header X-Forwarded-Proto $scheme;", template)

    def test_every_health_condition_names_a_service_with_a_health_check(self) -> None:
        for path in (COMPOSE, COMPOSE_HA):
            services = load(path)["services"]
            for name, service in services.items():
                for target, condition in (service.get("depends_on") or {}).items():
                    self.assertIn(target, services, f"{path.name}: {name} depends on unknown {target}")
                    if condition["condition"] == "service_healthy":
                        check = services[target].get("healthcheck", {})
                        self.assertFalse(check.get("disable"), f"{path.name}: {target} has no health check")
                        self.assertIn("test", check, f"{path.name}: {target} has no health check")

    def test_the_ha_file_has_a_master_a_replica_and_three_sentinels_with_quorum_two(self) -> None:
        services = load(COMPOSE_HA)["services"]
        sentinels = sorted(name for name in services if name.startswith("sentinel-"))
        self.assertEqual(sentinels, ["sentinel-1", "sentinel-2", "sentinel-3"])
        master, replica = services["redis-master"], services["redis-replica"]
        for node in (master, replica):
            self.assertEqual(node["image"], "redis:7.4-alpine")
            self.assert_hardened_redis(node, INFRA)
            self.assertIn("REDIS_REPLICA_PASSWORD", node["environment"])
            self.assertIn("REDIS_SENTINEL_AUTH_PASSWORD", node["environment"])
        self.assertEqual(replica["environment"]["REDIS_REPLICAOF"], "redis-master 6379")
        self.assertNotIn("REDIS_REPLICAOF", master["environment"])
        self.assertEqual(replica["depends_on"], {"redis-master": {"condition": "service_healthy"}})

        conf = (INFRA / "redis" / "sentinel.conf").read_text()
        monitor = re.search(r"^sentinel monitor (\S+) (\S+) (\d+) (\d+)$", conf, re.MULTILINE).groups()
        self.assertEqual(monitor[1:], ("redis-master", "6379", "2"))
        self.assertIn("port 26379", conf)
        for name in sentinels:
            sentinel = services[name]
            self.assertEqual(sentinel["entrypoint"], ["/bin/sh", "/usr/local/etc/redis/sentinel-entrypoint.sh"])
            targets = mounts(sentinel)
            self.assertEqual(
                (INFRA / targets["/usr/local/etc/redis/sentinel.conf"]).resolve(), INFRA / "redis" / "sentinel.conf"
            )
            self.assertIn("/data", targets)  # Sentinel's state (current master, epochs) survives a restart
            self.assertIn("-p 26379 ping", shell(sentinel["healthcheck"]["test"]))

        for name in ("web", "generator"):
            environment = services[name]["environment"]
            self.assertEqual(environment["REDIS_SENTINELS"], ",".join(f"{s}:26379" for s in sentinels))
            self.assertEqual(environment["REDIS_SENTINEL_MASTER"], monitor[0])
            for sentinel in sentinels:
                self.assertEqual(services[name]["depends_on"][sentinel], {"condition": "service_healthy"})
        self.assertEqual(load(COMPOSE_HA)["networks"]["techbirdsfly_network"]["name"], "techbirdsfly_network")

    def test_secrets_come_only_from_the_env_file(self) -> None:
        example = env_example()
        for path in (COMPOSE, COMPOSE_HA, COMPOSE_REDIS):
            text = path.read_text()
            for name in VARIABLE.findall(text):
                self.assertIn(name[0], example, f"{path.name} uses {name[0]}, missing from infra/.env.example")

            self.assert_secrets_interpolated(load(path), path.name)
        for name, value in example.items():
            if re.search(r"PASSWORD|SECRET", name):
                self.assertEqual(value, "", f"infra/.env.example ships a value for {name}")
        ignored = subprocess.run(["git", "check-ignore", "-q", "infra/.env"], cwd=ROOT, check=False)
        self.assertEqual(ignored.returncode, 0, "infra/.env is not ignored by git")

    def assert_secrets_interpolated(self, node: object, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if re.search(r"PASSWORD|SECRET", str(key)) and isinstance(value, str):
                    self.assertRegex(value, r"^\$\{\w+:\?", f"{where}.{key} is not from infra/.env")
                self.assert_secrets_interpolated(value, f"{where}.{key}")
        elif isinstance(node, list):
            for item in node:
                self.assert_secrets_interpolated(item, where)


class DockerfileTests(SimpleTestCase):
    def setUp(self) -> None:
        self.dockerfile = (ROOT / "Dockerfile").read_text()
        self.instructions = [
            line.strip()
            for line in re.sub(r"\\\n", " ", self.dockerfile).splitlines()
            if line.strip() and not line.startswith("#")
        ]

    def test_slim_python_312_without_dev_dependencies(self) -> None:
        images = [line.split()[1] for line in self.instructions if line.startswith("FROM ")]
        self.assertEqual(images, ["python:3.12-slim", "python:3.12-slim"])
        code = "\n".join(self.instructions)
        self.assertIn("pip install --requirement /tmp/requirements.txt", code)
        self.assertNotIn("requirements-dev.txt", code)
        lines = (ROOT / ".dockerignore").read_text().splitlines()
        ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
        for path in ("requirements-dev.txt", ".env", "**/.env", ".git", ".venv", "**/tests", "*.rdb"):
            self.assertIn(path, ignored)
        for needed in ("requirements.txt", "manage.py", "infra/gunicorn.conf.py", "techbirdsfly"):
            self.assertNotIn(needed, ignored)

    def test_runs_gunicorn_as_a_non_root_user_with_a_health_check(self) -> None:
        users = [line.split()[1] for line in self.instructions if line.startswith("USER ")]
        self.assertEqual(len(users), 1)
        self.assertNotIn(users[0], {"root", "0"})
        last_user = max(i for i, line in enumerate(self.instructions) if line.startswith("USER "))
        cmd = max(i for i, line in enumerate(self.instructions) if line.startswith("CMD "))
        self.assertLess(last_user, cmd)
        self.assertEqual(
            json.loads(self.instructions[cmd][4:]),
            ["gunicorn", "--config", "infra/gunicorn.conf.py", "techbirdsfly.wsgi:application"],
        )
        self.assertTrue(any(line.startswith("HEALTHCHECK ") and "/api/health" in line for line in self.instructions))
        self.assertTrue(any("collectstatic --noinput" in line for line in self.instructions if line.startswith("RUN ")))

    def test_the_build_step_collectstatic_runs_with_nothing_but_a_key(self) -> None:
        # As in the image build: no DATABASE_URL, no Redis, DEBUG off.
        command = next(line for line in self.instructions if "collectstatic" in line)
        key = re.search(r"DJANGO_SECRET_KEY=(\S+)", command).group(1)
        done = subprocess.run(
            [sys.executable, "manage.py", "collectstatic", "--noinput", "--dry-run", "--verbosity", "0"],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "DJANGO_SECRET_KEY": key},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])


class GunicornConfTests(SimpleTestCase):
    def read_conf(self, **env: str) -> dict:
        code = (
            "import json, os, runpy; ns = runpy.run_path('infra/gunicorn.conf.py');"
            "print(json.dumps({k: ns.get(k) for k in ('workers', 'threads', 'timeout', 'accesslog',"
            " 'access_log_format', 'control_socket_disable', 'worker_tmp_dir', 'preload_app')}"
            " | {'metrics': os.environ.get('PROMETHEUS_MULTIPROC_DIR')}))"
        )
        clean = {k: v for k, v in os.environ.items() if not k.startswith(("GUNICORN_", "PROMETHEUS_"))}
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, env={**clean, **env}, capture_output=True, text=True, check=True
        )
        return json.loads(done.stdout)

    def test_workers_come_from_the_cpus_the_process_may_use(self) -> None:
        conf = self.read_conf(GUNICORN_WORKERS="")  # compose passes an empty value when unset
        self.assertEqual(conf["workers"], 2 * len(os.sched_getaffinity(0)) + 1)
        self.assertEqual(self.read_conf(GUNICORN_WORKERS="3")["workers"], 3)
        self.assertEqual((conf["timeout"], conf["accesslog"]), (30, "-"))
        self.assertIn("%(M)sms", conf["access_log_format"])
        self.assertTrue(conf["control_socket_disable"])
        self.assertFalse(conf["preload_app"])

    def test_the_metrics_directory_is_kept_when_given_and_made_when_not(self) -> None:
        self.assertEqual(self.read_conf(PROMETHEUS_MULTIPROC_DIR="/tmp/given")["metrics"], "/tmp/given")
        made = self.read_conf()["metrics"]
        self.assertTrue(made and Path(made).name.startswith("tbf-metrics-"))
        Path(made).rmdir()


@tag("infra")
class HealthCheckCommandTests(SimpleTestCase):
    """The compose health checks, run as the container would run them (host and port aside)."""

    def run_check(self, command: str, env: dict[str, str]) -> int:
        environment = {"PATH": os.environ["PATH"], **env}
        return subprocess.run(["sh", "-c", command], env=environment, timeout=20, capture_output=True).returncode

    def test_the_redis_and_sentinel_health_checks_pass_with_auth_and_fail_without(self) -> None:
        services = load(COMPOSE_HA)["services"]
        master = RedisNode().start()
        self.addCleanup(master.cleanup)
        sentinel = SentinelNode(master).start()
        self.addCleanup(sentinel.cleanup)
        redis_check = interpolate(shell(services["redis-master"]["healthcheck"]["test"]), {}).replace(
            "redis-cli", f"redis-cli -p {master.port}"
        )
        sentinel_check = interpolate(shell(services["sentinel-1"]["healthcheck"]["test"]), {}).replace(
            "-p 26379", f"-p {sentinel.port}"
        )
        self.assertEqual(self.run_check(redis_check, PASSWORDS), 0)
        self.assertNotEqual(self.run_check(redis_check, {**PASSWORDS, "REDIS_ADMIN_PASSWORD": "wrong"}), 0)
        self.assertEqual(self.run_check(sentinel_check, PASSWORDS), 0)
        self.assertNotEqual(self.run_check(sentinel_check, {**PASSWORDS, "REDIS_SENTINEL_PASSWORD": "wrong"}), 0)


@tag("live", "infra")
class AppUnderComposeEnvironmentTests(TransactionTestCase):
    serialized_rollback = True  # keeps the migrated price list for the tests that follow

    def compose_env(self, path: Path) -> dict[str, str]:
        values = {**{k: "x" * 16 for k in env_example() if re.search(r"PASSWORD|SECRET", k)}, **PASSWORDS}
        raw = load(path)["services"]["web"]["environment"]
        return {key: interpolate(str(value), values) for key, value in raw.items()}

    def settings_under(self, environment: dict[str, str]) -> dict:
        code = (
            "import json, django; from django.conf import settings; django.setup();"
            "print(json.dumps({'auth': settings.CACHES['auth'], 'db': settings.DATABASES['default']['HOST'],"
            " 'hosts': settings.ALLOWED_HOSTS, 'proxies': settings.TRUSTED_PROXY_COUNT,"
            " 'proto': settings.SECURE_PROXY_SSL_HEADER, 'body': settings.DATA_UPLOAD_MAX_MEMORY_SIZE}, default=str))"
        )
        done = subprocess.run(
            [sys.executable, "-c", code],
            cwd=ROOT,
            env={"PATH": os.environ["PATH"], "DJANGO_SETTINGS_MODULE": "techbirdsfly.settings", **environment},
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        self.assertEqual(done.returncode, 0, done.stderr[-2000:])
        return json.loads(done.stdout)

    def test_the_settings_read_each_compose_environment(self) -> None:
        single = self.settings_under(self.compose_env(COMPOSE))
        self.assertEqual(single["auth"]["LOCATION"], "redis://redis:6379/0")
        self.assertEqual(single["auth"]["OPTIONS"]["USERNAME"], "app")
        self.assertEqual(single["db"], "pgbouncer")  # transaction pooling in front of PostgreSQL
        self.assertIn("127.0.0.1", single["hosts"])
        self.assertEqual(single["proxies"], 1)  # nginx in front
        self.assertEqual(single["proto"], ["HTTP_X_FORWARDED_PROTO", "https"])
        self.assertEqual(single["body"], 1024 * 1024)
        ha = self.settings_under(self.compose_env(COMPOSE_HA))
        self.assertEqual(ha["auth"]["LOCATION"], ["redis://mymaster/0"])
        self.assertEqual(ha["auth"]["OPTIONS"]["CLIENT_CLASS"], "django_redis.client.SentinelClient")
        self.assertEqual(
            ha["auth"]["OPTIONS"]["SENTINELS"], [["sentinel-1", 26379], ["sentinel-2", 26379], ["sentinel-3", 26379]]
        )
        cluster = self.settings_under({**self.compose_env(COMPOSE), "REDIS_CLUSTER_NODES": "redis-1:6379,redis-2:6379"})
        self.assertEqual(cluster["auth"]["LOCATION"], "redis://redis-1:6379,redis://redis-2:6379")
        self.assertEqual(cluster["auth"]["OPTIONS"]["CLIENT_CLASS"], "techbirdsfly.cache.cluster.ClusterClient")

    def test_the_web_health_check_passes_against_the_running_app(self) -> None:
        check = load(COMPOSE)["services"]["web"]["healthcheck"]["test"]
        server = GunicornServer(env=server_env(), workers=1).start()
        self.addCleanup(server.stop)
        command = [sys.executable, *check[2:]]  # ["CMD", "python", "-c", ...]: our interpreter for "python"
        command[-1] = command[-1].replace("127.0.0.1:8000", f"127.0.0.1:{server.port}")
        self.assertEqual(subprocess.run(command, timeout=20, check=False).returncode, 0)
        server.stop()
        self.assertNotEqual(subprocess.run(command, timeout=20, check=False, capture_output=True).returncode, 0)


class PgBouncerComposeTests(SimpleTestCase):
    """PgBouncer fronts PostgreSQL in both stacks, with the ini the tests run (test_infra_pgbouncer.py)."""

    def test_the_app_goes_through_pgbouncer_and_migrations_do_not(self) -> None:
        for path in (COMPOSE, COMPOSE_HA):
            services = load(path)["services"]
            bouncer = services["pgbouncer"]
            self.assertEqual(bouncer["depends_on"], {"postgres": {"condition": "service_healthy"}}, path.name)
            self.assertIn("pg_isready", shell(bouncer["healthcheck"]["test"]))
            self.assertIn("6432", shell(bouncer["healthcheck"]["test"]))
            self.assertNotIn("ports", bouncer)  # only the app reaches it
            targets = mounts(bouncer)
            self.assertEqual(
                (INFRA / targets["/etc/pgbouncer/pgbouncer.ini"]).resolve(), INFRA / "pgbouncer" / "pgbouncer.ini"
            )
            entrypoint = (INFRA / targets["/etc/pgbouncer/entrypoint.sh"]).resolve()
            self.assertEqual(entrypoint, INFRA / "pgbouncer" / "entrypoint.sh")
            self.assertEqual(bouncer["entrypoint"], ["/bin/sh", "/etc/pgbouncer/entrypoint.sh"])
            self.assertTrue(bouncer["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?"))
            web = services["web"]["environment"]
            self.assertIn("@pgbouncer:6432/techbirdsfly", web["DATABASE_URL"], path.name)
            self.assertIn("@postgres:5432/techbirdsfly", web["DATABASE_DIRECT_URL"], path.name)
            self.assertIn("@postgres:5432/techbirdsfly", services["migrate"]["environment"]["DATABASE_URL"], path.name)
        ini = (INFRA / "pgbouncer" / "pgbouncer.ini").read_text()
        self.assertRegex(ini, r"(?m)^pool_mode = transaction$")
        self.assertRegex(ini, r"(?m)^listen_port = 6432$")
        self.assertRegex(ini, r"(?m)^techbirdsfly = host=postgres port=5432 dbname=techbirdsfly$")

    def test_the_entrypoint_writes_the_auth_file_from_the_environment(self) -> None:
        script = (INFRA / "pgbouncer" / "entrypoint.sh").read_text()
        with tempfile.TemporaryDirectory() as directory:
            fake = Path(directory) / "pgbouncer"  # stands in for the binary: prints what it was given
            fake.write_text('#!/bin/sh\necho "$@"\n')
            fake.chmod(0o755)
            runtime = Path(directory) / "run"
            script = script.replace("/tmp/pgbouncer", str(runtime))
            env = {"PATH": f"{directory}:{os.environ['PATH']}", "POSTGRES_PASSWORD": "s3cret"}
            done = subprocess.run(["/bin/sh", "-c", script], env=env, capture_output=True, text=True, timeout=20)
            self.assertEqual(done.returncode, 0, done.stderr)
            self.assertEqual(done.stdout.strip(), "/etc/pgbouncer/pgbouncer.ini")
            userlist = runtime / "userlist.txt"
            self.assertEqual(userlist.read_text(), '"techbirdsfly" "s3cret"\n')
            self.assertEqual(userlist.stat().st_mode & 0o777, 0o600)
            refused = subprocess.run(
                ["/bin/sh", "-c", script], env={"PATH": env["PATH"]}, capture_output=True, timeout=20
            )
            self.assertNotEqual(refused.returncode, 0)  # no password: no start
