"""Harness fixtures: the Lambda Runtime API stub and where the stand-in handlers live.

The stand-ins in ``standins/`` are deployment roots, not a package: each is loaded the way
its platform loads user code (awslambdaric imports ``module`` from ``LAMBDA_TASK_ROOT``;
functions-framework loads ``--source`` by path).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.harnesses.lambda_runtime import LambdaRuntime

STANDINS = Path(__file__).parent / "standins"


@pytest.fixture
def lambda_runtime() -> Iterator[LambdaRuntime]:
    """A Runtime API stub on 127.0.0.1; ``start_function`` runs awslambdaric against it."""
    with LambdaRuntime() as runtime:
        yield runtime
