"""Settings of the resets project: a Django app made to produce TCP resets on demand.

No models and no middleware (CSRF middleware would read a POST body, and a body left
unread is the point of two views). The database is SQLite in memory unless readiness's
settings overlay (``readiness_settings``) points it at MariaDB.
"""

import os

SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "resets-not-a-secret")
DEBUG = False
ALLOWED_HOSTS = ["localhost", "127.0.0.1"]
INSTALLED_APPS = ["resetsite"]
MIDDLEWARE: list[str] = []
ROOT_URLCONF = "resetsite.urls"
WSGI_APPLICATION = "resetsite.wsgi.application"
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": os.environ.get("RESETS_SQLITE", ":memory:"),
    }
}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
USE_TZ = True
# Big request bodies are the point of /kill and /noread (never read, so never limited).
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "loggers": {"resetsite": {"handlers": ["console"], "level": "INFO"}},
}
