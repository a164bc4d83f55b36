"""The fast lane (make check) stays fast: a test class that starts a server process carries its tag.

``make check`` is the suite with ``--exclude-tag live --exclude-tag infra --exclude-tag browser``; a
class that starts gunicorn, nginx, Sentinel, a Cluster or Chromium without the tag would slow every
run of it down, or fail it on a machine that lacks the program.
"""

from __future__ import annotations

import importlib
import inspect
import unittest
from pathlib import Path

from django.conf import settings
from django.test import SimpleTestCase

# What a class's own source calls to start such a process, and the tag that leaves it out.
STARTS = {
    "GunicornServer(": "live",
    "NginxServer(": "infra",
    "SentinelNode(": "infra",
    "RedisNode(": "infra",
    "start_cluster(": "infra",
    "webdriver.Chrome(": "browser",
}


def test_classes() -> list[type[unittest.TestCase]]:
    root = Path(settings.BASE_DIR)
    found = []
    for path in sorted(root.glob("*/tests/test_*.py")):
        module = importlib.import_module(".".join(path.relative_to(root).with_suffix("").parts))
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, unittest.TestCase) and cls.__module__ == module.__name__:
                found.append(cls)
    return found


class FastLaneTagTests(SimpleTestCase):
    def test_every_class_that_starts_a_server_process_carries_its_tag(self) -> None:
        untagged = []
        for cls in test_classes():
            source = inspect.getsource(cls)
            for call, tag in STARTS.items():
                if call in source and tag not in getattr(cls, "tags", set()):
                    untagged.append(f"{cls.__module__}.{cls.__qualname__} calls {call} without @tag({tag!r})")
        self.assertEqual(untagged, [])

    def test_the_gunicorn_base_class_is_live(self) -> None:
        from techbirdsfly.testing import GunicornTestCase

        self.assertIn("live", GunicornTestCase.tags)
