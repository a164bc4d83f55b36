"""The journal index's storage: sorted arrays and a dict of what was set since."""

from __future__ import annotations

import random

from django.test import SimpleTestCase

from techbirdsfly.cache.scope_numbers import ScopeNumbers


class ScopeNumbersTests(SimpleTestCase):
    def test_it_answers_as_a_dict_would_through_merges(self):
        numbers, model = ScopeNumbers(), {}
        rng = random.Random(7)
        numbers.load((key, key * 3) for key in range(0, 20_000, 2))
        model.update({key: key * 3 for key in range(0, 20_000, 2)})
        for _ in range(30_000):  # enough sets to merge many times
            key, value = rng.randrange(40_000), rng.randrange(1 << 40)
            numbers.set(key, value)
            model[key] = value
        self.assertEqual(len(numbers), len(model))
        for key in rng.sample(range(40_000), 2_000):
            self.assertEqual(numbers.get(key), model.get(key), key)

    def test_a_load_keeps_the_larger_value_and_never_lowers_one_already_held(self):
        numbers = ScopeNumbers()
        numbers.load([(5, 10), (5, 30), (7, 1)])
        self.assertEqual((numbers.get(5), numbers.get(7)), (30, 1))
        numbers.load([(5, 20), (9, 2)])
        self.assertEqual((numbers.get(5), numbers.get(9)), (30, 2))

    def test_keep_drops_what_is_not_wanted(self):
        numbers = ScopeNumbers()
        numbers.load((key, key) for key in range(100))
        numbers.set(200, 200)
        numbers.keep(lambda value: value >= 50)
        self.assertEqual(len(numbers), 51)
        self.assertIsNone(numbers.get(10))
        self.assertEqual(numbers.get(200), 200)

    def test_sixteen_bytes_a_scope_once_merged(self):
        numbers = ScopeNumbers()
        numbers.load((key, key) for key in range(100_000))
        self.assertEqual(numbers.nbytes(), 16 * 100_000)
