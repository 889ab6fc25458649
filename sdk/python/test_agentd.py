"""Tests of agentd.py: run a tiny agent as a subprocess with the events fd wired.

Run with: /usr/bin/python3 -m unittest discover -s sdk/python
"""

import http.server
import json
import os
import subprocess
import tempfile
import textwrap
import threading
import unittest

SDK_DIR = os.path.dirname(os.path.abspath(__file__))
PYTHON = "/usr/bin/python3"


def run_agent(body, request, events_fd=None, env_extra=None):
    """Runs an agent whose module body is `body`; returns (exit code, events, stdout)."""
    with tempfile.TemporaryDirectory() as tmp:
        main = os.path.join(tmp, "main.py")
        with open(main, "w") as f:
            f.write("import agentd\n" + textwrap.dedent(body))
        read_end, write_end = os.pipe()
        env = {"PYTHONPATH": SDK_DIR, "PATH": "/usr/bin:/bin", **(env_extra or {})}
        if events_fd is None:
            # The default: the events land on fd 3, as in the sandbox.
            def wire():
                os.dup2(write_end, 3)

            extra = {"preexec_fn": wire, "close_fds": False}
        else:
            env["AGENTD_EVENTS_FD"] = str(write_end)
            extra = {"pass_fds": (write_end,)}
        proc = subprocess.Popen(
            [PYTHON, main],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
            **extra,
        )
        os.close(write_end)
        stdout, _ = proc.communicate(json.dumps(request).encode(), timeout=30)
        with os.fdopen(read_end, "rb") as events:
            lines = events.read().decode().splitlines()
        return proc.returncode, [json.loads(line) for line in lines], stdout.decode()


def request(**overrides):
    doc = {
        "invocation_id": "inv_1",
        "agent": "echo",
        "input": {"name": "ada"},
        "thread": None,
        "resume": None,
        "attempt": 1,
    }
    doc.update(overrides)
    return doc


class RunTest(unittest.TestCase):
    def test_the_return_value_is_the_output(self):
        code, events, stdout = run_agent(
            """
            def handle(ctx):
                print("to stdout")
                ctx.log("echoing")
                return {"echo": ctx.input, "id": ctx.invocation_id, "attempt": ctx.attempt}
            agentd.run(handle)
            """,
            request(),
        )
        self.assertEqual(code, 0)
        self.assertEqual(stdout, "to stdout\n")
        self.assertEqual(
            events,
            [
                {"type": "log", "level": "info", "message": "echoing"},
                {"type": "output", "data": {"echo": {"name": "ada"}, "id": "inv_1", "attempt": 1}},
            ],
        )

    def test_an_exception_is_logged_with_its_traceback_and_exits_1(self):
        code, events, _ = run_agent(
            """
            def handle(ctx):
                raise RuntimeError("boom")
            agentd.run(handle)
            """,
            request(),
        )
        self.assertEqual(code, 1)
        self.assertEqual(len(events), 1)
        self.assertEqual(events[0]["level"], "error")
        self.assertIn("Traceback", events[0]["message"])
        self.assertIn("RuntimeError: boom", events[0]["message"])

    def test_ask_without_an_answer_interrupts_and_exits_0(self):
        body = """
            def handle(ctx):
                try:
                    first = ctx.ask({"question": "proceed?"})
                    second = ctx.ask("really?")
                except Exception:
                    return "swallowed"
                return [first, second]
            agentd.run(handle)
            """
        code, events, _ = run_agent(body, request())
        self.assertEqual(code, 0)
        self.assertEqual(events, [{"type": "interrupt", "value": {"question": "proceed?"}}])

        code, events, _ = run_agent(body, request(resume=["yes"]))
        self.assertEqual(code, 0)
        self.assertEqual(events, [{"type": "interrupt", "value": "really?"}])

        code, events, _ = run_agent(body, request(resume=["yes", "sure"]))
        self.assertEqual(code, 0)
        self.assertEqual(events, [{"type": "output", "data": ["yes", "sure"]}])

    def test_thread_state_is_read_and_saved(self):
        code, events, _ = run_agent(
            """
            def handle(ctx):
                count = ctx.state.get("count", 0) + 1
                ctx.set_state({"count": count})
                return ctx.thread_id
            agentd.run(handle)
            """,
            request(thread={"id": "thr_1", "state": {"count": 41}}),
            events_fd="env",
        )
        self.assertEqual(code, 0)
        self.assertEqual(
            events,
            [{"type": "state", "data": {"count": 42}}, {"type": "output", "data": "thr_1"}],
        )

    def test_state_changed_in_place_is_saved_on_return_and_before_a_question(self):
        body = """
            def handle(ctx):
                ctx.state["count"] = ctx.state.get("count", 0) + 1
                if ctx.input.get("ask"):
                    ctx.ask("more?")
                return ctx.state["count"]
            agentd.run(handle)
            """
        thread = {"id": "thr_1", "state": {"count": 1}}
        code, events, _ = run_agent(body, request(input={}, thread=thread))
        self.assertEqual(code, 0)
        self.assertEqual(events, [{"type": "state", "data": {"count": 2}}, {"type": "output", "data": 2}])
        code, events, _ = run_agent(body, request(input={"ask": True}, thread=thread))
        self.assertEqual(
            events,
            [{"type": "state", "data": {"count": 2}}, {"type": "interrupt", "value": "more?"}],
        )
        # Unchanged, or without a thread: nothing extra is sent.
        unchanged = 'agentd.run(lambda ctx: ctx.state.get("count"))'
        _, events, _ = run_agent(unchanged, request(thread=thread))
        self.assertEqual(events, [{"type": "output", "data": 1}])
        _, events, _ = run_agent(body, request(input={}))
        self.assertEqual(events, [{"type": "output", "data": 1}])

    def test_without_a_thread_state_is_empty_and_async_handlers_work(self):
        code, events, _ = run_agent(
            """
            async def handle(ctx):
                return {"state": ctx.state, "input": ctx.input}
            agentd.run(handle)
            """,
            request(input=None),
        )
        self.assertEqual(code, 0)
        self.assertEqual(events, [{"type": "output", "data": {"state": {}, "input": None}}])


