"""URLs of the JSON API, mounted at /api/ (no trailing slashes)."""

from django.urls import path, re_path

from . import views

urlpatterns = [
    path("health", views.health, name="health"),
    path("customers", views.customers, name="customers"),
    path("customers/<int:pk>", views.customer_detail, name="customer-detail"),
    path("accounts", views.accounts, name="accounts"),
    path("accounts/<int:pk>", views.account_detail, name="account-detail"),
    path("instruments", views.instruments, name="instruments"),
    path("instruments/<str:symbol>", views.instrument_detail, name="instrument-detail"),
    path("holidays", views.holidays, name="holidays"),
    path("quotes", views.quotes, name="quotes"),
    path("quotes/<int:pk>", views.quote_detail, name="quote-detail"),
    path("orders", views.orders, name="orders"),
    path("orders/<int:pk>", views.order_detail, name="order-detail"),
    re_path(
        r"^orders/(?P<pk>[0-9]+)/(?P<action>quote|confirm|settle|cancel)$",
        views.order_transition,
        name="order-transition",
    ),
    re_path(r"^(?P<rest>.*)$", views.api_not_found, name="api-not-found"),
]
