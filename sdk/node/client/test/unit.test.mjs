// Tests without an agentd server: the SSE parser, reconnects with Last-Event-ID, retries
// and Retry-After, typed errors, and the tar writer (read back by Python's tarfile).
// Run with: node --test sdk/node/client/test/

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import zlib from "node:zlib";

import {
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
  packDir,
  parseRetryAfter,
  readManifest,
  slugify,
  writeTar,
} from "../index.mjs";

/** A local HTTP server whose requests go to `handler(req, res, n)`; every request is kept. */
async function fakeServer(handler) {
  const requests = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      requests.push({ method: req.method, url: req.url, headers: req.headers, body: Buffer.concat(chunks).toString() });
      handler(req, res, requests.length);
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  return {
    url,
    requests,
    close: () => {
      server.closeAllConnections();
      return new Promise((resolve) => server.close(resolve));
    },
  };
}

function json(res, status, body, headers = {}) {
  const data = JSON.stringify(body);
  res.writeHead(status, { "content-type": "application/json", "content-length": Buffer.byteLength(data), ...headers });
  res.end(data);
}

const problem = (status, code, detail = "x") => ({
  type: `urn:agentd:problem:${code}`,
  title: "T",
  status,
  detail,
  code,
  request_id: "req_1",
});

/** A client whose pauses are recorded instead of slept. */
function recording(url, options = {}) {
  const pauses = [];
  const client = new Client(url, "agd_test", { sleep: async (ms) => void pauses.push(ms), ...options });
  return { client, pauses };
}

const sse = (events) =>
  events.map(([seq, kind]) => `id: ${seq}\nevent: ${kind}\ndata: ${JSON.stringify({ seq, kind, message: `m${seq}` })}\n\n`).join("");

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

test("the SSE parser follows the rules for fields and line endings", () => {
  const p = new SSEParser();
  const out = p.feed(
    ": keep-alive\n\n" +
      'id: 1\nevent: log\ndata: {"a":\ndata:1}\n ignored: x\n\n' +
      "id: 2\r\nevent: status\r\ndata: x\r\n\r\n" +
      "id: 3\revent: end\rdata:no-space\r\r" +
      "event: nodata\n\n" +
      "data: plain\n\n",
  );
  assert.deepEqual(
    out.map((m) => [m.event, m.data, m.id]),
    [
      ["log", '{"a":\n1}', "1"],
      ["status", "x", "2"],
      ["end", "no-space", "3"],
      ["message", "plain", "3"],
    ],
  );
  assert.equal(p.lastEventId, "3");
});

test("bytes split anywhere, inside a character or a CRLF, give the same messages", () => {
  const bytes = Buffer.from('id: 7\nevent: log\ndata: {"m": "héllo ✓"}\r\n\r\nid: 8\ndata: two\n\n');
  const whole = new SSEParser().feed(bytes);
  for (const size of [1, 2, 3, 5]) {
    const p = new SSEParser();
    const out = [];
    for (let i = 0; i < bytes.length; i += size) out.push(...p.feed(bytes.subarray(i, i + size)));
    assert.deepEqual(out, whole, `size ${size}`);
  }
  assert.deepEqual(JSON.parse(whole[0].data), { m: "héllo ✓" });
  assert.equal(whole.length, 2);
});

test("a dropped stream resumes after the last event, with nothing lost or repeated", async () => {
  const server = await fakeServer((req, res, n) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    if (n === 1) {
      res.write(sse([[1, "status"], [2, "log"]]) + 'id: 3\nevent: log\ndata: {"seq"');
      setTimeout(() => req.socket.destroy(), 50); // mid-message: event 3 never arrived whole
    } else {
      // Resent from after Last-Event-ID; 2 again must be skipped anyway.
      res.end(sse([[2, "log"], [3, "log"], [4, "status"]]) + 'event: end\ndata: {"status":"succeeded","error":null}\n\n');
    }
  });
  try {
    const { client, pauses } = recording(server.url);
    const got = await collect(client.invocations.events("inv_1"));
    assert.deepEqual(got.map((e) => e.seq ?? null), [1, 2, 3, 4, null]);
    assert.deepEqual(got.at(-1), { kind: "end", status: "succeeded", error: null });
    assert.equal(server.requests.length, 2);
    assert.equal(server.requests[0].headers["last-event-id"], undefined);
    assert.equal(server.requests[1].headers["last-event-id"], "2");
    assert.equal(server.requests[0].url, "/v1/invocations/inv_1/events");
    assert.equal(server.requests[0].headers.authorization, "Bearer agd_test");
    assert.equal(pauses.length, 1);
  } finally {
    await server.close();
  }
});

