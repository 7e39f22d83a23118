"""URLs of the resets project (see resetsite/views.py)."""

from django.urls import path

from resetsite import views

urlpatterns = [
    path("health", views.health),
    path("ok", views.ok),
    path("slow", views.slow),
    path("kill", views.kill),
    path("noread", views.noread),
    path("linger0-once", views.linger0_once),
]
