// Tests of the Node SDK: run a tiny agent as a child process with fd 3 wired to a pipe,
// importing "agentd" through a node_modules folder laid out as in the sandbox.
// Run with: node --test sdk/node/

import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import fs from "node:fs";
import http from "node:http";
import os from "node:os";
import path from "node:path";
import { test } from "node:test";
import { fileURLToPath } from "node:url";

const SDK_DIR = path.dirname(fileURLToPath(import.meta.url));

function runAgent(body, request) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-node-test-"));
  try {
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(SDK_DIR, "agentd"), path.join(dir, "node_modules", "agentd"));
    fs.writeFileSync(path.join(dir, "main.mjs"), `import { run } from "agentd";\n${body}`);
    const child = spawnSync("/usr/bin/node", [path.join(dir, "main.mjs")], {
      input: JSON.stringify(request),
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      env: { PATH: "/usr/bin:/bin" },
      timeout: 30_000,
    });
    const events = child.output[3]
      .toString()
      .split("\n")
      .filter((line) => line !== "")
      .map((line) => JSON.parse(line));
    return { code: child.status, events, stdout: child.stdout.toString(), stderr: child.stderr.toString() };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function request(overrides = {}) {
  return {
    invocation_id: "inv_1",
    agent: "greet",
    input: { name: "ada" },
    thread: null,
    resume: null,
    attempt: 1,
    ...overrides,
  };
}

test("the returned value is the output", () => {
  const { code, events, stdout } = runAgent(
    `run(async (ctx) => {
       console.log("to stdout");
       ctx.log("greeting");
       return { hello: ctx.input.name, id: ctx.invocationId, attempt: ctx.attempt };
     });`,
    request(),
  );
  assert.equal(code, 0);
  assert.equal(stdout, "to stdout\n");
  assert.deepEqual(events, [
    { type: "log", level: "info", message: "greeting" },
    { type: "output", data: { hello: "ada", id: "inv_1", attempt: 1 } },
  ]);
});

test("a thrown error is logged with its stack and exits 1", () => {
  const { code, events } = runAgent(`run(() => { throw new Error("boom"); });`, request());
  assert.equal(code, 1);
  assert.equal(events.length, 1);
  assert.equal(events[0].level, "error");
  assert.match(events[0].message, /Error: boom\n\s+at /);
});

test("ask interrupts until answered, then returns the answers in order", () => {
  const body = `run((ctx) => {
    try {
      return [ctx.ask({ question: "proceed?" }), ctx.ask("really?")];
    } catch {
      return "swallowed";
    }
  });`;
  let result = runAgent(body, request());
  assert.equal(result.code, 0);
  assert.deepEqual(result.events, [{ type: "interrupt", value: { question: "proceed?" } }]);

  result = runAgent(body, request({ resume: ["yes"] }));
  assert.equal(result.code, 0);
  assert.deepEqual(result.events, [{ type: "interrupt", value: "really?" }]);

  result = runAgent(body, request({ resume: ["yes", "sure"] }));
  assert.deepEqual(result.events, [{ type: "output", data: ["yes", "sure"] }]);
});

test("thread state is read and saved", () => {
  const { code, events } = runAgent(
    `run((ctx) => {
       ctx.setState({ count: (ctx.state.count ?? 0) + 1 });
       return ctx.threadId;
     });`,
    request({ thread: { id: "thr_1", state: { count: 41 } } }),
  );
  assert.equal(code, 0);
  assert.deepEqual(events, [
    { type: "state", data: { count: 42 } },
    { type: "output", data: "thr_1" },
  ]);
});

test("state changed in place is saved on return and before a question", () => {
  const body = `run((ctx) => {
     ctx.state.count = (ctx.state.count ?? 0) + 1;
     if (ctx.input.ask) ctx.ask("more?");
     return ctx.state.count;
   });`;
  const thread = { id: "thr_1", state: { count: 1 } };
  let result = runAgent(body, request({ input: {}, thread }));
  assert.deepEqual(result.events, [
    { type: "state", data: { count: 2 } },
    { type: "output", data: 2 },
  ]);
  result = runAgent(body, request({ input: { ask: true }, thread }));
  assert.deepEqual(result.events, [
    { type: "state", data: { count: 2 } },
    { type: "interrupt", value: "more?" },
  ]);
  result = runAgent(body, request({ input: {} }));
  assert.deepEqual(result.events, [{ type: "output", data: 1 }]);
});

