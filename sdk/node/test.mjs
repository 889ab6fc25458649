// Tests of the Node SDK: run a tiny agent as a child process with fd 3 wired to a pipe,
// importing "agentd" through a node_modules folder laid out as in the sandbox.
// Run with: node --test sdk/node/

import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import fs from "node:fs";
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
