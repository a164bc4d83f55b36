from django.apps import apps
from django.contrib import admin
from django.test import SimpleTestCase

OUR_APPS = ("techbirdsfly", "auth_app", "billing_app", "admin_app", "image_app", "user_app")


class AdminRegistryTests(SimpleTestCase):
    def test_every_model_is_registered_in_the_django_admin(self):
        models = [m for label in OUR_APPS for m in apps.get_app_config(label).get_models()]
        self.assertTrue(models)
        missing = [m._meta.label for m in models if not admin.site.is_registered(m)]
        self.assertEqual(missing, [])
