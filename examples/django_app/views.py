"""The project's own views: Django answers every path but /emit/."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse


def index(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"service": "example", "pushes": "/emit/"})
