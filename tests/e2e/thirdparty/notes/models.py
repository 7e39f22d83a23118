from django.db import models
from django.utils.text import slugify


class Notebook(models.Model):
    title = models.CharField(max_length=120)
    slug = models.SlugField(max_length=120, unique=True)
    created = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ("title",)

    def __str__(self):
        return self.title

    def save(self, *args, **kwargs):
        if not self.slug:
            self.slug = slugify(self.title)
        super().save(*args, **kwargs)

    def as_dict(self):
        return {
            "id": self.pk,
            "title": self.title,
            "slug": self.slug,
            "notes": self.notes.count(),
        }


class Note(models.Model):
    class Priority(models.IntegerChoices):
        LOW = 1
        NORMAL = 2
        HIGH = 3

    notebook = models.ForeignKey(Notebook, on_delete=models.CASCADE, related_name="notes")
    title = models.CharField(max_length=200)
    body = models.TextField(blank=True)
    priority = models.PositiveSmallIntegerField(choices=Priority.choices, default=Priority.NORMAL)
    pinned = models.BooleanField(default=False)
    created = models.DateTimeField(auto_now_add=True)
    updated = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ("-pinned", "-priority", "id")
        indexes = (models.Index(fields=["notebook", "pinned"]),)

    def __str__(self):
        return self.title

    def as_dict(self):
        return {
            "id": self.pk,
            "notebook": self.notebook.slug,
            "title": self.title,
            "body": self.body,
            "priority": self.get_priority_display().lower(),
            "pinned": self.pinned,
        }
