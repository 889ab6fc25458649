"""agentd: the in-sandbox helper for Python agents (standard library only).

The platform mounts this folder at /opt/agentd/python, on PYTHONPATH, so an agent writes::

    import agentd

    def handle(ctx):
        ctx.log("working")
        return {"echo": ctx.input}

    agentd.run(handle)

``run(handler)`` speaks the run protocol for you: it reads the invocation document from
stdin (``{invocation_id, agent, input, thread, resume, attempt}``), calls ``handler(ctx)``
and writes events as JSON lines to the events fd (``AGENTD_EVENTS_FD``, default 3):

- the handler's return value becomes ``{"type": "output", "data": ...}`` and the process
  exits 0 (the invocation succeeds); it must be JSON-serializable (None gives null);
- an exception becomes ``{"type": "log", "level": "error", "message": <traceback>}`` and
  the process exits 1 (the invocation fails and may be retried);
- ``ctx.ask(question)`` pauses for a human: see ``Context.ask``;
- ``ctx.invoke(agent, input, wait=N)`` runs another agent of the workspace (a sub-agent)
  and returns its invocation: see ``Context.invoke``.

The handler may also be ``async def``; it is then run with ``asyncio.run``.
stdout and stderr stay yours: the platform captures them as log lines.

Calls back to the platform go to ``AGENTD_API_URL`` with the run's own ``AGENTD_TOKEN``
(valid while this run runs); ``ctx.api`` is the helper behind ``ctx.invoke``, for any
route a run's token may use. A refused call raises ``ApiError`` with the problem
document's ``status`` and ``code``.
"""

import asyncio
import inspect
import json
import os
import sys
import traceback
import urllib.error
import urllib.parse
import urllib.request

__all__ = ["run", "Context", "Interrupted", "Api", "ApiError"]

_LEVELS = ("debug", "info", "warn", "error")


class Interrupted(BaseException):
    """Raised by ``ctx.ask`` to stop the handler once a question has been sent.

    It derives from BaseException, like SystemExit, so ``except Exception`` in agent code
    does not swallow it. ``run`` catches it and exits 0.
    """


class ApiError(Exception):
    """A call to the platform's API failed.

    ``status`` is the HTTP status (0 when the API could not be reached), ``code`` the
    problem document's stable code (``run_token_not_accepted``, ``not_found``, …) and
    ``problem`` the whole document (a dict, empty when there was none).
    """

    def __init__(self, status, code, detail, problem=None):
        super().__init__(f"{code} ({status}): {detail}" if status else f"{code}: {detail}")
        self.status = status
        self.code = code
        self.detail = detail
        self.problem = problem or {}


