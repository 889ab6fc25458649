"""The client: one :class:`Client` per server and credential, with a handle per resource."""

from __future__ import annotations

import http.client
import json as jsonlib
import math
import os
import random
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from typing import Any, AsyncIterator, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Union

from . import bundle as bundles
from .errors import AgentdError, APIError, StreamError, TransportError, error_for, parse_retry_after
from .sse import SSEParser

__version__ = "0.1.0"

#: Statuses after which an invocation changes no more.
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
#: Statuses a ``wait`` returns at: terminal, or waiting for an answer.
SETTLED = TERMINAL | {"waiting_for_input"}

#: The longest ``?wait=`` the server takes; longer waits poll after it.
SERVER_MAX_WAIT_S = 60

_IDEMPOTENT = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
_RETRY_STATUSES = frozenset({429, 503})

Json = Any
Path = Sequence[str]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """Redirects are not followed: the API never sends one, and following would drop the method."""

    def redirect_request(self, req, fp, code, msg, headers, newurl):  # noqa: D102
        return None


class Client:
    """A client of one agentd server.

    ``base_url`` and ``api_key`` default to the environment's ``AGENTD_API_URL`` and
    ``AGENTD_API_KEY``. ``api_key`` may be an API key (``agd_…``) or a session token.

    Requests refused with ``429`` or ``503`` are retried (every request: the server did not
    act on them), and so are requests that lost their connection when repeating them is
    safe: ``GET``, ``PUT``, ``DELETE`` and invoke, which always carries an
    ``Idempotency-Key``. At most ``max_retries`` times, after ``Retry-After`` when the server
    sent one (up to ``max_retry_after`` seconds; a longer one is raised at once), else after
    an exponential backoff from ``backoff_base`` to ``backoff_max`` seconds with jitter.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 30.0,
        max_retries: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        user_agent: Optional[str] = None,
    ) -> None:
        base_url = base_url or os.environ.get("AGENTD_API_URL")
        if not base_url:
            raise AgentdError("no server: pass base_url or set AGENTD_API_URL")
        parsed = urllib.parse.urlsplit(base_url)
        if parsed.scheme not in ("http", "https") or not parsed.netloc:
            raise AgentdError(f"{base_url!r} is not an http(s) URL")
        if parsed.query or parsed.fragment:
            raise AgentdError(f"{base_url!r} must not have a query or a fragment")
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("AGENTD_API_KEY")
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self.user_agent = user_agent or f"agentd-client-python/{__version__}"
        #: Replaceable in tests; called with the seconds to pause.
        self.sleep: Callable[[float], None] = time.sleep
        self._opener = urllib.request.build_opener(_NoRedirect)

        self.agents = Agents(self)
        self.invocations = Invocations(self)
        self.threads = Threads(self)
        self.keys = Keys(self)

    def __repr__(self) -> str:
        # The key is a credential: never shown.
        return f"Client({self.base_url!r})"

    # -- the calls of the API that are not a resource's ------------------------------------

    def me(self) -> Dict[str, Any]:
        """``GET /v1/me``: who the credential is, its workspace and scopes."""
        return self.request("GET", ["v1", "me"])

    def invoke(
        self,
        slug: str,
        input: Json = None,
        *,
        wait: Optional[float] = None,
        thread_id: Optional[str] = None,
        idempotency_key: Optional[str] = None,
        multitask_strategy: Optional[str] = None,
        priority: Optional[int] = None,
        max_attempts: Optional[int] = None,
        timeout_s: Optional[int] = None,
        input_timeout_s: Optional[int] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        env: Optional[Mapping[str, str]] = None,
        webhook_url: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``POST /v1/agents/{slug}/invoke``: starts a run and returns the invocation.

        ``wait`` (seconds) returns once the run settles (finishes, or waits for an answer)
        or the time is up, whichever is first; past the server's 60 s it polls. An
        ``Idempotency-Key`` is generated when none is given, so retries of this call never
        start two runs; pass your own to make retries across processes safe too.
        """
        body: Dict[str, Any] = {"input": input}
        optional = {
            "thread_id": thread_id,
            "multitask_strategy": multitask_strategy,
            "priority": priority,
            "max_attempts": max_attempts,
            "timeout_s": timeout_s,
            "input_timeout_s": input_timeout_s,
            "metadata": metadata,
            "env": env,
            "webhook_url": webhook_url,
        }
        body.update({k: v for k, v in optional.items() if v is not None})
        key = idempotency_key or f"sdk-{uuid.uuid4().hex}"
        deadline = _deadline(wait)
        first = _server_wait(wait)
        invocation = self.request(
            "POST",
            ["v1", "agents", slug, "invoke"],
            query={"wait": first},
            json=body,
            headers={"Idempotency-Key": key},
            retry=True,
            timeout=self.timeout + (first or 0),
        )
        return self.invocations._wait_after(invocation, deadline)

    def respond(self, invocation_id: str, answer: Json, *, wait: Optional[float] = None) -> Dict[str, Any]:
        """``POST /v1/invocations/{id}/respond``: answers the open question; see :meth:`Invocations.respond`."""
        return self.invocations.respond(invocation_id, answer, wait=wait)

    # -- HTTP ------------------------------------------------------------------------------

    def request(
        self,
        method: str,
        path: Union[str, Path],
        *,
        query: Optional[Mapping[str, Any]] = None,
        json: Any = ...,  # noqa: A002 - the name callers expect
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry: Optional[bool] = None,
        timeout: Optional[float] = None,
    ) -> Any:
        """One API call; the decoded JSON answer (``None`` for ``204``).

        ``path`` is a list of segments (each percent-encoded) or a string taken verbatim.
        ``retry`` forces (or forbids) retries after a lost connection; by default only
        idempotent methods get them.
        """
        status, _, data = self._send(method, path, query, json, body, content_type, headers, retry, timeout)
        if status == 204 or not data:
            return None
        try:
            return jsonlib.loads(data)
        except ValueError as e:
            raise AgentdError(f"the server answered {status} with a body that is not JSON: {data[:200]!r}") from e

    def _url(self, path: Union[str, Path], query: Optional[Mapping[str, Any]]) -> str:
        if isinstance(path, str):
            url = self.base_url + path
        else:
            for segment in path:
                if segment in (".", ".."):
                    raise AgentdError(f"{segment!r} cannot be sent as a path segment")
            url = self.base_url + "".join("/" + urllib.parse.quote(str(s), safe="") for s in path)
        if query:
            pairs = [(k, _query_value(v)) for k, v in query.items() if v is not None]
            if pairs:
                url += ("&" if "?" in url else "?") + urllib.parse.urlencode(pairs)
        return url

    def _send(
        self,
        method: str,
        path: Union[str, Path],
        query: Optional[Mapping[str, Any]] = None,
        json: Any = ...,  # noqa: A002
        body: Optional[bytes] = None,
        content_type: Optional[str] = None,
        headers: Optional[Mapping[str, str]] = None,
        retry: Optional[bool] = None,
        timeout: Optional[float] = None,
        stream: bool = False,
    ) -> Any:
        url = self._url(path, query)
        all_headers = {"User-Agent": self.user_agent, "Accept": "application/json"}
        if self.api_key:
            all_headers["Authorization"] = f"Bearer {self.api_key}"
        if json is not ...:
            body = jsonlib.dumps(json, separators=(",", ":")).encode("utf-8")
            content_type = "application/json"
        if content_type:
            all_headers["Content-Type"] = content_type
        all_headers.update(headers or {})
        retry_connection = retry if retry is not None else method.upper() in _IDEMPOTENT
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=body, method=method.upper(), headers=all_headers)
            try:
                response = self._opener.open(request, timeout=timeout or self.timeout)
            except urllib.error.HTTPError as e:
                status = e.code
                resp_headers = {k.lower(): v for k, v in e.headers.items()} if e.headers else {}
                try:
                    data = e.read()
                except (OSError, http.client.HTTPException):
                    data = b""
                finally:
                    e.close()
                error = error_for(status, _problem(status, e.reason, data), resp_headers)
                if status in _RETRY_STATUSES and attempt < self.max_retries:
                    pause = self._pause(attempt, error.retry_after)
                    if pause is not None:
                        attempt += 1
                        self.sleep(pause)
                        continue
                raise error from None
            except (OSError, http.client.HTTPException) as e:
                if retry_connection and attempt < self.max_retries:
                    pause = self._pause(attempt, None)
                    attempt += 1
                    self.sleep(pause or 0)
                    continue
                raise TransportError(f"{method} {url}: {_reason(e)}") from e
            if stream:
                return response
            try:
                with response:
                    data = response.read()
            except (OSError, http.client.HTTPException) as e:
                if retry_connection and attempt < self.max_retries:
                    pause = self._pause(attempt, None)
                    attempt += 1
                    self.sleep(pause or 0)
                    continue
                raise TransportError(f"{method} {url}: the answer broke off: {_reason(e)}") from e
            return response.status, {k.lower(): v for k, v in response.headers.items()}, data

    def _pause(self, attempt: int, retry_after: Optional[float]) -> Optional[float]:
        """Seconds before retry ``attempt + 1``; ``None`` when ``Retry-After`` is longer than allowed."""
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            return retry_after
        ceiling = min(self.backoff_max, self.backoff_base * (2**attempt))
        # "Equal jitter": at least half the backoff, so retries spread out but never bunch at 0.
        return ceiling / 2 + random.uniform(0, ceiling / 2)


