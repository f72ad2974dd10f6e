"""The project's ASGI entry point: /emit/ goes to emit-push, every other path to Django.

    EMIT_SPACE_ID=... EMIT_API_KEY=... EMIT_PUSH_SECRET=... \\
        uvicorn examples.django_app.asgi:application

Then set the space's push URL to https://your.host/emit/ (mind the trailing slash) with
the header ``Authorization: Bearer <EMIT_PUSH_SECRET>``. Django answers every other path
through its own ASGI handler, as before. The outer Starlette app also gives emit-push the
lifespan events Django's handler refuses: at shutdown the app's API clients are closed
(and, with ``sweep_every`` or ``asgi(background=True)``, its sweeps and background runs
are stopped).
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application
from starlette.applications import Starlette
from starlette.routing import Mount

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "examples.django_app.settings")
django_asgi = get_asgi_application()  # first: it sets Django up before models are imported

from examples.django_app import jobs  # noqa: E402  (handlers may import models)

application = Starlette(
    routes=[Mount("/emit", jobs.app.asgi()), Mount("/", django_asgi)],
    lifespan=lambda _: jobs.app.lifespan(),
)