test("after is sent as Last-Event-ID, a refusal is thrown, and an error event too", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) json(res, 404, problem(404, "not_found"));
    else {
      res.writeHead(200, { "content-type": "text/event-stream" });
      res.end('event: error\ndata: {"code":"internal","detail":"store down"}\n\n');
    }
  });
  try {
    const { client } = recording(server.url);
    await assert.rejects(collect(client.invocations.events("inv_1", { after: 5 })), (e) => e instanceof NotFound && e.code === "not_found");
    assert.equal(server.requests[0].headers["last-event-id"], "5");
    await assert.rejects(collect(client.invocations.events("inv_1")), (e) => e instanceof StreamError && e.code === "internal");
  } finally {
    await server.close();
  }
});

test("reconnects are bounded, and a silent stream counts as dropped", async () => {
  const server = await fakeServer((req, res) => {
    res.writeHead(200, { "content-type": "text/event-stream" });
    res.flushHeaders(); // then silence: not even a keep-alive comment
  });
  try {
    const { client } = recording(server.url, { maxRetries: 0 });
    await assert.rejects(collect(client.invocations.events("inv_1", { maxReconnects: 2, readTimeoutMs: 200 })), TransportError);
    assert.equal(server.requests.length, 3);
  } finally {
    await server.close();
  }
});

test("429 waits for Retry-After, then succeeds", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) json(res, 429, problem(429, "requests_per_second"), { "retry-after": "2" });
    else json(res, 200, { data: [], next_cursor: null });
  });
  try {
    const { client, pauses } = recording(server.url);
    assert.deepEqual(await client.agents.list(), { data: [], next_cursor: null });
    assert.deepEqual(pauses, [2000]);
  } finally {
    await server.close();
  }
});

test("503 backs off exponentially with jitter, then gives up", async () => {
  const server = await fakeServer((req, res) => json(res, 503, problem(503, "unavailable")));
  try {
    const { client, pauses } = recording(server.url, { maxRetries: 4, backoffBaseMs: 1000, backoffMaxMs: 4000 });
    await assert.rejects(client.agents.get("a"), (e) => e instanceof ServiceUnavailable && e.status === 503);
    assert.equal(server.requests.length, 5);
    [1000, 2000, 4000, 4000].forEach((ceiling, i) => assert.ok(pauses[i] >= ceiling / 2 && pauses[i] <= ceiling, `${pauses[i]}`));
  } finally {
    await server.close();
  }
});

test("a Retry-After longer than allowed is thrown at once", async () => {
  const server = await fakeServer((req, res) => json(res, 429, problem(429, "invocations_per_minute"), { "retry-after": "600" }));
  try {
    const { client, pauses } = recording(server.url, { maxRetryAfterS: 30 });
    await assert.rejects(client.agents.list(), (e) => e instanceof RateLimited && e.retryAfter === 600);
    assert.equal(server.requests.length, 1);
    assert.deepEqual(pauses, []);
  } finally {
    await server.close();
  }
});

