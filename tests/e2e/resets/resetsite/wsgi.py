"""WSGI entry point: ``gunicorn resetsite.wsgi:application`` (readiness uses its own)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "resetsite.settings")

application = get_wsgi_application()
