"""The Flask adapter: a view that takes pushes, on the WSGI side of any Flask app.

    flask_app.add_url_rule("/emit/", view_func=flask_view(app))   # POST only

It is the Cloud Functions adapter (``http_function``) bound to Flask's request: functions-
framework serves Flask too, so a push runs the same way in both. The job runs inside the
request, on one event loop that lives in a background thread for the life of the process
(the API client and its connection pool are reused); a ``def`` handler gets a thread of
its own, as everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import IO, NamedTuple

from flask import request

from .._framework.app import EmitPush
from .gcp_functions import http_function

__all__ = ["flask_view"]

FlaskView = Callable[[], tuple[bytes, int, dict[str, str]]]


class _Request(NamedTuple):
    """What ``http_function`` reads, taken from Flask's request: Werkzeug's ``Headers``
    is no ``Mapping`` (iterating it gives pairs), so its items are copied into one."""

    headers: Mapping[str, str]
    stream: IO[bytes]


def flask_view(app: EmitPush | None = None) -> FlaskView:
    """A Flask view serving ``app`` (default: the app of the module-level ``on_job``).

    Its endpoint name is ``emit_push`` and it takes POST only (Flask reads both from the
    view when ``add_url_rule`` is not given them; mounting two, give each an ``endpoint=``)::

        from flask import Flask
        from emit_push.adapters.flask import flask_view

        web = Flask(__name__)
        web.add_url_rule("/emit/", view_func=flask_view(app))  # push URL: /emit/
    """
    function = http_function(app)

    def view() -> tuple[bytes, int, dict[str, str]]:
        return function(_Request(dict(request.headers.items()), request.stream))

    view.__name__ = "emit_push"
    view.methods = ("POST",)  # type: ignore[attr-defined]  # read by add_url_rule
    return view
