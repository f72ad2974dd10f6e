"""The server's error responses: one exception, rendered as ``{"error", "code"}``."""

from __future__ import annotations

__all__ = ["ApiError", "bad_request", "conflict", "not_found"]


class ApiError(Exception):
    """An error answer: HTTP status, machine code and a message meant for a person."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> dict[str, str]:
        return {"error": self.message, "code": self.code}


def bad_request(message: str) -> ApiError:
    return ApiError(400, "invalid_request", message)


def not_found(job_id: str) -> ApiError:
    shown = job_id if len(job_id) <= 64 else job_id[:64] + "..."
    return ApiError(404, "job_not_found", f"Job {shown!r} not found")


def conflict(job_id: str, status: str, action: str) -> ApiError:
    if status == "killed":
        return ApiError(409, "job_killed", f"Job {job_id} was killed")
    return ApiError(409, "invalid_state", f"Cannot {action} job {job_id}: it is {status}")
