"""Django's routes. /emit/ is not among them: asgi.py sends it to emit-push first."""

from __future__ import annotations

from django.urls import path

from examples.django_app import views

urlpatterns = [path("", views.index)]
