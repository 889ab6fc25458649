"""Tests without an agentd server: the SSE parser, reconnects with Last-Event-ID, retries and
Retry-After, typed errors, and the bundle packer. A tiny local HTTP server plays the API."""

from __future__ import annotations

import http.server
import io
import json
import os
import socket
import tarfile
import tempfile
import threading
import unittest
from typing import Callable, List

from agentd_client import (
    APIError,
    BundleError,
    Client,
    Conflict,
    NotFound,
    RateLimited,
    ServiceUnavailable,
    SSEParser,
    StreamError,
    TransportError,
    pack_dir,
    slugify,
)
from agentd_client.errors import parse_retry_after


class FakeServer:
    """A threaded HTTP server whose every request goes to ``handler(request)``.

    ``handler`` gets the ``BaseHTTPRequestHandler`` and answers through it (or drops the
    connection); every request's method, path, headers and body are kept in ``requests``.
    """

    def __init__(self, handler: Callable[[http.server.BaseHTTPRequestHandler, int], None]) -> None:
        self.requests: List[dict] = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def _any(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append(
                    {"method": self.command, "path": self.path, "headers": self.headers, "body": body}
                )
                handler(self, len(outer.requests))

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _any

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


def answer(h, status, body=None, headers=None, content_type="application/json"):
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    h.send_response(status)
    h.send_header("Content-Type", content_type)
    h.send_header("Content-Length", str(len(data)))
    for k, v in (headers or {}).items():
        h.send_header(k, v)
    h.end_headers()
    h.wfile.write(data)


def drop(h):
    """Closes the connection without an answer."""
    h.close_connection = True
    h.connection.shutdown(socket.SHUT_RDWR)


def problem(status, code, detail="x"):
    return {"type": f"urn:agentd:problem:{code}", "title": "T", "status": status, "detail": detail,
            "code": code, "request_id": "req_1"}


class RecordingClient(Client):
    def __init__(self, url, **kw):
        super().__init__(url, "agd_test", **kw)
        self.pauses: List[float] = []
        self.sleep = self.pauses.append


class SSEParserTest(unittest.TestCase):
    def test_messages_fields_and_line_endings(self):
        p = SSEParser()
        text = (
            b": keep-alive\n\n"
            b"id: 1\nevent: log\ndata: {\"a\":\ndata:1}\n ignored: x\n\n"
            b"id: 2\r\nevent: status\r\ndata: x\r\n\r\n"
            b"id: 3\revent: end\rdata:no-space\r\r"
            b"event: nodata\n\n"
            b"data: plain\n\n"
        )
        out = p.feed(text)
        self.assertEqual([(m.event, m.data, m.id) for m in out], [
            ("log", '{"a":\n1}', "1"),
            ("status", "x", "2"),
            ("end", "no-space", "3"),
            ("message", "plain", "3"),
        ])
        self.assertEqual(p.last_event_id, "3")

    def test_bytes_split_anywhere_give_the_same_messages(self):
        text = "id: 7\nevent: log\ndata: {\"m\": \"héllo ✓\"}\r\n\r\nid: 8\ndata: two\n\n".encode()
        whole = [(m.event, m.data, m.id) for m in SSEParser().feed(text)]
        for size in (1, 2, 3, 5):
            p = SSEParser()
            out = []
            for i in range(0, len(text), size):
                out += p.feed(text[i:i + size])
            self.assertEqual([(m.event, m.data, m.id) for m in out], whole, size)
        self.assertEqual(json.loads(whole[0][1]), {"m": "héllo ✓"})

    def test_a_message_is_only_dispatched_by_a_blank_line(self):
        p = SSEParser()
        self.assertEqual(p.feed(b"data: a\n"), [])
        self.assertEqual([m.data for m in p.feed(b"\n")], ["a"])


def sse(events):
    out = b""
    for seq, kind in events:
        data = json.dumps({"seq": seq, "kind": kind, "message": f"m{seq}"})
        out += f"id: {seq}\nevent: {kind}\ndata: {data}\n\n".encode()
    return out


class EventsReconnectTest(unittest.TestCase):
    def test_a_dropped_stream_resumes_after_the_last_event_without_loss_or_repeat(self):
        def handler(h, n):
            h.send_response(200)
            h.send_header("Content-Type", "text/event-stream")
            h.end_headers()
            if n == 1:
                h.wfile.write(sse([(1, "status"), (2, "log")]) + b"id: 3\nevent: log\ndata: {\"seq\"")
                h.wfile.flush()
                drop(h)  # mid-message: event 3 was never whole
            else:
                # The server resends from after Last-Event-ID; 2 again must be skipped anyway.
                h.wfile.write(sse([(2, "log"), (3, "log"), (4, "status")]))
                h.wfile.write(b'event: end\ndata: {"status":"succeeded","error":null}\n\n')
                h.close_connection = True

        server = FakeServer(handler)
        try:
            client = RecordingClient(server.url)
            got = list(client.invocations.events("inv_1"))
        finally:
            server.close()
        self.assertEqual([e.get("seq") for e in got], [1, 2, 3, 4, None])
        self.assertEqual(got[-1], {"kind": "end", "status": "succeeded", "error": None})
        self.assertEqual(len(server.requests), 2)
        self.assertNotIn("Last-Event-ID", server.requests[0]["headers"])
        self.assertEqual(server.requests[1]["headers"].get("Last-Event-ID"), "2")
        self.assertEqual(server.requests[0]["path"], "/v1/invocations/inv_1/events")
        self.assertEqual(server.requests[0]["headers"]["Authorization"], "Bearer agd_test")
        self.assertEqual(len(client.pauses), 1)

    def test_after_is_sent_as_last_event_id_and_a_refusal_is_raised(self):
        server = FakeServer(lambda h, n: answer(h, 404, problem(404, "not_found")))
        try:
            with self.assertRaises(NotFound) as caught:
                list(RecordingClient(server.url).invocations.events("inv_1", after=5))
        finally:
            server.close()
        self.assertEqual(caught.exception.code, "not_found")
        self.assertEqual(server.requests[0]["headers"].get("Last-Event-ID"), "5")

    def test_a_stream_error_event_is_raised(self):
        def handler(h, n):
            answer(h, 200, b'event: error\ndata: {"code":"internal","detail":"store down"}\n\n',
                   content_type="text/event-stream")

        server = FakeServer(handler)
        try:
            with self.assertRaises(StreamError) as caught:
                list(RecordingClient(server.url).invocations.events("inv_1"))
        finally:
            server.close()
        self.assertEqual(caught.exception.code, "internal")

    def test_reconnects_are_bounded(self):
        server = FakeServer(lambda h, n: drop(h))
        try:
            client = RecordingClient(server.url, max_retries=0)
            with self.assertRaises(TransportError):
                list(client.invocations.events("inv_1", max_reconnects=3))
        finally:
            server.close()
        self.assertEqual(len(server.requests), 4)


class RetryTest(unittest.TestCase):
    def test_429_waits_for_retry_after_then_succeeds(self):
        def handler(h, n):
            if n == 1:
                answer(h, 429, problem(429, "requests_per_second"), {"Retry-After": "2"})
            else:
                answer(h, 200, {"data": [], "next_cursor": None})

        server = FakeServer(handler)
        try:
            client = RecordingClient(server.url)
            self.assertEqual(client.agents.list(), {"data": [], "next_cursor": None})
        finally:
            server.close()
        self.assertEqual(client.pauses, [2.0])

    def test_503_backs_off_exponentially_with_jitter_and_gives_up(self):
        server = FakeServer(lambda h, n: answer(h, 503, problem(503, "unavailable")))
        try:
            client = RecordingClient(server.url, max_retries=4, backoff_base=1.0, backoff_max=4.0)
            with self.assertRaises(ServiceUnavailable) as caught:
                client.agents.get("a")
        finally:
            server.close()
        self.assertEqual(len(server.requests), 5)
        self.assertEqual(caught.exception.status, 503)
        for pause, ceiling in zip(client.pauses, [1, 2, 4, 4]):
            self.assertTrue(ceiling / 2 <= pause <= ceiling, (pause, ceiling))

    def test_a_retry_after_longer_than_allowed_is_raised_at_once(self):
        server = FakeServer(lambda h, n: answer(h, 429, problem(429, "invocations_per_minute"), {"Retry-After": "600"}))
        try:
            client = RecordingClient(server.url, max_retry_after=30)
            with self.assertRaises(RateLimited) as caught:
                client.agents.list()
        finally:
            server.close()
        self.assertEqual((len(server.requests), client.pauses), (1, []))
        self.assertEqual(caught.exception.retry_after, 600.0)

    def test_a_lost_connection_is_retried_for_get_and_invoke_but_not_other_posts(self):
        def handler(h, n):
            if n % 2 == 1:
                drop(h)
            else:
                answer(h, 202, {"id": "inv_1", "status": "queued"})

        server = FakeServer(handler)
        try:
            client = RecordingClient(server.url)
            self.assertEqual(client.invocations.get("inv_1")["id"], "inv_1")
            self.assertEqual(client.invoke("echo", {"a": 1})["status"], "queued")
            with self.assertRaises(TransportError):
                client.threads.create()
        finally:
            server.close()
        self.assertEqual(len(server.requests), 5)
        first, second = server.requests[2], server.requests[3]
        key = first["headers"].get("Idempotency-Key")
        self.assertTrue(key and key.startswith("sdk-"), key)
        self.assertEqual(second["headers"].get("Idempotency-Key"), key)
        self.assertEqual(json.loads(second["body"]), {"input": {"a": 1}})
        self.assertEqual(second["path"], "/v1/agents/echo/invoke")

    def test_a_given_idempotency_key_and_wait_are_sent(self):
        server = FakeServer(lambda h, n: answer(h, 200, {"id": "inv_1", "status": "succeeded"}))
        try:
            RecordingClient(server.url).invoke("echo", None, wait=90, idempotency_key="order-42", thread_id="thr_1")
        finally:
            server.close()
        request = server.requests[0]
        self.assertEqual(request["path"], "/v1/agents/echo/invoke?wait=60")
        self.assertEqual(request["headers"]["Idempotency-Key"], "order-42")
        self.assertEqual(json.loads(request["body"]), {"input": None, "thread_id": "thr_1"})

    def test_retry_after_as_a_date(self):
        self.assertEqual(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), 0.0)
        self.assertEqual(parse_retry_after(" 3 "), 3.0)
        self.assertIsNone(parse_retry_after("soon"))
        self.assertIsNone(parse_retry_after(None))


