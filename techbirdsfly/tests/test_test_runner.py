"""The test runner shows a failing test's logs beside its traceback and hides a passing test's."""

from __future__ import annotations

import io
import logging
import unittest

from django.test import SimpleTestCase

from techbirdsfly.testing import RedisTestRunner


def inner_suite() -> unittest.TestSuite:
    """Built here, not at module level, so that discovery does not run it as one of ours."""

    class Inner(unittest.TestCase):
        def test_passes(self):
            logging.getLogger("techbirdsfly").warning("a passing test's warning")

        def test_fails(self):
            logging.getLogger("techbirdsfly.cache").error("a failing test's error")
            self.fail("on purpose")

    return unittest.defaultTestLoader.loadTestsFromTestCase(Inner)


class CapturedLogsTests(SimpleTestCase):
    def run_inner(self) -> str:
        """Run the inner suite with the runner the project's ``manage.py test`` builds."""
        runner = RedisTestRunner()
        stream = io.StringIO()
        result = runner.test_runner(**{**runner.get_test_runner_kwargs(), "stream": stream}).run(inner_suite())
        self.assertEqual((result.testsRun, len(result.failures)), (2, 1))
        return stream.getvalue()

    def test_a_failing_test_shows_its_own_logs_and_a_passing_one_none(self):
        output = self.run_inner()
        self.assertIn("a failing test's error", output)
        self.assertNotIn("a passing test's warning", output)

    def test_the_command_line_buffers_by_default(self):
        from django.core.management.commands.test import Command

        parser = Command().create_parser("manage.py", "test")
        self.assertTrue(parser.parse_args([]).buffer)
        self.assertFalse(parser.parse_args(["--show-output"]).buffer)