class Api:
    """The platform's API as this run reaches it: ``AGENTD_API_URL`` with ``AGENTD_TOKEN``.

    ``request(method, path, body=None, query=None)`` sends one JSON request (``path``
    starts with ``/v1/``) and returns the decoded JSON answer (None for an empty one), or
    raises ``ApiError``. It never goes through the egress proxy: the API is on the run's
    own loopback.
    """

    def __init__(self, base_url=None, token=None, timeout=90):
        self.base_url = (base_url if base_url is not None else os.environ.get("AGENTD_API_URL", "")).rstrip("/")
        self.token = token if token is not None else os.environ.get("AGENTD_TOKEN", "")
        self.timeout = timeout
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))

    def request(self, method, path, body=None, query=None, headers=None):
        if not self.base_url or not self.token:
            raise ApiError(0, "no_api", "AGENTD_API_URL and AGENTD_TOKEN are not set; run under agentd")
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode({k: v for k, v in query.items() if v is not None})
        sent = {"Authorization": f"Bearer {self.token}", "Accept": "application/json"}
        data = None
        if body is not None:
            data = json.dumps(body).encode("utf-8")
            sent["Content-Type"] = "application/json"
        sent.update(headers or {})
        req = urllib.request.Request(url, data=data, method=method, headers=sent)
        try:
            with self._opener.open(req, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as err:
            raise _problem(err.code, err.read()) from None
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            raise ApiError(0, "api_unreachable", f"{method} {path}: {reason}") from None
        return json.loads(raw) if raw.strip() else None


class Store:
    """The workspace's long-term memory store (``/v1/store``), through the run's token.

    A namespace is a list of labels (``["users", "ada"]``); values are any JSON.
    """

    def __init__(self, api):
        self._api = api

    def get(self, namespace, key):
        """The item (a dict with ``value``, ``created_at``, …) or None when there is none."""
        query = {"namespace": ".".join(namespace), "key": key}
        try:
            return self._api.request("GET", "/v1/store/items", query=query)
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    def put(self, namespace, key, value, ttl_s=None):
        """Creates or replaces the item; with ``ttl_s`` it expires that many seconds from now."""
        body = {"namespace": list(namespace), "key": key, "value": value}
        if ttl_s is not None:
            body["ttl_s"] = ttl_s
        return self._api.request("PUT", "/v1/store/items", body=body)

    def delete(self, namespace, key):
        """Deletes the item; returns whether there was one."""
        query = {"namespace": ".".join(namespace), "key": key}
        try:
            self._api.request("DELETE", "/v1/store/items", query=query)
            return True
        except ApiError as err:
            if err.status == 404:
                return False
            raise

    def search(self, namespace_prefix=(), filter=None, limit=10, offset=0):
        """Items under ``namespace_prefix`` whose value has every field of ``filter``, newest first."""
        body = {"namespace_prefix": list(namespace_prefix), "limit": limit, "offset": offset}
        if filter:
            body["filter"] = filter
        return self._api.request("POST", "/v1/store/items/search", body=body)["data"]

    def namespaces(self, prefix=(), suffix=(), max_depth=None, limit=100, offset=0):
        """The distinct namespaces (lists of labels) under ``prefix`` ending in ``suffix``."""
        body = {"prefix": list(prefix), "suffix": list(suffix), "limit": limit, "offset": offset}
        if max_depth is not None:
            body["max_depth"] = max_depth
        return self._api.request("POST", "/v1/store/namespaces", body=body)["data"]


def _problem(status, raw):
    try:
        problem = json.loads(raw)
    except ValueError:
        problem = None
    if not isinstance(problem, dict):
        return ApiError(status, "http_error", raw.decode("utf-8", "replace")[:200] or "no body")
    return ApiError(status, problem.get("code", "http_error"), problem.get("detail", ""), problem)



class _Events:
    """Writes JSON lines to the events fd, unbuffered, one complete line per event."""

    def __init__(self, fd):
        self._fd = fd
        self.closed = False  # set once an interrupt is sent: nothing may follow it

    def emit(self, event):
        if self.closed:
            return
        data = (json.dumps(event, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]


class Context:
    """What the handler sees of its invocation.

    Attributes: ``input`` (the invocation's input, any JSON value), ``invocation_id``,
    ``agent``, ``attempt`` (1 for the first run), ``thread_id`` (or None), ``state`` (the
    thread's state dict, ``{}`` without a thread), ``resume`` (answers so far, a list) and
    ``api`` (an ``Api``: the platform's API with this run's token).
    """

    def __init__(self, request, events):
        thread = request.get("thread") or {}
        self.input = request.get("input")
        self.invocation_id = request.get("invocation_id")
        self.agent = request.get("agent")
        self.attempt = request.get("attempt", 1)
        self.thread_id = thread.get("id")
        self.state = thread.get("state") or {}
        self._saved_state = _json_text(self.state)
        self.resume = list(request.get("resume") or [])
        self.api = Api()
        self.store = Store(self.api)
        self._events = events
        self._asked = 0

    def log(self, message, level="info"):
        """Sends a log line. ``level`` is one of debug, info, warn, error."""
        if level not in _LEVELS:
            raise ValueError(f"log level must be one of {', '.join(_LEVELS)}, not {level!r}")
        self._events.emit({"type": "log", "level": level, "message": str(message)})

    def set_state(self, data):
        """Saves the thread state (any JSON value; a dict by convention) for the next run."""
        self.state = data
        self._saved_state = _json_text(data)
        self._events.emit({"type": "state", "data": data})

    def save_state(self):
        """Sends ``ctx.state`` if it was changed in place or assigned since it was last saved.

        Called for you when the handler returns and before a question, so
        ``ctx.state["count"] = 1`` is enough on a thread.
        """
        if self.thread_id is not None and _json_text(self.state) != self._saved_state:
            self.set_state(self.state)

    def artifact(self, path):
        """Declares a file the run produced (under /outputs) as an artifact."""
        self._events.emit({"type": "artifact", "path": str(path)})

    def ask(self, question):
        """Asks a human ``question`` (any JSON value) and returns the answer.

        The n-th call of a run returns ``resume[n]`` when the platform already has that
        answer. Otherwise it sends ``{"type": "interrupt", "value": question}`` and ends the
        run (exit 0); once answered, the agent starts again from the top with the answers
        in ``resume``, so code before an ``ask`` must be safe to repeat.
        """
        position = self._asked
        self._asked += 1
        if position < len(self.resume):
            return self.resume[position]
        self.save_state()
        self._events.emit({"type": "interrupt", "value": question})
        self._events.closed = True
        raise Interrupted(question)

    def invoke(self, agent, input=None, wait=None, idempotency_key=None, **options):
        """Invokes ``agent`` (a slug of this workspace) with ``input`` as a sub-agent of
        this run and returns the new invocation (a dict: ``id``, ``status``, ``output``…).

        With ``wait`` (seconds, at most 60) the platform holds the answer until the
        sub-invocation settles (finished, or waiting for input) or the time is up: check
        ``status``. ``options`` are other fields of the invoke body (``priority``,
        ``timeout_s``, ``metadata``, ``env``, …). Sub-agents nest at most the workspace's
        ``max_invocation_depth`` deep (``ApiError`` ``invocation_depth_exceeded``).
        """
        body = dict(options)
        body["input"] = input
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else None
        query = {"wait": wait} if wait else None
        path = "/v1/agents/" + urllib.parse.quote(str(agent), safe="") + "/invoke"
        return self.api.request("POST", path, body=body, query=query, headers=headers)


def _json_text(value):
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def _events_fd():
    raw = os.environ.get("AGENTD_EVENTS_FD", "3")
    try:
        fd = int(raw)
        os.fstat(fd)
    except (ValueError, OSError):
        sys.stderr.write(
            f"agentd: events fd {raw} is not open; run under agentd, or locally with 3>&1\n"
        )
        sys.exit(2)
    return fd


def _read_request():
    text = sys.stdin.read()
    # An empty stdin is allowed so that `python main.py < /dev/null` works while developing.
    request = json.loads(text) if text.strip() else {}
    if not isinstance(request, dict):
        raise ValueError("the invocation document on stdin must be a JSON object")
    return request


def run(handler):
    """Runs ``handler(ctx)`` for this invocation and exits; never returns."""
    events = _Events(_events_fd())
    code = 0
    try:
        ctx = Context(_read_request(), events)
        result = handler(ctx)
        if inspect.isawaitable(result):
            result = asyncio.run(_await(result))
        ctx.save_state()
        events.emit({"type": "output", "data": result})
    except Interrupted:
        pass
    except BaseException as err:  # noqa: BLE001 - every failure must be reported as an event
        if isinstance(err, SystemExit) and err.code in (None, 0):
            # sys.exit() without an error in agent code: a run that ends without output.
            code = 0
        else:
            code = err.code if isinstance(err, SystemExit) and isinstance(err.code, int) else 1
            events.emit({"type": "log", "level": "error", "message": traceback.format_exc()})
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


async def _await(awaitable):
    return await awaitable
