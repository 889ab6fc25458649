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
- ``ctx.ask(question)`` pauses for a human: see ``Context.ask``.

The handler may also be ``async def``; it is then run with ``asyncio.run``.
stdout and stderr stay yours: the platform captures them as log lines.
"""

import asyncio
import inspect
import json
import os
import sys
import traceback

__all__ = ["run", "Context", "Interrupted"]

_LEVELS = ("debug", "info", "warn", "error")


class Interrupted(BaseException):
    """Raised by ``ctx.ask`` to stop the handler once a question has been sent.

    It derives from BaseException, like SystemExit, so ``except Exception`` in agent code
    does not swallow it. ``run`` catches it and exits 0.
    """


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
    thread's state dict, ``{}`` without a thread) and ``resume`` (answers so far, a list).
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