test("a lost connection is retried for GET and invoke (same key) but not for other POSTs", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n % 2 === 1) req.socket.destroy();
    else json(res, 202, { id: "inv_1", status: "queued" });
  });
  try {
    const { client } = recording(server.url);
    assert.equal((await client.invocations.get("inv_1")).id, "inv_1");
    assert.equal((await client.invoke("echo", { a: 1 })).status, "queued");
    await assert.rejects(client.threads.create(), TransportError);
    assert.equal(server.requests.length, 5);
    const [first, second] = [server.requests[2], server.requests[3]];
    assert.match(first.headers["idempotency-key"], /^sdk-[0-9a-f]{32}$/);
    assert.equal(second.headers["idempotency-key"], first.headers["idempotency-key"]);
    assert.deepEqual(JSON.parse(second.body), { input: { a: 1 } });
    assert.equal(second.url, "/v1/agents/echo/invoke");
  } finally {
    await server.close();
  }
});

test("a given idempotency key, wait and options are sent", async () => {
  const server = await fakeServer((req, res) => json(res, 200, { id: "inv_1", status: "succeeded" }));
  try {
    const { client } = recording(server.url);
    await client.invoke("echo", null, { wait: 90, idempotencyKey: "order-42", threadId: "thr_1", priority: 3 });
    const request = server.requests[0];
    assert.equal(request.url, "/v1/agents/echo/invoke?wait=60");
    assert.equal(request.headers["idempotency-key"], "order-42");
    assert.deepEqual(JSON.parse(request.body), { input: null, thread_id: "thr_1", priority: 3 });
  } finally {
    await server.close();
  }
});

test("problem documents become typed errors", async () => {
  const server = await fakeServer((req, res, n) => {
    if (n === 1) json(res, 409, problem(409, "thread_busy", "a run is going"), { "content-type": "application/problem+json" });
    else {
      res.writeHead(502, { "content-type": "text/html" });
      res.end("<html>bad gateway</html>");
    }
  });
  try {
    const { client } = recording(server.url, { maxRetries: 0 });
    const e = await client.threads.delete("thr_1").catch((err) => err);
    assert.ok(e instanceof Conflict && e instanceof APIError);
    assert.deepEqual([e.status, e.code, e.detail, e.requestId], [409, "thread_busy", "a run is going", "req_1"]);
    assert.match(e.message, /thread_busy/);
    const gateway = await client.agents.list().catch((err) => err);
    assert.ok(gateway instanceof APIError);
    assert.deepEqual([gateway.status, gateway.code], [502, null]);
  } finally {
    await server.close();
  }
});

test("the environment gives the server and key, which is never shown", async () => {
  const saved = [process.env.AGENTD_API_URL, process.env.AGENTD_API_KEY];
  process.env.AGENTD_API_URL = "http://127.0.0.1:9/";
  process.env.AGENTD_API_KEY = "agd_env";
  try {
    const client = new Client();
    assert.equal(client.baseUrl, "http://127.0.0.1:9");
    assert.equal(client.apiKey, "agd_env");
    const { inspect } = await import("node:util");
    assert.ok(!inspect(client).includes("agd_env"));
    assert.ok(!Object.keys(client).includes("apiKey"));
  } finally {
    for (const [name, value] of [["AGENTD_API_URL", saved[0]], ["AGENTD_API_KEY", saved[1]]]) {
      if (value === undefined) delete process.env[name];
      else process.env[name] = value;
    }
  }
  assert.equal(new Client("http://h/prefix", "k").url(["v1", "agents", "a/b?c"], { x: true, y: undefined }), "http://h/prefix/v1/agents/a%2Fb%3Fc?x=true");
  assert.throws(() => new Client("http://h", "k").url(["v1", ".."]));
  assert.equal(parseRetryAfter(" 3 "), 3);
  assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:00 GMT"), 0);
  assert.equal(parseRetryAfter("soon"), null);
});

