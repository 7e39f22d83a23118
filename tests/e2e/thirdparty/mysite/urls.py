"""URL configuration for mysite."""

from django.urls import include, path
from notes import views

urlpatterns = [
    path("", views.index, name="index"),
    path("healthz", views.healthz, name="healthz"),
    path("api/v1/", include("notes.urls")),
]
