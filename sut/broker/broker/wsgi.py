"""WSGI entry point (``gunicorn broker.wsgi``) for deployments."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "broker.settings")

application = get_wsgi_application()
