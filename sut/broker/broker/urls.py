"""Root URLs: the JSON API under /api/, the upstream supplier under /supplier/."""

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import include, path


def _json_error(status: int, code: str, message: str) -> JsonResponse:
    return JsonResponse({"error": {"code": code, "message": message}}, status=status)


def handler404(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """JSON 404 everywhere: this server has no HTML pages."""
    return _json_error(404, "not_found", f"nothing at {request.path}")


def handler500(request: HttpRequest) -> HttpResponse:
    """JSON 500 in the API's error shape (details go to the stderr log)."""
    return _json_error(500, "internal_error", "internal server error")


urlpatterns = [
    path("api/", include("trading.urls")),
    path("supplier/", include("supplier.urls")),
]
