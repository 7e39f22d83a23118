"""Small helpers for a plain-Django JSON API: errors, parsing, pagination, idempotency.

Why no DRF: the application under test must stay small and dependency-light
(the server venv is built only from requirements.txt), and the REST layer is
the subject of the integration tests, so its behaviour is spelled out here.

Every error leaves the API in one stable shape::

    {"error": {"code": "validation_error", "message": "...", "fields": {...}}}

CSRF: the API takes token-less JSON from non-browser clients and uses no
cookies or sessions, so there is no ambient credential a forged cross-site
request could ride on; ``api_view`` therefore marks views ``csrf_exempt``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from .models import IdempotencyKey

log = logging.getLogger(__name__)

DEFAULT_PAGE_SIZE = 20
MAX_PAGE_SIZE = 100
IDEMPOTENCY_HEADER = "Idempotency-Key"


class ApiError(Exception):
    """An error that becomes a JSON error response with ``status``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        fields: Mapping[str, list[str]] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.fields = dict(fields or {})
        self.headers = dict(headers or {})

    def response(self) -> JsonResponse:
        """Render the stable error shape."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.fields:
            error["fields"] = self.fields
        resp = JsonResponse({"error": error}, status=self.status)
        for name, value in self.headers.items():
            resp[name] = value
        return resp


def not_found(what: str) -> ApiError:
    """A 404 in the stable shape."""
    return ApiError(404, "not_found", f"{what} not found")


class ValidationError(ApiError):
    """400 with per-field messages."""

    def __init__(self, fields: Mapping[str, list[str]], message: str = "invalid request") -> None:
        super().__init__(400, "validation_error", message, fields)


def json_response(data: Any, status: int = 200) -> JsonResponse:
    """A JSON response; ``safe=False`` lets lists through too."""
    return JsonResponse(data, status=status, safe=False)


def api_view(
    methods: Iterable[str],
) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """Decorate a view: CSRF-exempt, method check (JSON 405), ApiError -> JSON."""
    allowed = sorted({m.upper() for m in methods})

    def decorator(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @functools.wraps(view)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if request.method not in allowed:
                return ApiError(
                    405,
                    "method_not_allowed",
                    f"method {request.method} not allowed; use {', '.join(allowed)}",
                    headers={"Allow": ", ".join(allowed)},
                ).response()
            try:
                return view(request, *args, **kwargs)
            except ApiError as exc:
                return exc.response()

        return wrapper

    return decorator


def parse_json_object(request: HttpRequest) -> dict[str, Any]:
    """Parse the body as a JSON object or raise a 400 ``invalid_json``."""
    try:
        data = json.loads(request.body or b"null")
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ApiError(400, "invalid_json", f"request body is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "invalid_json", "request body must be a JSON object")
    return data


class Fields:
    """Collects per-field validation errors so one response lists all of them."""

    def __init__(self, data: Mapping[str, Any]) -> None:
        self.data = data
        self.errors: dict[str, list[str]] = {}

    def add(self, name: str, message: str) -> None:
        """Record an error against ``name``."""
        self.errors.setdefault(name, []).append(message)

    def string(self, name: str, *, max_length: int, required: bool = True) -> str:
        """A non-blank string of at most ``max_length`` characters."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.add(name, "this field is required")
            return ""
        if not isinstance(value, str) or not value.strip():
            self.add(name, "must be a non-empty string")
            return ""
        value = value.strip()
        if len(value) > max_length:
            self.add(name, f"must be at most {max_length} characters")
        return value

    def decimal(
        self,
        name: str,
        *,
        required: bool = True,
        positive: bool = False,
        minimum: Decimal | None = None,
    ) -> Decimal | None:
        """A decimal given as a JSON string or number (strings avoid float rounding)."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.add(name, "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            self.add(name, "must be a decimal number")
            return None
        try:
            number = Decimal(str(value))
        except InvalidOperation:
            self.add(name, "must be a decimal number")
            return None
        if not number.is_finite():
            self.add(name, "must be a finite number")
            return None
        if positive and number <= 0:
            self.add(name, "must be > 0")
        if minimum is not None and number < minimum:
            self.add(name, f"must be >= {minimum}")
        if number.as_tuple().exponent < -4:  # type: ignore[operator]
            self.add(name, "at most 4 decimal places")
        if abs(number) >= Decimal(10) ** 14:
            self.add(name, "too large")
        return number

    def integer(self, name: str, *, required: bool = True) -> int | None:
        """A JSON integer id."""
        value = self.data.get(name)
        if value is None:
            if required:
                self.add(name, "this field is required")
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            self.add(name, "must be a positive integer id")
            return None
        return value

    def choice(self, name: str, choices: Iterable[str]) -> str:
        """One of ``choices``."""
        options = list(choices)
        value = self.data.get(name)
        if value is None:
            self.add(name, "this field is required")
            return ""
        if value not in options:
            self.add(name, f"must be one of: {', '.join(options)}")
            return ""
        return str(value)

    def check(self) -> None:
        """Raise the collected errors, if any."""
        if self.errors:
            raise ValidationError(self.errors)


def _int_param(request: HttpRequest, name: str, default: int) -> int:
    raw = request.GET.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValidationError({name: ["must be an integer"]}) from None
    if value < 1:
        raise ValidationError({name: ["must be >= 1"]})
    return value


def paginate(
    request: HttpRequest, queryset: QuerySet[Any], render: Callable[[Any], dict[str, Any]]
) -> JsonResponse:
    """Render one page of ``queryset``.

    ``page_size`` above MAX_PAGE_SIZE is a 400 rather than silently clamped, so
    a client walking pages never miscounts. A page past the end is a 404
    (page 1 of an empty list is fine). ``next`` is an absolute URL keeping the
    other query parameters, or null on the last page.
    """
    page = _int_param(request, "page", 1)
    page_size = _int_param(request, "page_size", DEFAULT_PAGE_SIZE)
    if page_size > MAX_PAGE_SIZE:
        raise ValidationError({"page_size": [f"must be <= {MAX_PAGE_SIZE}"]})
    count = queryset.count()
    last_page = max(1, -(-count // page_size))
    if page > last_page:
        raise ApiError(
            404, "page_not_found", f"page {page} does not exist (last page is {last_page})"
        )
    start = (page - 1) * page_size
    items = [render(obj) for obj in queryset[start : start + page_size]]
    next_url = None
    if page < last_page:
        params = request.GET.copy()
        params["page"] = str(page + 1)
        params["page_size"] = str(page_size)
        next_url = request.build_absolute_uri(f"{request.path}?{urlencode(sorted(params.items()))}")
    return json_response(
        {"results": items, "page": page, "page_size": page_size, "count": count, "next": next_url}
    )


def idempotent(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Make a POST view replay-safe with the ``Idempotency-Key`` header.

    The view and the stored response commit in one transaction, so either
    both exist or neither. A replay with the same key and request body gets
    the original status and body plus ``Idempotent-Replayed: true``; the same
    key on another path or body is a 422. Client errors (4xx) are stored and
    replayed like successes; 5xx responses are not stored, so a retry after an
    upstream failure can still succeed. Requests without the
    header behave normally.
    """

    @functools.wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if key is None:
            return view(request, *args, **kwargs)
        key = key.strip()
        if not key or len(key) > 200:
            raise ValidationError({IDEMPOTENCY_HEADER: ["must be 1 to 200 characters"]})
        digest = hashlib.sha256(
            request.method.encode() + b" " + request.path.encode() + b"\n" + request.body
        ).hexdigest()

        def replay(stored: IdempotencyKey) -> HttpResponse:
            if stored.request_hash != digest:
                raise ApiError(
                    422,
                    "idempotency_key_reused",
                    "this Idempotency-Key was used for a different request",
                )
            resp = HttpResponse(
                stored.response_body, status=stored.status_code, content_type="application/json"
            )
            resp["Idempotent-Replayed"] = "true"
            return resp

        existing = IdempotencyKey.objects.filter(key=key).first()
        if existing is not None:
            return replay(existing)
        try:
            with transaction.atomic():
                try:
                    response = view(request, *args, **kwargs)
                except ApiError as exc:
                    response = exc.response()
                if response.status_code < 500:
                    IdempotencyKey.objects.create(
                        key=key,
                        method=request.method or "",
                        path=request.path,
                        request_hash=digest,
                        status_code=response.status_code,
                        response_body=response.content.decode("utf-8"),
                    )
        except IntegrityError:
            # A concurrent request with the same key won the race; answer as it did.
            stored = IdempotencyKey.objects.filter(key=key).first()
            if stored is None:
                raise
            log.info("idempotency race on key %s resolved by replay", key)
            return replay(stored)
        return response

    return wrapper
