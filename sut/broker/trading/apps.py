"""App configuration for trading."""

from django.apps import AppConfig


class TradingConfig(AppConfig):
    """Registers the trading models and API."""

    name = "trading"
    default_auto_field = "django.db.models.BigAutoField"
