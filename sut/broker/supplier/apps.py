"""App configuration for the supplier."""

from django.apps import AppConfig


class SupplierConfig(AppConfig):
    """The upstream price supplier (no models)."""

    name = "supplier"
