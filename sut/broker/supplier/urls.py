"""URLs of the supplier service, mounted at /supplier/."""

from django.urls import path

from . import views

urlpatterns = [
    path("prices/<str:symbol>", views.price, name="supplier-price"),
    path("fx", views.fx, name="supplier-fx"),
]
