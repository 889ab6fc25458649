// agentd: the in-sandbox helper for Node agents (Node 20, no dependencies).
//
// The platform mounts this folder at /node_modules/agentd, so an agent writes:
//
//   import { run } from "agentd";
//   run(async (ctx) => {
//     ctx.log("working");
//     return { echo: ctx.input };
//   });
//
// run(handler) speaks the run protocol: it reads the invocation document from stdin
// ({invocation_id, agent, input, thread, resume, attempt}), calls handler(ctx) (sync or
// async) and writes events as JSON lines to the events fd (AGENTD_EVENTS_FD, default 3):
// the returned value becomes {"type":"output","data":...} and the process exits 0; a
// thrown error becomes an error log with its stack and the process exits 1; ctx.ask() may
// end the run early to wait for a human (see below). stdout and stderr stay yours: the
// platform captures them as log lines.
//
// Calls back to the platform go to AGENTD_API_URL with the run's own AGENTD_TOKEN (valid
// while this run runs): await ctx.invoke(agent, input, { wait }) runs a sub-agent, and
// ctx.api.request(method, path, body) is the helper behind it, for any route a run's
// token may use. A refused call throws an ApiError with the problem document's status and
// code.

import fs from "node:fs";

const LEVELS = ["debug", "info", "warn", "error"];

function eventsFd() {
  const raw = process.env.AGENTD_EVENTS_FD ?? "3";
  const fd = Number.parseInt(raw, 10);
  try {
    fs.fstatSync(fd);
  } catch {
    process.stderr.write(
      `agentd: events fd ${raw} is not open; run under agentd, or locally with 3>&1\n`,
    );
    process.exit(2);
  }
  return fd;
}

// Writes one complete JSON line per event, synchronously, so nothing is lost on exit.
function emitTo(fd, event) {
  const line = Buffer.from(JSON.stringify(event) + "\n", "utf8");
  let offset = 0;
  while (offset < line.length) {
    offset += fs.writeSync(fd, line, offset, line.length - offset);
  }
}

function readRequest() {
  const text = fs.readFileSync(0, "utf8");
  // An empty stdin is allowed so that `node main.mjs < /dev/null` works while developing.
  const request = text.trim() === "" ? {} : JSON.parse(text);
  if (request === null || typeof request !== "object" || Array.isArray(request)) {
    throw new TypeError("the invocation document on stdin must be a JSON object");
  }
  return request;
}

/** A call to the platform's API failed: status 0 when it could not be reached. */
export class ApiError extends Error {
  constructor(status, code, detail, problem = {}) {
    super(status ? `${code} (${status}): ${detail}` : `${code}: ${detail}`);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.detail = detail;
    this.problem = problem;
  }
}

/**
 * The platform's API as this run reaches it (AGENTD_API_URL, with AGENTD_TOKEN). Built-in
 * fetch, which ignores the egress proxy: the API is on the run's own loopback.
 */
export class Api {
  constructor(baseUrl = process.env.AGENTD_API_URL ?? "", token = process.env.AGENTD_TOKEN ?? "") {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
    this.token = token;
  }

  /**
   * Sends one JSON request (path starts with /v1/) and resolves to the decoded answer
   * (null for an empty one); rejects with an ApiError.
   */
  async request(method, path, body = undefined, { query, headers } = {}) {
    if (!this.baseUrl || !this.token) {
      throw new ApiError(0, "no_api", "AGENTD_API_URL and AGENTD_TOKEN are not set; run under agentd");
    }
    let url = this.baseUrl + path;
    const params = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null);
    if (params.length > 0) {
      url += "?" + new URLSearchParams(params.map(([k, v]) => [k, String(v)])).toString();
    }
    const sent = { authorization: `Bearer ${this.token}`, accept: "application/json", ...headers };
    if (body !== undefined) {
      sent["content-type"] = "application/json";
    }
    let response;
    try {
      response = await fetch(url, {
        method,
        headers: sent,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (err) {
      throw new ApiError(0, "api_unreachable", `${method} ${path}: ${err.cause?.message ?? err.message}`);
    }
    const text = await response.text();
    if (!response.ok) {
      let problem = null;
      try {
        problem = JSON.parse(text);
      } catch {
        // Not a problem document: reported as text below.
      }
      if (problem === null || typeof problem !== "object") {
        throw new ApiError(response.status, "http_error", text.slice(0, 200) || "no body");
      }
      throw new ApiError(response.status, problem.code ?? "http_error", problem.detail ?? "", problem);
    }
    return text.trim() === "" ? null : JSON.parse(text);
  }
}

/** The workspace's long-term memory store (/v1/store), through the run's token. */
export class Store {
  #api;

  constructor(api) {
    this.#api = api;
  }

  /** The item ({namespace, key, value, created_at, …}) or null when there is none. */
  async get(namespace, key) {
    try {
      return await this.#api.request("GET", "/v1/store/items", undefined, {
        query: { namespace: namespace.join("."), key },
      });
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return null;
      throw err;
    }
  }

  /** Creates or replaces the item; with ttlS it expires that many seconds from now. */
  async put(namespace, key, value, { ttlS } = {}) {
    const body = { namespace, key, value };
    if (ttlS !== undefined) body.ttl_s = ttlS;
    return this.#api.request("PUT", "/v1/store/items", body);
  }

