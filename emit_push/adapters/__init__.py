"""Adapters: translate a platform's request into ``EmitPush.handle_push`` and back.

- ``emit_push.adapters.asgi``: a Starlette app (FastAPI, Starlette, any ASGI server)
- ``emit_push.adapters.aws_lambda``: a Lambda handler (Function URL, API Gateway v1/v2)
- ``emit_push.adapters.gcp_functions``: a Google Cloud Functions HTTP function

Each is imported on its own, so a Lambda never loads Flask and a web app never loads
Mangum.
"""
