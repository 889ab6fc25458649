"""Errors raised by the client.

Every refusal by the server is an :class:`APIError` carrying the RFC 9457 problem document
the server answered with (``status``, ``code``, ``detail``, ``request_id``); a subclass per
status lets callers ``except NotFound`` and so on, and ``code`` is the stable string to
switch on (``"not_found"``, ``"thread_busy"``, ``"requests_per_second"``, ...).
"""

from __future__ import annotations

from typing import Any, Dict, Mapping, Optional


class AgentdError(Exception):
    """Base class of everything this package raises."""


class TransportError(AgentdError):
    """The server could not be reached, or the connection broke before an answer."""


class StreamError(AgentdError):
    """An event stream ended with ``event: error`` (a failure on the server's side)."""

    def __init__(self, code: Optional[str], detail: str) -> None:
        super().__init__(f"{code}: {detail}" if code else detail)
        self.code = code
        self.detail = detail


class APIError(AgentdError):
    """The server answered with a problem document (a non-2xx status)."""

    def __init__(self, status: int, problem: Mapping[str, Any], headers: Optional[Mapping[str, str]] = None) -> None:
        self.status = status
        self.problem: Dict[str, Any] = dict(problem)
        self.headers: Dict[str, str] = {k.lower(): v for k, v in (headers or {}).items()}
        self.code: Optional[str] = self.problem.get("code")
        self.title: Optional[str] = self.problem.get("title")
        self.detail: Optional[str] = self.problem.get("detail")
        self.type: Optional[str] = self.problem.get("type")
        self.request_id: Optional[str] = self.problem.get("request_id") or self.headers.get("x-request-id")
        #: ``{path, message}`` per place for ``input_invalid``; else empty.
        self.errors = self.problem.get("errors") or []
        super().__init__(self._message())

    @property
    def retry_after(self) -> Optional[float]:
        """``Retry-After`` in seconds, when the server sent one."""
        return parse_retry_after(self.headers.get("retry-after"))

    def _message(self) -> str:
        text = f"{self.status} {self.code or self.title or 'error'}"
        if self.detail:
            text += f": {self.detail}"
        if self.request_id:
            text += f" (request {self.request_id})"
        return text


class BadRequest(APIError):
    """400: malformed request (``invalid_query``, ``invalid_wait``, ...)."""


class Unauthorized(APIError):
    """401: no, unknown, revoked or expired credentials."""


class Forbidden(APIError):
    """403: the credential lacks the scope, or the workspace is suspended."""


class NotFound(APIError):
    """404: missing, or another workspace's, resource."""


class Conflict(APIError):
    """409: conflicts with the current state (``thread_busy``, ``max_agents``, ...)."""


class PayloadTooLarge(APIError):
    """413: too large (``max_bundle_bytes``, ``state_too_large``, ...)."""


class UnprocessableEntity(APIError):
    """422: well-formed but invalid (``invalid_body``, ``input_invalid``, ...)."""


class RateLimited(APIError):
    """429: a rate or quota; ``retry_after`` says when to try again."""


class ServerError(APIError):
    """5xx: a fault of the server's own."""


class ServiceUnavailable(ServerError):
    """503: the server cannot serve the request now."""


_BY_STATUS = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    413: PayloadTooLarge,
    422: UnprocessableEntity,
    429: RateLimited,
    503: ServiceUnavailable,
}


def error_for(status: int, problem: Mapping[str, Any], headers: Optional[Mapping[str, str]] = None) -> APIError:
    """The :class:`APIError` subclass for ``status``."""
    cls = _BY_STATUS.get(status)
    if cls is None:
        cls = ServerError if status >= 500 else APIError
    return cls(status, problem, headers)


def parse_retry_after(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: a number of seconds or an HTTP date; ``None`` if absent or unreadable."""
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime
        import datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError):
            return None
        if when is None:
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=datetime.timezone.utc)
        seconds = (when - datetime.datetime.now(datetime.timezone.utc)).total_seconds()
    if seconds != seconds:  # NaN
        return None
    return max(0.0, seconds)
