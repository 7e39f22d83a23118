"""Settings for the broker sample application.

Everything deploy-specific comes from ``BROKER_*`` environment variables so a
deploy tool can point the same code at any database host, socket or upstream
without editing files. There is deliberately no SQLite fallback: the point of
this application is to exercise a real MySQL/MariaDB server.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent


def _env(name: str, default: str = "") -> str:
    """Return the environment variable ``name``, treating empty as unset."""
    value = os.environ.get(name, "")
    return value if value != "" else default


def _env_bool(name: str, default: bool = False) -> bool:
    """Parse a boolean flag such as ``1``/``true``/``yes``/``on``."""
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return raw.strip().lower() in {"1", "true", "yes", "on"}


def _env_list(name: str, default: str) -> list[str]:
    """Split a comma-separated variable, dropping blanks."""
    return [item.strip() for item in _env(name, default).split(",") if item.strip()]


# A development default only; a deploy must set BROKER_SECRET_KEY.
SECRET_KEY = _env(
    "BROKER_SECRET_KEY", "django-insecure-broker-dev-key-change-me-0123456789abcdefghijkl"
)
DEBUG = _env_bool("BROKER_DEBUG", False)
ALLOWED_HOSTS = _env_list("BROKER_ALLOWED_HOSTS", "localhost,127.0.0.1")

INSTALLED_APPS = [
    "trading",
    "supplier",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.middleware.common.CommonMiddleware",
    # Kept so any future HTML/form view is protected; the JSON API views are
    # explicitly csrf_exempt (see trading/api.py for why).
    "django.middleware.csrf.CsrfViewMiddleware",
]

ROOT_URLCONF = "broker.urls"
WSGI_APPLICATION = "broker.wsgi.application"
TEMPLATES: list[dict[str, object]] = []

# BROKER_DB_HOST may be an address or an absolute path to a Unix socket; the
# MySQL backend treats a HOST starting with "/" as a socket path.
_db_host = _env("BROKER_DB_HOST", "127.0.0.1")
_db_options: dict[str, object] = {
    "charset": "utf8mb4",
    "init_command": "SET sql_mode='STRICT_TRANS_TABLES'",
}
if _db_host.startswith("/"):
    _db_options["unix_socket"] = _db_host

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.mysql",
        "NAME": _env("BROKER_DB_NAME", "broker"),
        "USER": _env("BROKER_DB_USER", "broker"),
        "PASSWORD": os.environ.get("BROKER_DB_PASSWORD", ""),
        "HOST": "" if _db_host.startswith("/") else _db_host,
        "PORT": "" if _db_host.startswith("/") else _env("BROKER_DB_PORT", "3306"),
        "OPTIONS": _db_options,
        "TEST": {
            "NAME": _env("BROKER_DB_TEST_NAME") or None,
            "CHARSET": "utf8mb4",
            "COLLATION": "utf8mb4_unicode_ci",
        },
    }
}

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = False
USE_TZ = True

# Paths under /api/ have no trailing slash; never redirect a POST to add one.
APPEND_SLASH = False

# Upstream price supplier. None means "this same server": the base URL is
# derived from the incoming request, so one testserver is self-contained.
BROKER_SUPPLIER_URL: str | None = _env("BROKER_SUPPLIER_URL") or None
BROKER_SUPPLIER_TIMEOUT = float(_env("BROKER_SUPPLIER_TIMEOUT", "5"))
# Currencies accounts may be opened in (the supplier must be able to price them).
BROKER_CURRENCIES = _env_list("BROKER_CURRENCIES", "USD,EUR,GBP,CHF,JPY")
# How long a priced quote may be confirmed, in seconds.
BROKER_QUOTE_TTL = int(_env("BROKER_QUOTE_TTL", "300"))
# Settlement lag in business days (T+2).
BROKER_SETTLEMENT_LAG = int(_env("BROKER_SETTLEMENT_LAG", "2"))

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"},
    },
    "handlers": {
        "stderr": {
            "class": "logging.StreamHandler",
            "stream": "ext://sys.stderr",
            "formatter": "plain",
        },
    },
    "root": {"handlers": ["stderr"], "level": _env("BROKER_LOG_LEVEL", "INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
    },
}