class FakeApi:
    """An HTTP server on 127.0.0.1 standing in for the platform: it records each request and
    answers with the next (status, JSON body) of `answers`."""

    def __init__(self, answers):
        self.seen = []
        answers = list(answers)
        seen = self.seen

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                seen.append({"method": self.command, "path": self.path, "headers": dict(self.headers), "body": body})
                status, answer = answers.pop(0)
                data = json.dumps(answer).encode()
                self.send_response(status)
                kind = "application/json" if status < 400 else "application/problem+json"
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = http.server.HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = "http://127.0.0.1:%d" % self.server.server_port

    def env(self):
        return {"AGENTD_API_URL": self.url, "AGENTD_TOKEN": "agr_test"}

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class ApiTest(unittest.TestCase):
    def test_invoke_sends_the_runs_token_and_returns_the_sub_invocation(self):
        child = {"id": "inv_2", "status": "succeeded", "output": {"echo": 1}}
        api = FakeApi([(200, child)])
        self.addCleanup(api.close)
        code, events, _ = run_agent(
            """
            def handle(ctx):
                done = ctx.invoke("echo", {"n": 1}, wait=30, priority=3, idempotency_key="k1")
                return done["output"]
            agentd.run(handle)
            """,
            request(),
            env_extra={**api.env(), "HTTP_PROXY": "http://127.0.0.1:9", "http_proxy": "http://127.0.0.1:9"},
        )
        self.assertEqual((code, events), (0, [{"type": "output", "data": {"echo": 1}}]))
        [seen] = api.seen
        self.assertEqual((seen["method"], seen["path"]), ("POST", "/v1/agents/echo/invoke?wait=30"))
        self.assertEqual(seen["headers"]["Authorization"], "Bearer agr_test")
        self.assertEqual(seen["headers"]["Idempotency-Key"], "k1")
        self.assertEqual(seen["body"], {"input": {"n": 1}, "priority": 3})

    def test_a_refusal_raises_api_error_with_the_problems_code(self):
        problem = {"status": 401, "code": "run_token_not_accepted", "detail": "not here"}
        api = FakeApi([(401, problem)])
        self.addCleanup(api.close)
        code, events, _ = run_agent(
            """
            def handle(ctx):
                try:
                    ctx.api.request("POST", "/v1/api-keys", {"name": "x"})
                except agentd.ApiError as err:
                    return [err.status, err.code, err.detail]
            agentd.run(handle)
            """,
            request(),
            env_extra=api.env(),
        )
        self.assertEqual((code, events), (0, [{"type": "output", "data": [401, "run_token_not_accepted", "not here"]}]))

    def test_without_the_api_variables_a_call_says_so(self):
        code, events, _ = run_agent(
            """
            def handle(ctx):
                try:
                    ctx.invoke("echo", {})
                except agentd.ApiError as err:
                    return err.code
            agentd.run(handle)
            """,
            request(),
        )
        self.assertEqual((code, events), (0, [{"type": "output", "data": "no_api"}]))


if __name__ == "__main__":
    unittest.main()