class _Resource:
    def __init__(self, client: Client) -> None:
        self._client = client

    def _req(self, method: str, path: Path, **kw: Any) -> Any:
        return self._client.request(method, list(path), **kw)

    def _pages(self, method: Callable[..., Dict[str, Any]], **kw: Any) -> Iterator[Dict[str, Any]]:
        cursor = None
        while True:
            page = method(cursor=cursor, **kw)
            yield from page.get("data", [])
            cursor = page.get("next_cursor")
            if not cursor:
                return


class Agents(_Resource):
    """Agents, their versions (deploys and rollbacks) and their secrets."""

    def list(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/agents``: one page, ``{"data": [...], "next_cursor": ...}``."""
        return self._req("GET", ["v1", "agents"], query={"limit": limit, "cursor": cursor})

    def iter(self) -> Iterator[Dict[str, Any]]:
        """Every agent, page after page."""
        return self._pages(self.list)

    def get(self, slug: str) -> Dict[str, Any]:
        return self._req("GET", ["v1", "agents", slug])

    def create(
        self,
        slug: str,
        *,
        name: Optional[str] = None,
        description: Optional[str] = None,
        tags: Optional[List[str]] = None,
        visibility: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``POST /v1/agents``: registers an agent (it has no version until a deploy)."""
        body = {"slug": slug, "name": name, "description": description, "tags": tags, "visibility": visibility}
        return self._req("POST", ["v1", "agents"], json={k: v for k, v in body.items() if v is not None})

    def update(self, slug: str, **fields: Any) -> Dict[str, Any]:
        """``PATCH /v1/agents/{slug}`` with the given fields (``description=``, ``config=``, ...)."""
        return self._req("PATCH", ["v1", "agents", slug], json=fields)

    def delete(self, slug: str) -> None:
        self._req("DELETE", ["v1", "agents", slug])

    def deploy(
        self,
        path: str,
        *,
        slug: Optional[str] = None,
        activate: bool = True,
        wait: Optional[float] = None,
    ) -> Dict[str, Any]:
        """Deploys the agent folder at ``path`` (or a ``.tar.gz``/``.zip`` file) as a new version.

        The folder is packed as the CLI packs it. ``slug`` defaults to one made from the
        manifest's ``name``; the agent is created on its first deploy. ``wait`` (≤ 60 s)
        lets the server hold the answer until a dependency build settles. Returns the version.
        """
        if os.path.isdir(path):
            manifest = bundles.read_manifest(path)
            data = bundles.pack_dir(path)
        else:
            manifest = {}
            with open(path, "rb") as f:
                data = f.read()
        if slug is None:
            name = manifest.get("name")
            slug = bundles.slugify(name) if isinstance(name, str) else None
            if slug is None:
                raise bundles.BundleError(f"cannot make a slug from the manifest's name {name!r}: pass slug=")
        self._ensure(slug, manifest)
        return self.upload(slug, data, activate=activate, wait=wait)

    def _ensure(self, slug: str, manifest: Mapping[str, Any]) -> None:
        from .errors import Conflict, NotFound

        try:
            self.get(slug)
            return
        except NotFound:
            pass
        tags = manifest.get("tags")
        try:
            self.create(
                slug,
                name=manifest.get("name") if isinstance(manifest.get("name"), str) else None,
                description=manifest.get("description") if isinstance(manifest.get("description"), str) else None,
                tags=tags if isinstance(tags, list) else None,
            )
        except Conflict as e:
            # Another deploy created it in the meantime.
            if e.code != "agent_exists":
                raise

    def upload(self, slug: str, data: bytes, *, activate: bool = True, wait: Optional[float] = None) -> Dict[str, Any]:
        """``POST /v1/agents/{slug}/versions`` with a bundle's bytes (``.tar.gz`` or ``.zip``)."""
        content_type = "application/zip" if data[:4] == b"PK\x03\x04" else "application/gzip"
        first = _server_wait(wait)
        query = {"activate": None if activate else False, "wait": first}
        return self._req(
            "POST",
            ["v1", "agents", slug, "versions"],
            query=query,
            body=data,
            content_type=content_type,
            timeout=self._client.timeout + (first or 0),
        )

    def versions(self, slug: str, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/agents/{slug}/versions``: one page, newest first."""
        return self._req("GET", ["v1", "agents", slug, "versions"], query={"limit": limit, "cursor": cursor})

    def rollback(self, slug: str, version: int) -> Dict[str, Any]:
        """``POST /v1/agents/{slug}/versions/{n}/activate``: makes version ``n`` active (older or newer); the agent."""
        return self._req("POST", ["v1", "agents", slug, "versions", str(int(version)), "activate"], retry=True)

    activate = rollback

    def build(self, slug: str, version: int) -> Dict[str, Any]:
        """``GET /v1/agents/{slug}/versions/{n}/build``: the dependency build and its log."""
        return self._req("GET", ["v1", "agents", slug, "versions", str(int(version)), "build"])

    def secrets(self, slug: str) -> Dict[str, Any]:
        """``GET /v1/agents/{slug}/secrets``: names and dates, never values."""
        return self._req("GET", ["v1", "agents", slug, "secrets"])

    def set_secret(self, slug: str, name: str, value: str) -> Dict[str, Any]:
        return self._req("PUT", ["v1", "agents", slug, "secrets", name], json={"value": value})

    def delete_secret(self, slug: str, name: str) -> None:
        self._req("DELETE", ["v1", "agents", slug, "secrets", name])


class Invocations(_Resource):
    """Invocations: read, list, cancel, logs, questions and answers, live events."""

    def get(self, invocation_id: str) -> Dict[str, Any]:
        return self._req("GET", ["v1", "invocations", invocation_id])

    def list(
        self,
        *,
        agent: Optional[str] = None,
        status: Optional[str] = None,
        thread_id: Optional[str] = None,
        parent_id: Optional[str] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``GET /v1/invocations``: one page, newest first, filtered by what is given."""
        query = {"agent": agent, "status": status, "thread_id": thread_id, "parent_id": parent_id}
        query.update({"limit": limit, "cursor": cursor})
        return self._req("GET", ["v1", "invocations"], query=query)

    def iter(self, **filters: Any) -> Iterator[Dict[str, Any]]:
        """Every invocation matching ``filters`` (as :meth:`list` takes), page after page."""
        return self._pages(self.list, **filters)

    def cancel(self, invocation_id: str) -> Dict[str, Any]:
        """``POST /v1/invocations/{id}/cancel``: the invocation as it ended."""
        return self._req("POST", ["v1", "invocations", invocation_id, "cancel"], timeout=self._client.timeout + 10)

    def logs(self, invocation_id: str, *, after: Optional[int] = None, limit: Optional[int] = None) -> Dict[str, Any]:
        """``GET /v1/invocations/{id}/logs``: events in ``seq`` order after ``after``."""
        return self._req("GET", ["v1", "invocations", invocation_id, "logs"], query={"after": after, "limit": limit})

    def interrupts(self, invocation_id: str) -> Dict[str, Any]:
        """``GET /v1/invocations/{id}/interrupts``: the questions asked and their answers, oldest first."""
        return self._req("GET", ["v1", "invocations", invocation_id, "interrupts"])

    def respond(self, invocation_id: str, answer: Json, *, wait: Optional[float] = None) -> Dict[str, Any]:
        """``POST /v1/invocations/{id}/respond``: answers the open question; the invocation.

        ``wait`` returns once the run settles again (finishes or asks its next question).
        Not retried after a lost connection: a repeat would answer the next question.
        """
        deadline = _deadline(wait)
        first = _server_wait(wait)
        invocation = self._req(
            "POST",
            ["v1", "invocations", invocation_id, "respond"],
            query={"wait": first},
            json={"answer": answer},
            timeout=self._client.timeout + (first or 0),
        )
        return self._wait_after(invocation, deadline)

    def wait(self, invocation_id: str, *, timeout: Optional[float] = None, interval: float = 1.0) -> Dict[str, Any]:
        """Polls until the invocation settles (finished or waiting for an answer) or ``timeout`` passes."""
        return self._wait_after(self.get(invocation_id), _deadline(timeout), interval)

    def _wait_after(self, invocation: Dict[str, Any], deadline: Optional[float], interval: float = 1.0) -> Dict[str, Any]:
        while invocation.get("status") not in SETTLED and deadline is not None and time.monotonic() < deadline:
            self._client.sleep(min(interval, max(0.0, deadline - time.monotonic())))
            invocation = self.get(invocation["id"])
        return invocation

    def artifacts(self, invocation_id: str) -> Dict[str, Any]:
        """``GET /v1/invocations/{id}/artifacts``: the files the run left in ``/outputs``."""
        return self._req("GET", ["v1", "invocations", invocation_id, "artifacts"])

    def artifact(self, invocation_id: str, name: str) -> bytes:
        """``GET /v1/invocations/{id}/artifacts/{name}``: one artifact's bytes."""
        path = ["v1", "invocations", invocation_id, "artifacts", *name.split("/")]
        _, _, data = self._client._send("GET", path)
        return data

    def events(
        self,
        invocation_id: str,
        *,
        after: Optional[int] = None,
        max_reconnects: int = 10,
        read_timeout: float = 60.0,
    ) -> Iterator[Dict[str, Any]]:
        """The invocation's events, live, from the first (or after ``seq`` ``after``).

        Yields each event (``{"seq", "ts", "kind", "stream", "level", "message", "data"}``)
        once, in order, and last ``{"kind": "end", "status": ..., "error": ...}`` when the
        invocation is over. A dropped connection is reopened with ``Last-Event-ID``, so
        nothing is lost or repeated; ``max_reconnects`` drops in a row without a byte in
        between raise :class:`TransportError`. An invocation waiting for an answer keeps the
        stream open: stop iterating to stop following.
        """
        client = self._client
        last = after
        failures = 0
        path = ["v1", "invocations", invocation_id, "events"]
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            cause: Optional[BaseException] = None
            try:
                response = client._send("GET", path, headers=headers, retry=True, timeout=read_timeout, stream=True)
            except TransportError as e:
                response, cause = None, e
            if response is not None:
                parser = SSEParser()
                try:
                    while True:
                        chunk = response.read1(65536)
                        if not chunk:
                            break
                        failures = 0
                        for message in parser.feed(chunk):
                            if message.event == "end":
                                end = jsonlib.loads(message.data) if message.data else {}
                                yield {"kind": "end", "status": end.get("status"), "error": end.get("error")}
                                return
                            if message.event == "error":
                                problem = _json_or_text(message.data)
                                if isinstance(problem, dict):
                                    raise StreamError(problem.get("code"), str(problem.get("detail", "")))
                                raise StreamError(None, str(problem))
                            event = jsonlib.loads(message.data)
                            seq = event.get("seq") if isinstance(event, dict) else None
                            if seq is None and message.id is not None and message.id.isdigit():
                                seq = int(message.id)
                            if seq is not None and last is not None and seq <= last:
                                continue
                            if seq is not None:
                                last = seq
                            yield event
                except (OSError, http.client.HTTPException) as e:
                    cause = e
                finally:
                    response.close()
            failures += 1
            if failures > max_reconnects:
                reason = _reason(cause) if cause else "the server closed the stream"
                raise TransportError(f"the event stream of {invocation_id} dropped {failures} times in a row: {reason}")
            client.sleep(client._pause(failures - 1, None) or 0)

    async def aevents(self, invocation_id: str, **kwargs: Any) -> AsyncIterator[Dict[str, Any]]:
        """:meth:`events` as an async iterator (each read runs in a thread)."""
        import asyncio

        stream = self.events(invocation_id, **kwargs)
        done = object()
        try:
            while True:
                item = await asyncio.to_thread(next, stream, done)
                if item is done:
                    return
                yield item
        finally:
            try:
                stream.close()
            except ValueError:
                # Cancelled while a read was in its thread; the stream closes when it returns.
                pass


class Threads(_Resource):
    """Threads: conversations with one agent across invocations."""

    def create(self, *, agent: Optional[str] = None, metadata: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        body = {"agent": agent, "metadata": metadata}
        return self._req("POST", ["v1", "threads"], json={k: v for k, v in body.items() if v is not None})

    def get(self, thread_id: str) -> Dict[str, Any]:
        return self._req("GET", ["v1", "threads", thread_id])

    def list(
        self,
        *,
        agent: Optional[str] = None,
        status: Optional[str] = None,
        metadata: Optional[Mapping[str, Any]] = None,
        limit: Optional[int] = None,
        cursor: Optional[str] = None,
    ) -> Dict[str, Any]:
        """``GET /v1/threads``: one page; ``metadata`` keeps threads having each of its fields."""
        meta = jsonlib.dumps(metadata, separators=(",", ":")) if metadata is not None else None
        query = {"agent": agent, "status": status, "metadata": meta, "limit": limit, "cursor": cursor}
        return self._req("GET", ["v1", "threads"], query=query)

    def iter(self, **filters: Any) -> Iterator[Dict[str, Any]]:
        return self._pages(self.list, **filters)

    def update(self, thread_id: str, metadata: Mapping[str, Any]) -> Dict[str, Any]:
        """``PATCH /v1/threads/{id}``: merges ``metadata`` (a field set to ``None`` is removed)."""
        return self._req("PATCH", ["v1", "threads", thread_id], json={"metadata": metadata})

    def delete(self, thread_id: str) -> None:
        self._req("DELETE", ["v1", "threads", thread_id])

    def state(self, thread_id: str) -> Dict[str, Any]:
        """``GET /v1/threads/{id}/state``: ``{thread_id, state, checkpoint}``."""
        return self._req("GET", ["v1", "threads", thread_id, "state"])

    def set_state(self, thread_id: str, state: Json) -> Dict[str, Any]:
        """``POST /v1/threads/{id}/state``: sets the state by hand, as a new checkpoint."""
        return self._req("POST", ["v1", "threads", thread_id, "state"], json={"state": state})

    def history(self, thread_id: str, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        """``GET /v1/threads/{id}/history``: checkpoints, newest first."""
        return self._req("GET", ["v1", "threads", thread_id, "history"], query={"limit": limit, "cursor": cursor})


class Keys(_Resource):
    """API keys of the workspace (scope ``admin``)."""

    def list(self, *, limit: Optional[int] = None, cursor: Optional[str] = None) -> Dict[str, Any]:
        return self._req("GET", ["v1", "api-keys"], query={"limit": limit, "cursor": cursor})

    def create(
        self,
        name: str,
        *,
        scopes: Optional[List[str]] = None,
        expires_in_days: Optional[int] = None,
    ) -> Dict[str, Any]:
        """``POST /v1/api-keys``: the key with its ``secret``, shown this once."""
        body = {"name": name, "scopes": scopes, "expires_in_days": expires_in_days}
        return self._req("POST", ["v1", "api-keys"], json={k: v for k, v in body.items() if v is not None})

    def revoke(self, key_id: str) -> Dict[str, Any]:
        """``DELETE /v1/api-keys/{id}``: the key, ``revoked_at`` set."""
        return self._req("DELETE", ["v1", "api-keys", key_id])


def _query_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _deadline(wait: Optional[float]) -> Optional[float]:
    return time.monotonic() + wait if wait else None


def _server_wait(wait: Optional[float]) -> Optional[int]:
    if not wait or wait <= 0:
        return None
    return min(SERVER_MAX_WAIT_S, max(1, int(math.ceil(wait))))


def _problem(status: int, reason: Any, data: bytes) -> Dict[str, Any]:
    parsed = _json_or_text(data.decode("utf-8", errors="replace")) if data else None
    if isinstance(parsed, dict):
        return parsed
    return {"status": status, "title": str(reason or ""), "detail": (parsed or "")[:500] if isinstance(parsed, str) else None}


def _json_or_text(text: str) -> Any:
    try:
        return jsonlib.loads(text)
    except ValueError:
        return text


def _reason(e: BaseException) -> str:
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        return str(e.reason)
    if isinstance(e, socket.timeout):
        return "timed out"
    return str(e) or type(e).__name__


__all__ = [
    "Client",
    "Agents",
    "Invocations",
    "Threads",
    "Keys",
    "TERMINAL",
    "SETTLED",
    "APIError",
]
