"""The shipped nginx config (infra/nginx/) run by the real nginx binary on loopback, for tests.

The templates are rendered as the official image renders them (envsubst of the TBF_* variables
only) and included in a minimal main config like the image's own nginx.conf (the stream front in a
stream {} block, the http server in http {}); everything nginx writes (pid, logs, temporary bodies,
the http server's socket) goes to a private temporary directory.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path

from techbirdsfly.testing import free_port
from techbirdsfly.tests.listening import wait_listening

from .infra_nodes import INFRA

TEMPLATE = INFRA / "nginx" / "templates" / "default.conf.template"
STREAM_TEMPLATE = INFRA / "nginx" / "templates" / "front.conf.stream-template"
VARIABLE = re.compile(r"\$\{(TBF_\w+)\}")
NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if os.path.exists("/usr/sbin/nginx") else None)
CONN_PER_ADDRESS = 64  # TBF_CONN_PER_ADDRESS in the compose files (test_infra_compose.py checks it)
# Debian builds the stream module as a loadable module (package libnginx-mod-stream); the official
# image has it built in.
STREAM_MODULE = Path("/usr/lib/nginx/modules/ngx_stream_module.so")


def render(values: dict[str, str], template: Path = TEMPLATE) -> str:
    """A template with its ${TBF_*} filled in; a variable left without a value is an error."""
    return VARIABLE.sub(lambda match: values[match.group(1)], template.read_text())


class NginxServer:
    """nginx with the shipped server block in front of ``upstream`` (host:port), on a free loopback port."""

    def __init__(self, *, upstream: str, static_root: Path, max_body_bytes: int) -> None:
        if NGINX is None:
            raise RuntimeError("nginx is not installed (Debian: apt-get install nginx; .ci/run installs it)")
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="tbf-nginx-"))
        self.http_socket = self.dir / "http.sock"
        values = {
            "TBF_LISTEN": f"127.0.0.1:{self.port}",
            "TBF_HTTP_SOCKET": str(self.http_socket),
            "TBF_CONN_PER_ADDRESS": str(CONN_PER_ADDRESS),
            "TBF_UPSTREAM": upstream,
            "TBF_MAX_BODY_BYTES": str(max_body_bytes),
            "TBF_STATIC_ROOT": str(static_root),
        }
        (self.dir / "default.conf").write_text(render(values))
        (self.dir / "stream.conf").write_text(render(values, STREAM_TEMPLATE))
        load_stream = f"load_module {STREAM_MODULE};\n" if STREAM_MODULE.exists() else ""
        temp_paths = "\n".join(
            f"    {kind}_temp_path {self.dir / kind};" for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        # As root, nginx would run its workers as nobody, who cannot enter our 0700 temporary directory.
        user = "user root;\n" if os.geteuid() == 0 else ""
        (self.dir / "nginx.conf").write_text(
            f"{load_stream}{user}worker_processes 1;\n"
            "events { worker_connections 512; }\n"
            f"stream {{ include {self.dir / 'stream.conf'}; }}\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            "    sendfile on;\n"
            f"    access_log {self.dir / 'access.log'};\n"
            f"{temp_paths}\n"
            f"    include {self.dir / 'default.conf'};\n"
            "}\n"
        )
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def command(self, *extra: str) -> list[str]:
        directives = f"daemon off; pid {self.dir / 'nginx.pid'}; error_log {self.dir / 'error.log'} info;"
        return [NGINX, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf"), "-g", directives, *extra]

    def check(self) -> subprocess.CompletedProcess[str]:
        """``nginx -t`` on the rendered config."""
        return subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30, check=False)

    def start(self, timeout: float = 10.0) -> NginxServer:
        self.process = subprocess.Popen(
            self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT, start_new_session=True
        )
        wait_listening(self.process, self.port, timeout=timeout, name="nginx", log=self.error_log, stop=self.stop)
        return self

    def error_log(self) -> str:
        path = self.dir / "error.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        shutil.rmtree(self.dir, ignore_errors=True)
