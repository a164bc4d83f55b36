"""The breaker's clock is injectable: a test moves it past the cooldown instead of sleeping through it."""

from __future__ import annotations

from django.test import SimpleTestCase

from techbirdsfly.cache.breaker import CircuitBreaker
from techbirdsfly.testing import ManualClock


class InjectedClockTests(SimpleTestCase):
    def test_the_cooldown_passes_when_the_clock_says_so_and_lets_one_probe_through(self) -> None:
        clock = ManualClock()
        breaker = CircuitBreaker("redis://test", lambda: 2.0, clock)
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            breaker.failure(ConnectionError("down"))
        self.assertFalse(breaker.allow())
        clock.advance(1.99)
        self.assertFalse(breaker.allow(), "within the cooldown")
        clock.advance(0.02)
        self.assertTrue(breaker.allow(), "the cooldown passed: this caller probes")
        self.assertFalse(breaker.allow(), "one probe at a time")
        breaker.inconclusive()  # the probe told nothing: another cooldown
        self.assertFalse(breaker.allow())
        clock.advance(2.01)
        self.assertTrue(breaker.allow())
        with self.assertLogs("techbirdsfly.cache", "WARNING"):
            breaker.success()
        self.assertTrue(breaker.allow())

    def test_production_breakers_read_the_monotonic_clock(self) -> None:
        import time

        self.assertIs(CircuitBreaker("redis://test", lambda: 2.0).clock, time.monotonic)
