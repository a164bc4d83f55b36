"""The price list of API.md. Later price changes are made in the admin, not here."""

from decimal import Decimal

from django.db import migrations

PRICES = {
    "api.call": Decimal("0.0010"),
    "image.generate": Decimal("0.0400"),
    "storage.gb_day": Decimal("0.0050"),
}


def seed_prices(apps, schema_editor):
    Price = apps.get_model("billing_app", "Price")
    for metric, unit_price in PRICES.items():
        # Leaves a price already changed by hand alone.
        Price.objects.get_or_create(metric=metric, defaults={"unit_price": unit_price})


def remove_prices(apps, schema_editor):
    Price = apps.get_model("billing_app", "Price")
    Price.objects.filter(metric__in=PRICES).delete()


class Migration(migrations.Migration):
    dependencies = [("billing_app", "0001_initial")]

    operations = [migrations.RunPython(seed_prices, remove_prices)]
