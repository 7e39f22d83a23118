from django.urls import path

from . import views

app_name = "notes"

urlpatterns = [
    path("notebooks/", views.notebook_list, name="notebook-list"),
    path("notebooks/<slug:slug>/", views.notebook_detail, name="notebook-detail"),
    path("notebooks/<slug:slug>/notes/", views.note_list, name="note-list"),
    path("notes/<int:pk>/", views.note_detail, name="note-detail"),
]
