"""The server's own records: a validated new job, a log line, a space's push settings."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["LogLine", "NewJob", "PushSettings"]


@dataclass(frozen=True, slots=True)
class NewJob:
    name: str
    payload: str  # JSON text
    max_retries: int
    timeout_seconds: int
    scheduled_for: int | None
    callback_url: str | None
    callback_headers: str | None


@dataclass(frozen=True, slots=True)
class LogLine:
    ts: int
    level: int
    message: str
    source: str | None
    metadata: str | None


@dataclass(frozen=True, slots=True)
class PushSettings:
    url: str | None = None
    headers: dict[str, str] | None = None
    job_names: frozenset[str] | None = None

    def wants(self, name: str) -> bool:
        return bool(self.url) and (not self.job_names or name in self.job_names)
