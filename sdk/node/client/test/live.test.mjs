// Against a live server: runs only when AGENTD_API_URL and AGENTD_API_KEY name one (an
// owner's key of a fresh workspace). `cargo test -p agentd --test it client_sdks` starts a
// server, signs up and runs this.

import assert from "node:assert/strict";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { before, describe, test } from "node:test";
import { fileURLToPath } from "node:url";

import { Client, Conflict, NotFound, Unauthorized } from "../index.mjs";

const EXAMPLES = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..", "..", "examples", "agents");
const LIVE = Boolean(process.env.AGENTD_API_URL && process.env.AGENTD_API_KEY);
/** Generous: the machine running the tests may be loaded. */
const WAIT = 60;

async function collect(iterable) {
  const out = [];
  for await (const item of iterable) out.push(item);
  return out;
}

describe("against a live server", { skip: !LIVE && "set AGENTD_API_URL and AGENTD_API_KEY to run against a server" }, () => {
  /** @type {Client} */
  let client;
  let echo;

  before(async () => {
    client = new Client();
    echo = await client.agents.deploy(path.join(EXAMPLES, "node-greet"), { slug: "js-greet" });
    await client.agents.deploy(path.join(EXAMPLES, "python-ask"), { slug: "js-ask" });
  });

  test("deploy, list, versions, rollback and delete", async () => {
    assert.equal(echo.build.status, "ready");
    assert.ok((await collect(client.agents.iter())).some((a) => a.slug === "js-greet"));
    const second = await client.agents.deploy(path.join(EXAMPLES, "node-greet"), { slug: "js-greet", activate: false });
    assert.equal((await client.agents.get("js-greet")).active_version, echo.version);
    assert.equal((await client.agents.activate("js-greet", second.version)).active_version, second.version);
    assert.equal((await client.agents.rollback("js-greet", echo.version)).active_version, echo.version);
    const versions = (await client.agents.versions("js-greet")).data.map((v) => v.version);
    assert.deepEqual(versions.slice(0, 2), [second.version, echo.version]);

    await client.agents.deploy(path.join(EXAMPLES, "shell-wc"), { slug: "js-doomed" });
    await client.agents.delete("js-doomed");
    await assert.rejects(client.agents.get("js-doomed"), NotFound);
  });

  test("the server unpacks long paths the tar writer put in ustar's prefix and in PAX headers", async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "agentd-client-long-"));
    try {
      const viaPrefix = `${"d".repeat(90)}/${"e".repeat(90)}/f.txt`;
      const viaPax = `${"g".repeat(200)}/${"h".repeat(99)}.txt`;
      for (const [name, text] of [[viaPrefix, "prefix"], [viaPax, "pax"]]) {
        fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
        fs.writeFileSync(path.join(dir, name), text);
      }
      fs.writeFileSync(path.join(dir, "agent.toml"), 'name = "js long paths"\nruntime = "shell"\nentrypoint = "run.sh"\n');
      const script = `#!/bin/sh\nset -eu\na=$(cat '/agent/${viaPrefix}')\nb=$(cat '/agent/${viaPax}')\nprintf '{"type":"output","data":["%s","%s"]}\\n' "$a" "$b" >&3\n`;
      fs.writeFileSync(path.join(dir, "run.sh"), script, { mode: 0o755 });
      const version = await client.agents.deploy(dir);
      assert.equal(version.build.status, "ready");
      const run = await client.invoke("js-long-paths", {}, { wait: WAIT });
      assert.equal(run.status, "succeeded", JSON.stringify(run.error));
      assert.deepEqual(run.output, ["prefix", "pax"]);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  test("invoke with wait, follow the events to the end, read the logs", async () => {
    const run = await client.invoke("js-greet", { name: "ada" }, { wait: WAIT });
    assert.equal(run.status, "succeeded");
    assert.deepEqual(run.output, { greeting: "hello, ada" });
    assert.match(run.idempotency_key, /^sdk-/);
    const again = await client.invoke("js-greet", { name: "ada" }, { idempotencyKey: run.idempotency_key });
    assert.equal(again.id, run.id);

    const events = await collect(client.invocations.events(run.id));
    assert.deepEqual(events.at(-1), { kind: "end", status: "succeeded", error: null });
    const seqs = events.slice(0, -1).map((e) => e.seq);
    assert.deepEqual(seqs, [...new Set(seqs)].sort((a, b) => a - b));
    assert.ok(events.some((e) => e.kind === "output"));
    const tail = await collect(client.invocations.events(run.id, { after: seqs.at(-2) }));
    assert.deepEqual(tail.map((e) => e.seq ?? null), [seqs.at(-1), null]);

    const logs = (await client.invocations.logs(run.id)).data;
    assert.ok(logs.some((e) => e.kind === "output"));
    assert.equal((await client.invocations.get(run.id)).status, "succeeded");
    const listed = (await client.invocations.list({ agent: "js-greet", status: "succeeded", limit: 200 })).data;
    assert.ok(listed.some((i) => i.id === run.id));
  });

  test("a question is answered while following the events, and the run finishes", async () => {
    const run = await client.invoke("js-ask", {}, { inputTimeoutS: 300 });
    const answers = ["ada", "green"];
    const kinds = [];
    for await (const event of client.invocations.events(run.id)) {
      kinds.push(event.kind);
      if (event.kind === "status" && event.data?.status === "waiting_for_input") {
        const questions = (await client.invocations.interrupts(run.id)).data;
        assert.equal(questions.at(-1).answer, null);
        await client.respond(run.id, answers.shift());
      }
      if (event.kind === "end") assert.equal(event.status, "succeeded");
    }
    assert.equal(kinds.filter((k) => k === "interrupt").length, 2);
    const done = await client.invocations.get(run.id);
    assert.deepEqual([done.output.name, done.output.color], ["ada", "green"]);
    await assert.rejects(client.respond(run.id, "late"), (e) => e instanceof Conflict && e.code === "not_waiting");
  });

  test("respond with wait holds a conversation", async () => {
    let run = await client.invoke("js-ask", null, { wait: WAIT });
    assert.equal(run.status, "waiting_for_input");
    run = await client.respond(run.id, "bob", { wait: WAIT });
    assert.equal(run.status, "waiting_for_input");
    assert.deepEqual((await client.invocations.interrupts(run.id)).data.at(-1).value, { question: "favourite colour, bob?" });
    run = await client.invocations.respond(run.id, "red", { wait: WAIT });
    assert.deepEqual([run.status, run.output.color], ["succeeded", "red"]);
  });

  test("cancel", async () => {
    await client.agents.deploy(path.join(EXAMPLES, "shell-sleep"), { slug: "js-sleep" });
    const run = await client.invoke("js-sleep", { seconds: 120 });
    await client.invocations.cancel(run.id);
    // A running one may still be stopping when cancel answers: wait for the end.
    assert.equal((await client.invocations.wait(run.id, { timeout: WAIT })).status, "cancelled");
    assert.equal((await collect(client.invocations.events(run.id))).at(-1).status, "cancelled");
  });

  test("threads", async () => {
    const threads = client.threads;
    const thread = await threads.create({ agent: "js-greet", metadata: { user: "ada" } });
    assert.equal((await threads.get(thread.id)).status, "idle");
    const run = await client.invoke("js-greet", { name: "x" }, { threadId: thread.id, wait: WAIT });
    assert.equal(run.thread_id, thread.id);
    assert.ok((await threads.list({ metadata: { user: "ada" } })).data.some((t) => t.id === thread.id));
    assert.deepEqual((await threads.setState(thread.id, { count: 3 })).state, { count: 3 });
    assert.deepEqual((await threads.state(thread.id)).state, { count: 3 });
    assert.deepEqual((await threads.history(thread.id)).data[0].state, { count: 3 });
    assert.deepEqual((await threads.update(thread.id, { user: null, topic: "x" })).metadata, { topic: "x" });
    await threads.delete(thread.id);
    await assert.rejects(threads.get(thread.id), NotFound);
  });

  test("keys are created, used and revoked", async () => {
    const created = await client.keys.create("js-read", { scopes: ["read"] });
    assert.match(created.secret, /^agd_/);
    const reader = new Client(undefined, created.secret);
    assert.deepEqual((await reader.me()).scopes, ["read"]);
    assert.ok((await client.keys.list()).data.some((k) => k.id === created.id));
    assert.ok((await client.keys.revoke(created.id)).revoked_at);
    await assert.rejects(reader.agents.list(), (e) => e instanceof Unauthorized && e.status === 401 && e.code === "unauthorized");
  });

  test("a missing resource is a typed 404 with its code", async () => {
    const e = await client.invocations.get(`inv_${"0".repeat(32)}`).catch((err) => err);
    assert.ok(e instanceof NotFound);
    assert.deepEqual([e.status, e.code], [404, "not_found"]);
    assert.match(e.requestId, /^req_/);
    await assert.rejects(client.invoke("no-such-agent", {}), NotFound);
  });
});
