"""The scenario app as a Cloud Function (``--source`` this file, ``--target gcf``)."""

from emit_push.adapters.gcp_functions import http_function
from tests.runtimes.scenario_app import app, trace_from_environment

trace_from_environment()
gcf = http_function(app)
