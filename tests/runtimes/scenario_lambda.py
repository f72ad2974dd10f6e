"""The scenario app as a Lambda function (``tests.runtimes.scenario_lambda.handler``)."""

from emit_push.adapters.aws_lambda import lambda_handler
from tests.runtimes.scenario_app import app, trace_from_environment

trace_from_environment()
handler = lambda_handler(app)