function makeFolder() {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-client-tar-"));
  const files = {
    "agent.toml": 'name = "My Agent v2"\ntags = ["a", "b"]\nruntime = "shell"\nentrypoint = "run.sh"\n[env]\nname = "no"\n',
    "run.sh": "#!/bin/sh\necho hi\n",
    "lib/util.py": "X = 1\n",
    "lib/__pycache__/util.pyc": "junk",
    ".git/HEAD": "ref",
    "node_modules/x/index.js": "1",
    [`${"b".repeat(120)}.txt`]: "long name",
    [`${"d".repeat(90)}/${"e".repeat(90)}/f.txt`]: "needs the ustar prefix",
    [`${"g".repeat(200)}/${"h".repeat(99)}.txt`]: "needs pax",
  };
  for (const [name, text] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(root, name)), { recursive: true });
    fs.writeFileSync(path.join(root, name), text);
  }
  fs.chmodSync(path.join(root, "run.sh"), 0o700);
  fs.symlinkSync("lib/util.py", path.join(root, "link.py"));
  return { root, files };
}

const LIST_WITH_TARFILE = `
import json, sys, tarfile
out = []
with tarfile.open(sys.argv[1], "r:gz") as tar:
    for m in tar.getmembers():
        data = tar.extractfile(m).read().decode() if m.isfile() else None
        out.append([m.name, m.type.decode(), oct(m.mode), m.mtime, m.uid, m.gid, m.linkname, data])
print(json.dumps(out))
`;

test("the tar writer packs with the CLI's rules, reproducibly, and Python's tarfile reads it", () => {
  const { root, files } = makeFolder();
  const out = path.join(root, "..", `${path.basename(root)}.tar.gz`);
  try {
    const bundle = packDir(root);
    assert.deepEqual(packDir(root), bundle);
    assert.deepEqual([...bundle.subarray(0, 2)], [0x1f, 0x8b]);
    fs.writeFileSync(out, bundle);
    const listed = spawnSync("/usr/bin/python3", ["-c", LIST_WITH_TARFILE, out], { encoding: "utf8" });
    assert.equal(listed.status, 0, listed.stderr);
    const members = JSON.parse(listed.stdout);
    const names = members.map((m) => m[0]);
    const expected = [
      "agent.toml",
      `${"b".repeat(120)}.txt`,
      "d".repeat(90),
      `${"d".repeat(90)}/${"e".repeat(90)}`,
      `${"d".repeat(90)}/${"e".repeat(90)}/f.txt`,
      "g".repeat(200),
      `${"g".repeat(200)}/${"h".repeat(99)}.txt`,
      "lib",
      "lib/util.py",
      "link.py",
      "node_modules",
      "node_modules/x",
      "node_modules/x/index.js",
      "run.sh",
    ];
    assert.deepEqual(names, expected);
    const by = Object.fromEntries(members.map((m) => [m[0], m]));
    assert.equal(by["run.sh"][2], "0o755");
    assert.equal(by["agent.toml"][2], "0o644");
    assert.deepEqual(by.lib.slice(1, 3), ["5", "0o755"]);
    assert.deepEqual([by["link.py"][1], by["link.py"][6]], ["2", "lib/util.py"]);
    assert.ok(members.every((m) => m[3] === 0 && m[4] === 0 && m[5] === 0));
    for (const [name, text] of Object.entries(files)) {
      if (by[name]) assert.equal(by[name][7], text, name);
    }
    assert.deepEqual(readManifest(root), { name: "My Agent v2", tags: ["a", "b"], runtime: "shell", entrypoint: "run.sh" });
    assert.equal(slugify("My Agent  v2!"), "my-agent-v2");
    assert.equal(slugify("!!!"), null);
  } finally {
    fs.rmSync(root, { recursive: true, force: true });
    fs.rmSync(out, { force: true });
  }
});

test("a link out of the folder is refused, and an empty tar is two zero blocks", () => {
  for (const target of ["/etc/passwd", "../outside", "lib/../../x"]) {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-client-link-"));
    try {
      fs.mkdirSync(path.join(root, "lib"));
      fs.symlinkSync(target, path.join(root, "bad"));
      assert.throws(() => packDir(root), BundleError, target);
    } finally {
      fs.rmSync(root, { recursive: true, force: true });
    }
  }
  assert.deepEqual(writeTar([]), Buffer.alloc(1024));
  assert.deepEqual(zlib.gunzipSync(zlib.gzipSync(writeTar([]))), Buffer.alloc(1024));
});