class ErrorsTest(unittest.TestCase):
    def test_problem_documents_become_typed_errors(self):
        def handler(h, n):
            if n == 1:
                answer(h, 409, problem(409, "thread_busy", "a run is going"), {"x-request-id": "req_h"},
                       content_type="application/problem+json")
            else:
                answer(h, 502, b"<html>bad gateway</html>", content_type="text/html")

        server = FakeServer(handler)
        try:
            client = RecordingClient(server.url, max_retries=0)
            with self.assertRaises(Conflict) as caught:
                client.threads.delete("thr_1")
            with self.assertRaises(APIError) as gateway:
                client.agents.list()
        finally:
            server.close()
        e = caught.exception
        self.assertEqual((e.status, e.code, e.detail, e.request_id), (409, "thread_busy", "a run is going", "req_1"))
        self.assertIn("thread_busy", str(e))
        self.assertEqual((gateway.exception.status, gateway.exception.code), (502, None))

    def test_the_environment_gives_the_server_and_key(self):
        old = {k: os.environ.get(k) for k in ("AGENTD_API_URL", "AGENTD_API_KEY")}
        os.environ.update({"AGENTD_API_URL": "http://127.0.0.1:9/", "AGENTD_API_KEY": "agd_env"})
        try:
            client = Client()
            self.assertEqual((client.base_url, client.api_key), ("http://127.0.0.1:9", "agd_env"))
            self.assertNotIn("agd_env", repr(client))
        finally:
            for k, v in old.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v

    def test_path_segments_are_encoded(self):
        client = Client("http://h/prefix", "k")
        self.assertEqual(client._url(["v1", "agents", "a/b?c"], {"x": True, "y": None}),
                         "http://h/prefix/v1/agents/a%2Fb%3Fc?x=true")
        with self.assertRaises(Exception):
            client._url(["v1", ".."], None)


