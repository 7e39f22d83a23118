import json

from django.db import connection
from django.db.models import Count
from django.http import HttpResponse, HttpResponseNotAllowed, JsonResponse
from django.shortcuts import get_object_or_404, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from .models import Note, Notebook

PRIORITIES = {label.lower(): value for value, label in Note.Priority.choices}


@require_GET
def index(request):
    notebooks = Notebook.objects.annotate(note_count=Count("notes"))
    return render(request, "notes/index.html", {"notebooks": notebooks})


@require_GET
def healthz(request):
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return JsonResponse({"status": "ok", "database": connection.vendor})


@require_GET
def notebook_list(request):
    return JsonResponse({"results": [nb.as_dict() for nb in Notebook.objects.all()]})


@require_GET
def notebook_detail(request, slug):
    return JsonResponse(get_object_or_404(Notebook, slug=slug).as_dict())


@csrf_exempt
def note_list(request, slug):
    notebook = get_object_or_404(Notebook, slug=slug)
    if request.method == "GET":
        notes = notebook.notes.select_related("notebook")
        if request.GET.get("pinned") == "1":
            notes = notes.filter(pinned=True)
        return JsonResponse({"results": [n.as_dict() for n in notes]})
    if request.method == "POST":
        try:
            payload = json.loads(request.body or b"{}")
        except json.JSONDecodeError:
            return JsonResponse({"error": "invalid JSON"}, status=400)
        errors = {}
        title = str(payload.get("title", "")).strip()
        if not title:
            errors["title"] = "required"
        priority = PRIORITIES.get(str(payload.get("priority", "normal")).lower())
        if priority is None:
            errors["priority"] = f"one of {sorted(PRIORITIES)}"
        if errors:
            return JsonResponse({"errors": errors}, status=400)
        note = notebook.notes.create(
            title=title,
            body=str(payload.get("body", "")),
            priority=priority,
            pinned=bool(payload.get("pinned", False)),
        )
        return JsonResponse(note.as_dict(), status=201)
    return HttpResponseNotAllowed(["GET", "POST"])


@csrf_exempt
def note_detail(request, pk):
    note = get_object_or_404(Note.objects.select_related("notebook"), pk=pk)
    if request.method == "GET":
        return JsonResponse(note.as_dict())
    if request.method == "DELETE":
        note.delete()
        return HttpResponse(status=204)
    return HttpResponseNotAllowed(["GET", "DELETE"])