  /** Deletes the item; resolves to whether there was one. */
  async delete(namespace, key) {
    try {
      await this.#api.request("DELETE", "/v1/store/items", undefined, {
        query: { namespace: namespace.join("."), key },
      });
      return true;
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) return false;
      throw err;
    }
  }

  /** Items under namespacePrefix whose value has every field of filter, newest first. */
  async search(namespacePrefix = [], { filter, limit = 10, offset = 0 } = {}) {
    const body = { namespace_prefix: namespacePrefix, limit, offset };
    if (filter) body.filter = filter;
    return (await this.#api.request("POST", "/v1/store/items/search", body)).data;
  }

  /** The distinct namespaces (arrays of labels) under prefix ending in suffix. */
  async namespaces({ prefix = [], suffix = [], maxDepth, limit = 100, offset = 0 } = {}) {
    const body = { prefix, suffix, limit, offset };
    if (maxDepth !== undefined) body.max_depth = maxDepth;
    return (await this.#api.request("POST", "/v1/store/namespaces", body)).data;
  }
}

/** What the handler sees of its invocation. */
export class Context {
  #emit;
  #asked = 0;
  #savedState;

  constructor(request, emit) {
    const thread = request.thread ?? {};
    /** The invocation's input (any JSON value). */
    this.input = request.input ?? null;
    this.invocationId = request.invocation_id ?? null;
    this.agent = request.agent ?? null;
    /** 1 for the first run, then 2, 3… on retries. */
    this.attempt = request.attempt ?? 1;
    this.threadId = thread.id ?? null;
    /** The thread's state ({} without a thread). */
    this.state = thread.state ?? {};
    this.#savedState = JSON.stringify(this.state);
    /** Answers to earlier questions, in order. */
    this.resume = Array.isArray(request.resume) ? request.resume : [];
    /** The platform's API with this run's token. */
    this.api = new Api();
    /** The workspace's memory store: get, put, delete, search, namespaces. */
    this.store = new Store(this.api);
    this.#emit = emit;
  }

  /**
   * Invokes `agent` (a slug of this workspace) with `input` as a sub-agent of this run and
   * resolves to the new invocation ({id, status, output, …}). With `wait` (seconds, at most
   * 60) the platform holds the answer until it settles (finished, or waiting for input) or
   * the time is up: check `status`. Other options are fields of the invoke body (priority,
   * timeout_s, metadata, env, …); `idempotencyKey` is sent as the Idempotency-Key header.
   * Sub-agents nest at most the workspace's max_invocation_depth deep (ApiError
   * invocation_depth_exceeded).
   */
  invoke(agent, input = null, { wait, idempotencyKey, ...options } = {}) {
    const path = `/v1/agents/${encodeURIComponent(String(agent))}/invoke`;
    const headers = idempotencyKey ? { "idempotency-key": idempotencyKey } : {};
    const query = wait ? { wait } : {};
    return this.api.request("POST", path, { ...options, input }, { query, headers });
  }

  /** Sends a log line; level is one of debug, info, warn, error. */
  log(message, level = "info") {
    if (!LEVELS.includes(level)) {
      throw new RangeError(`log level must be one of ${LEVELS.join(", ")}, not ${level}`);
    }
    this.#emit({ type: "log", level, message: String(message) });
  }

  /** Saves the thread state (any JSON value; an object by convention) for the next run. */
  setState(data) {
    this.state = data;
    this.#savedState = JSON.stringify(data);
    this.#emit({ type: "state", data });
  }

  /** Sends ctx.state if the handler changed it in place or assigned it since it was last saved. */
  saveState() {
    if (this.threadId !== null && JSON.stringify(this.state) !== this.#savedState) {
      this.setState(this.state);
    }
  }

  /** Declares a file the run produced (under /outputs) as an artifact. */
  artifact(path) {
    this.#emit({ type: "artifact", path: String(path) });
  }

  /**
   * Asks a human `question` (any JSON value) and returns the answer. The n-th call of a run
   * returns resume[n] when the platform already has that answer. Otherwise it sends
   * {"type":"interrupt","value":question} and exits 0 at once, so no catch block can keep
   * the run going; once answered, the agent starts again from the top with the answers in
   * resume, so code before an ask must be safe to repeat.
   */
  ask(question) {
    const position = this.#asked;
    this.#asked += 1;
    if (position < this.resume.length) {
      return this.resume[position];
    }
    this.saveState();
    this.#emit({ type: "interrupt", value: question });
    process.exit(0);
  }
}

/** Runs handler(ctx) for this invocation, then exits the process. */
export async function run(handler) {
  const fd = eventsFd();
  const emit = (event) => emitTo(fd, event);
  try {
    const ctx = new Context(readRequest(), emit);
    const result = await handler(ctx);
    ctx.saveState();
    emit({ type: "output", data: result === undefined ? null : result });
  } catch (err) {
    const message = err instanceof Error && err.stack ? err.stack : String(err);
    emit({ type: "log", level: "error", message });
    process.exit(1);
  }
  process.exit(0);
}
