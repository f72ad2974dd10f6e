"""When to send a request again, and how long to wait first: pure logic, no I/O.

Every endpoint names one of three retry modes (see ``endpoints``):

- ``"idempotent"``: sending twice is harmless (reads, progress, checkpoint, keepalive).
  Retried on every retryable error: 429, 5xx, connection errors and timeouts.
- ``"confirm"``: ack, complete, fail and kill. Retried like the above; and when a retry
  may have landed (its answer was lost, or a retry meets 409), the job is read back:
  the call is reported a success if the job shows its effect, and not sent again if the
  job has moved on to another attempt. A retry never turns a success into an error, nor
  acts on the job's next attempt.
- ``"unprocessed"``: create, poll, claim, custom events and log appends. A lost answer
  may mean jobs were created or delivered to us, an event recorded or lines stored
  already, so these are retried only when the server provably did not process the
  request: the connection never opened, or 429. (A 503 proves nothing: a proxy may
  answer it after passing the request on.) The job settles the other failures of a
  claim, when it is still pending (see ``Call.pending_job``), and the job logger those
  of a batch by reading the job's logs back (see ``_logs.delivery``).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Literal, NamedTuple

from .._exceptions import APIConnectionError, APIError, EmitError

__all__ = ["RetryMode", "RetryPolicy", "unprocessed"]

RetryMode = Literal["idempotent", "confirm", "unprocessed"]
"""How an endpoint may be retried; see the module docstring."""

# 429 is refused before any work.
_UNPROCESSED_STATUSES = frozenset({429})


class RetryPolicy(NamedTuple):
    """Exponential backoff with jitter, honouring ``Retry-After``.

    Attempt ``n`` (0-based) waits ``min(max_delay, initial_delay * 2**n)``, of which the
    upper half is random, so that many clients do not retry in step. A ``Retry-After`` up
    to ``max_retry_after`` seconds is used as given; a longer one ends the retries.

    (A named tuple: a dataclass's generated methods would be compiled at a Lambda's first
    push, which makes a client.)
    """

    max_retries: int = 2
    initial_delay: float = 0.5
    max_delay: float = 8.0
    max_retry_after: float = 60.0
    random: Callable[[], float] = random.random

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries!r}, initial_delay={self.initial_delay!r}, "
            f"max_delay={self.max_delay!r}, max_retry_after={self.max_retry_after!r})"
        )

    def delay(
        self, mode: RetryMode, error: EmitError, attempt: int, *, persist: bool = False
    ) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None to give up.

        ``persist`` lifts ``max_retries``: the caller bounds the retries by a time instead
        (a running job's calls go on until the run's deadline).
        """
        if (attempt >= self.max_retries and not persist) or not self.may_retry(mode, error):
            return None
        retry_after = error.retry_after if isinstance(error, APIError) else None
        if retry_after is not None:
            return retry_after if retry_after <= self.max_retry_after else None
        backoff = min(self.max_delay, self.initial_delay * 2.0**attempt)
        return backoff / 2 + backoff / 2 * self.random()

    @staticmethod
    def may_retry(mode: RetryMode, error: EmitError) -> bool:
        """Whether ``error`` allows sending the request of an endpoint in ``mode`` again."""
        if not error.retryable:
            return False
        return mode != "unprocessed" or unprocessed(error)


def unprocessed(error: EmitError) -> bool:
    """Whether ``error`` proves the service did not process the request."""
    if isinstance(error, APIConnectionError):
        return not error.request_sent
    return isinstance(error, APIError) and error.status in _UNPROCESSED_STATUSES