test("without a thread the state is empty and undefined output is null", () => {
  const { events } = runAgent(
    `run((ctx) => { ctx.log(JSON.stringify(ctx.state), "debug"); });`,
    request(),
  );
  assert.deepEqual(events, [
    { type: "log", level: "debug", message: "{}" },
    { type: "output", data: null },
  ]);
});

test("the documented path re-exports the SDK", async () => {
  const viaFile = await import(path.join(SDK_DIR, "agentd.mjs"));
  const viaPackage = await import(path.join(SDK_DIR, "agentd", "index.mjs"));
  assert.equal(viaFile.run, viaPackage.run);
  assert.equal(viaFile.Context, viaPackage.Context);
});

// Like runAgent, without blocking this process: a test's own HTTP server must answer the
// agent meanwhile.
async function runAgentAsync(body, request, env = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-node-test-"));
  try {
    fs.mkdirSync(path.join(dir, "node_modules"));
    fs.symlinkSync(path.join(SDK_DIR, "agentd"), path.join(dir, "node_modules", "agentd"));
    fs.writeFileSync(path.join(dir, "main.mjs"), `import { run, ApiError } from "agentd";\n${body}`);
    const child = spawn("/usr/bin/node", [path.join(dir, "main.mjs")], {
      stdio: ["pipe", "pipe", "pipe", "pipe"],
      env: { PATH: "/usr/bin:/bin", ...env },
    });
    const collect = (stream) => {
      const chunks = [];
      stream.on("data", (chunk) => chunks.push(chunk));
      return new Promise((resolve) => stream.on("end", () => resolve(Buffer.concat(chunks).toString())));
    };
    const [events, stderr] = [collect(child.stdio[3]), collect(child.stderr)];
    child.stdin.end(JSON.stringify(request));
    const code = await new Promise((resolve) => child.on("exit", resolve));
    const lines = (await events).split("\n").filter((line) => line !== "");
    return { code, events: lines.map((line) => JSON.parse(line)), stderr: await stderr };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

// An HTTP server on 127.0.0.1 standing in for the platform: it records each request and
// answers with the next [status, body] of `answers`.
async function fakeApi(answers) {
  const seen = [];
  const server = http.createServer((req, res) => {
    let body = "";
    req.on("data", (chunk) => (body += chunk));
    req.on("end", () => {
      seen.push({ method: req.method, url: req.url, headers: req.headers, body: body ? JSON.parse(body) : null });
      const [status, answer] = answers.shift();
      res.writeHead(status, { "content-type": status < 400 ? "application/json" : "application/problem+json" });
      res.end(JSON.stringify(answer));
    });
  });
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const env = { AGENTD_API_URL: `http://127.0.0.1:${server.address().port}`, AGENTD_TOKEN: "agr_test" };
  return { seen, env, close: () => server.close() };
}

test("invoke sends the run's token and resolves to the sub-invocation", async () => {
  const api = await fakeApi([[200, { id: "inv_2", status: "succeeded", output: { echo: 1 } }]]);
  try {
    const { code, events, stderr } = await runAgentAsync(
      `run(async (ctx) => (await ctx.invoke("echo", { n: 1 }, { wait: 30, priority: 3, idempotencyKey: "k1" })).output);`,
      request(),
      api.env,
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(events, [{ type: "output", data: { echo: 1 } }]);
    const [seen] = api.seen;
    assert.deepEqual([seen.method, seen.url], ["POST", "/v1/agents/echo/invoke?wait=30"]);
    assert.equal(seen.headers.authorization, "Bearer agr_test");
    assert.equal(seen.headers["idempotency-key"], "k1");
    assert.deepEqual(seen.body, { priority: 3, input: { n: 1 } });
  } finally {
    api.close();
  }
});

test("a refusal rejects with an ApiError carrying the problem's code", async () => {
  const api = await fakeApi([[404, { status: 404, code: "not_found", detail: "invocation not found" }]]);
  try {
    const { code, events, stderr } = await runAgentAsync(
      `run(async (ctx) => {
        try { await ctx.api.request("GET", "/v1/invocations/inv_x"); }
        catch (err) { return [err instanceof ApiError, err.status, err.code, err.detail]; }
      });`,
      request(),
      api.env,
    );
    assert.equal(code, 0, stderr);
    assert.deepEqual(events, [{ type: "output", data: [true, 404, "not_found", "invocation not found"] }]);
  } finally {
    api.close();
  }
});

test("without the API variables a call says so", async () => {
  const { events } = await runAgentAsync(
    `run(async (ctx) => { try { await ctx.invoke("echo", {}); } catch (err) { return err.code; } });`,
    request(),
  );
  assert.deepEqual(events, [{ type: "output", data: "no_api" }]);
});
