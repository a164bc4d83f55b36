"""The demo data's stages: every app registers its own, and seed_demo offers and checks their options."""

from __future__ import annotations

from django.core.management import CommandError, call_command
from django.test import SimpleTestCase

from techbirdsfly import seeding
from techbirdsfly.management.commands.seed_demo import Command


class SeedingRegistryTests(SimpleTestCase):
    def test_each_app_registers_its_stages_in_installed_apps_order(self):
        names = [stage.name for stage in seeding.registered()]
        self.assertEqual(names, ["users", "accounts", "usage", "images", "preferences"])

    def test_the_command_offers_every_registered_option(self):
        parser = Command().create_parser("manage.py", "seed_demo")
        offered = {action.dest for action in parser._actions}
        for stage in seeding.registered():
            for option in stage.options:
                with self.subTest(option=option.flag):
                    self.assertIn(option.dest, offered)

    def test_a_negative_count_is_refused_for_any_app_before_anything_runs(self):
        # A SimpleTestCase: the refusal must come before the first query.
        for flag in ("--users", "--images", "--preferences"):
            with self.subTest(flag=flag), self.assertRaisesMessage(CommandError, f"{flag} must not be negative"):
                call_command("seed_demo", f"{flag}=-1", verbosity=0)