class BundleTest(unittest.TestCase):
    def make_folder(self, root):
        os.makedirs(os.path.join(root, "lib", "__pycache__"))
        os.makedirs(os.path.join(root, ".git"))
        os.makedirs(os.path.join(root, "node_modules", "x"))
        files = {
            "agent.toml": 'name = "My Agent v2"\nruntime = "shell"\nentrypoint = "run.sh"\n',
            "run.sh": "#!/bin/sh\necho hi\n",
            "lib/util.py": "X = 1\n",
            "lib/__pycache__/util.cpython-311.pyc": "junk",
            ".git/HEAD": "ref",
            "node_modules/x/index.js": "1",
            "b" * 120 + ".txt": "long name",
        }
        for name, text in files.items():
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        os.chmod(os.path.join(root, "run.sh"), 0o700)
        os.symlink("lib/util.py", os.path.join(root, "link.py"))

    def test_the_folder_packs_reproducibly_with_the_clis_rules(self):
        with tempfile.TemporaryDirectory() as root:
            self.make_folder(root)
            data = pack_dir(root)
            self.assertEqual(pack_dir(root), data)
            self.assertEqual(data[:2], b"\x1f\x8b")
            with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
                members = tar.getmembers()
                names = [m.name for m in members]
                self.assertEqual(names, [
                    "agent.toml", "b" * 120 + ".txt", "lib", "lib/util.py", "link.py",
                    "node_modules", "node_modules/x", "node_modules/x/index.js", "run.sh",
                ])
                by = {m.name: m for m in members}
                self.assertEqual(by["run.sh"].mode, 0o755)
                self.assertEqual(by["agent.toml"].mode, 0o644)
                self.assertTrue(by["lib"].isdir() and by["lib"].mode == 0o755)
                self.assertEqual((by["link.py"].issym(), by["link.py"].linkname), (True, "lib/util.py"))
                self.assertTrue(all(m.mtime == 0 and m.uid == 0 and m.gid == 0 for m in members))
                self.assertEqual(tar.extractfile("lib/util.py").read(), b"X = 1\n")

    def test_links_out_of_the_folder_are_refused(self):
        for target in ("/etc/passwd", "../outside", "lib/../../x"):
            with tempfile.TemporaryDirectory() as root:
                os.makedirs(os.path.join(root, "lib"))
                os.symlink(target, os.path.join(root, "bad"))
                with self.assertRaises(BundleError):
                    pack_dir(root)

    def test_slugs_are_made_as_the_cli_makes_them(self):
        self.assertEqual(slugify("My Agent  v2!"), "my-agent-v2")
        self.assertEqual(slugify("python-echo"), "python-echo")
        self.assertIsNone(slugify("!!!"))

    def test_the_manifest_reader_without_tomllib(self):
        from agentd_client.bundle import _read_top_level

        text = 'name = "a \\"b\\""\ntags = ["x", "y"]\ndescription = "d"\n[env]\nname = "no"\n'
        self.assertEqual(_read_top_level(text), {"name": 'a "b"', "tags": ["x", "y"], "description": "d"})


if __name__ == "__main__":
    unittest.main()
