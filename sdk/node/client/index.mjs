// agentd-client: call an agentd server from an application. ES module, Node >= 20, no
// dependencies, no build step: global fetch, node:zlib for gzip, a small ustar writer.
//
//   import { Client } from "agentd-client";
//   const client = new Client(); // AGENTD_API_URL, AGENTD_API_KEY
//   await client.agents.deploy("examples/agents/python-echo");
//   const run = await client.invoke("python-echo", { hello: "world" }, { wait: 30 });
//
// Types are in index.d.ts; README.md describes the whole surface.

import { randomUUID } from "node:crypto";
import fs from "node:fs";
import path from "node:path";
import { setTimeout as delay } from "node:timers/promises";
import zlib from "node:zlib";

export const VERSION = "0.1.0";

/** Statuses after which an invocation changes no more. */
export const TERMINAL = Object.freeze(["succeeded", "failed", "cancelled", "timed_out"]);
/** Statuses a wait returns at: terminal, or waiting for an answer. */
export const SETTLED = Object.freeze([...TERMINAL, "waiting_for_input"]);
/** The longest `?wait=` the server takes; longer waits poll after it. */
export const SERVER_MAX_WAIT_S = 60;

const IDEMPOTENT = new Set(["GET", "HEAD", "PUT", "DELETE", "OPTIONS"]);
const RETRY_STATUSES = new Set([429, 503]);

// ---------------------------------------------------------------------------------------
// Errors

/** Base class of everything this package throws. */
export class AgentdError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The server could not be reached, or the connection broke before an answer. */
export class TransportError extends AgentdError {}

/** An event stream ended with `event: error` (a failure on the server's side). */
export class StreamError extends AgentdError {
  /** @param {string | null} code @param {string} detail */
  constructor(code, detail) {
    super(code ? `${code}: ${detail}` : detail);
    this.code = code;
    this.detail = detail;
  }
}

/** The server answered with an RFC 9457 problem document (a non-2xx status). */
export class APIError extends AgentdError {
  /**
   * @param {number} status
   * @param {Record<string, any>} problem
   * @param {Record<string, string>} [headers]
   */
  constructor(status, problem, headers = {}) {
    const lower = Object.fromEntries(Object.entries(headers).map(([k, v]) => [k.toLowerCase(), v]));
    const requestId = problem.request_id ?? lower["x-request-id"] ?? null;
    let message = `${status} ${problem.code ?? problem.title ?? "error"}`;
    if (problem.detail) message += `: ${problem.detail}`;
    if (requestId) message += ` (request ${requestId})`;
    super(message);
    this.status = status;
    this.problem = problem;
    this.headers = lower;
    /** @type {string | null} the stable code to switch on */
    this.code = problem.code ?? null;
    this.title = problem.title ?? null;
    this.detail = problem.detail ?? null;
    this.type = problem.type ?? null;
    this.requestId = requestId;
    /** `{path, message}` per place for `input_invalid`. */
    this.errors = problem.errors ?? [];
  }

  /** `Retry-After` in seconds, when the server sent one. */
  get retryAfter() {
    return parseRetryAfter(this.headers["retry-after"]);
  }
}

export class BadRequest extends APIError {}
export class Unauthorized extends APIError {}
export class Forbidden extends APIError {}
export class NotFound extends APIError {}
export class Conflict extends APIError {}
export class PayloadTooLarge extends APIError {}
export class UnprocessableEntity extends APIError {}
export class RateLimited extends APIError {}
export class ServerError extends APIError {}
export class ServiceUnavailable extends ServerError {}

const BY_STATUS = new Map([
  [400, BadRequest],
  [401, Unauthorized],
  [403, Forbidden],
  [404, NotFound],
  [409, Conflict],
  [413, PayloadTooLarge],
  [422, UnprocessableEntity],
  [429, RateLimited],
  [503, ServiceUnavailable],
]);

/** The APIError subclass for `status`. */
export function errorFor(status, problem, headers = {}) {
  const Cls = BY_STATUS.get(status) ?? (status >= 500 ? ServerError : APIError);
  return new Cls(status, problem, headers);
}

/**
 * `Retry-After` as seconds: a number of seconds or an HTTP date; null if absent or unreadable.
 * @param {string | null | undefined} value
 * @returns {number | null}
 */
export function parseRetryAfter(value) {
  if (value == null) return null;
  const text = String(value).trim();
  if (/^\d+(\.\d+)?$/.test(text)) return Number(text);
  const when = Date.parse(text);
  if (Number.isNaN(when)) return null;
  return Math.max(0, (when - Date.now()) / 1000);
}

// ---------------------------------------------------------------------------------------
// Server-Sent Events

/**
 * Incremental SSE parser (the WHATWG rules): `feed` bytes or text, get the messages they
 * completed. Lines end with CRLF, LF or CR; `:` starts a comment; one space after the colon
 * is dropped; `data` lines join with "\n"; a blank line dispatches; a message without data
 * is dropped; `event` defaults to "message".
 */
export class SSEParser {
  constructor() {
    this.decoder = new TextDecoder("utf-8");
    this.buffer = "";
    this.pendingCR = false;
    this.event = "";
    /** @type {string[]} */
    this.data = [];
    /** @type {string | null} */
    this.id = null;
    /** @type {string | null} */
    this.lastEventId = null;
  }

  /**
   * @param {Uint8Array | string} chunk
   * @returns {{event: string, data: string, id: string | null}[]}
   */
  feed(chunk) {
    const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
    const out = [];
    let buffer = this.buffer + text;
    let start = 0;
    for (let i = 0; i < buffer.length; i++) {
      const c = buffer[i];
      if (this.pendingCR) {
        this.pendingCR = false;
        if (c === "\n") {
          start = i + 1;
          continue;
        }
      }
      if (c === "\n" || c === "\r") {
        this.#line(buffer.slice(start, i), out);
        if (c === "\r") this.pendingCR = true;
        start = i + 1;
      }
    }
    this.buffer = buffer.slice(start);
    return out;
  }

  #line(line, out) {
    if (line === "") {
      if (this.data.length) out.push({ event: this.event || "message", data: this.data.join("\n"), id: this.id });
      this.event = "";
      this.data = [];
      return;
    }
    if (line.startsWith(":")) return;
    const colon = line.indexOf(":");
    const field = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (field === "data") this.data.push(value);
    else if (field === "event") this.event = value;
    else if (field === "id" && !value.includes("\0")) {
      this.id = value;
      this.lastEventId = value;
    }
    // `retry` and unknown fields are ignored: the client has its own backoff.
  }
}

// ---------------------------------------------------------------------------------------
// Bundles: a reproducible .tar.gz of an agent's folder, with the CLI's rules
// (crates/agentd-bundle/src/pack.rs).

/** The folder cannot be packed as a bundle. */
export class BundleError extends AgentdError {}

const SKIPPED_DIRS = new Set([".git", "__pycache__"]);
const BLOCK = 512;

/**
 * One tar entry, as {@link tarEntries} and {@link writeTar} take them.
 * @typedef {{name: string, type: "file" | "dir" | "symlink", mode: number, data?: Uint8Array, linkname?: string}} TarEntry
 */

/**
 * The entries of the folder at `dir`, as the CLI packs it: sorted by name, `.git` and
 * `__pycache__` skipped at any depth (`node_modules` kept), modes 0755 for folders and
 * executables and 0644 otherwise, symlinks kept when relative and inside the folder.
 * @param {string} dir
 * @returns {TarEntry[]}
 */
export function tarEntries(dir) {
  let stat;
  try {
    stat = fs.statSync(dir);
  } catch (e) {
    throw new BundleError(`cannot read ${dir}: ${e.message}`);
  }
  if (!stat.isDirectory()) throw new BundleError(`${dir} is not a folder`);
  const out = [];
  addFolder(dir, "", out);
  return out;
}

function compareBytes(a, b) {
  return Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8"));
}

function addFolder(folder, prefix, out) {
  const names = fs.readdirSync(folder).sort(compareBytes);
  for (const name of names) {
    const full = path.join(folder, name);
    const st = fs.lstatSync(full);
    const inside = prefix ? `${prefix}/${name}` : name;
    if (name === ".git" || (st.isDirectory() && SKIPPED_DIRS.has(name))) continue;
    if (st.isDirectory()) {
      out.push({ name: `${inside}/`, type: "dir", mode: 0o755 });
      addFolder(full, inside, out);
    } else if (st.isFile()) {
      const mode = st.mode & 0o111 ? 0o755 : 0o644;
      out.push({ name: inside, type: "file", mode, data: fs.readFileSync(full) });
    } else if (st.isSymbolicLink()) {
      const target = fs.readlinkSync(full);
      checkLink(prefix, inside, target);
      out.push({ name: inside, type: "symlink", mode: 0o777, linkname: target });
    } else {
      throw new BundleError(`${inside}: a special file (socket, fifo or device) cannot be packed`);
    }
  }
}

function checkLink(folder, inside, target) {
  if (target === "" || target.startsWith("/")) throw new BundleError(`${inside} -> ${target}: a link must have a relative target`);
  const stack = folder.split("/").filter(Boolean);
  for (const part of target.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (!stack.length) throw new BundleError(`${inside} -> ${target}: the link points outside the folder`);
      stack.pop();
    } else stack.push(part);
  }
}

/** Writes `value` as a NUL-terminated octal field of `width` bytes. */
function octal(header, offset, width, value) {
  const text = value.toString(8).padStart(width - 1, "0");
  if (text.length > width - 1) throw new BundleError(`${value} does not fit a tar header field`);
  header.write(`${text}\0`, offset, width, "ascii");
}

/** Splits a path into ustar's prefix (≤ 155 bytes) and name (≤ 100 bytes), or null. */
function splitUstar(name) {
  const bytes = Buffer.byteLength(name);
  if (bytes <= 100) return ["", name];
  for (let i = name.indexOf("/"); i !== -1; i = name.indexOf("/", i + 1)) {
    const prefix = name.slice(0, i);
    const rest = name.slice(i + 1);
    if (Buffer.byteLength(prefix) <= 155 && Buffer.byteLength(rest) <= 100 && rest !== "") return [prefix, rest];
  }
  return null;
}

function header({ name, type, mode, size = 0, linkname = "", prefix = "" }) {
  const h = Buffer.alloc(BLOCK);
  h.write(name, 0, 100, "utf8");
  octal(h, 100, 8, mode);
  octal(h, 108, 8, 0); // uid
  octal(h, 116, 8, 0); // gid
  octal(h, 124, 12, size);
  octal(h, 136, 12, 0); // mtime: reproducible
  h.fill(0x20, 148, 156); // checksum counted as spaces
  h.write({ file: "0", dir: "5", symlink: "2", pax: "x" }[type], 156, 1, "ascii");
  h.write(linkname, 157, 100, "utf8");
  h.write("ustar\0", 257, 6, "ascii");
  h.write("00", 263, 2, "ascii");
  octal(h, 329, 8, 0);
  octal(h, 337, 8, 0);
  h.write(prefix, 345, 155, "utf8");
  let sum = 0;
  for (const byte of h) sum += byte;
  h.write(`${sum.toString(8).padStart(6, "0")}\0 `, 148, 8, "ascii");
  return h;
}

function padded(data) {
  const rest = data.length % BLOCK;
  return rest ? [data, Buffer.alloc(BLOCK - rest)] : [data];
}

/** A PAX record `"<len> key=value\n"`, whose length counts itself. */
function paxRecord(key, value) {
  const body = ` ${key}=${value}\n`;
  let len = Buffer.byteLength(body);
  let total = len + String(len).length;
  if (String(total).length !== String(len).length) total = len + String(total).length;
  return `${total}${body}`;
}

/**
 * A ustar archive of `entries` (uncompressed). Paths too long for ustar's name and prefix
 * fields, and link targets over 100 bytes, get a PAX extended header.
 * @param {TarEntry[]} entries
 * @returns {Buffer}
 */
export function writeTar(entries) {
  const parts = [];
  for (const entry of entries) {
    const data = entry.type === "file" ? Buffer.from(entry.data ?? []) : Buffer.alloc(0);
    const linkname = entry.linkname ?? "";
    const split = splitUstar(entry.name);
    let pax = "";
    if (!split) pax += paxRecord("path", entry.name);
    if (Buffer.byteLength(linkname) > 100) pax += paxRecord("linkpath", linkname);
    if (pax) {
      const body = Buffer.from(pax, "utf8");
      parts.push(header({ name: "PaxHeader", type: "pax", mode: 0o644, size: body.length }), ...padded(body));
    }
    const [prefix, name] = split ?? ["", Buffer.from(entry.name).subarray(0, 100).toString("utf8")];
    parts.push(header({ name, prefix, type: entry.type, mode: entry.mode, size: data.length, linkname: linkname.slice(0, 100) }));
    if (data.length) parts.push(...padded(data));
  }
  parts.push(Buffer.alloc(BLOCK * 2));
  return Buffer.concat(parts);
}

/**
 * The folder at `dir` as a reproducible `.tar.gz` bundle.
 * @param {string} dir
 * @returns {Buffer}
 */
export function packDir(dir) {
  return zlib.gzipSync(writeTar(tarEntries(dir)));
}

/**
 * A slug from a manifest name, as the CLI derives it ("My Agent v2!" → "my-agent-v2").
 * @param {string} name
 * @returns {string | null}
 */
export function slugify(name) {
  let slug = "";
  for (const c of name.toLowerCase()) {
    if ((c >= "a" && c <= "z") || (c >= "0" && c <= "9")) slug += c;
    else if (slug && !slug.endsWith("-")) slug += "-";
  }
  slug = slug.slice(0, 63).replace(/-+$/, "");
  return slug || null;
}

const TOML_STRING = /"((?:[^"\\]|\\.)*)"/g;

/**
 * The top-level `key = "string"` and `key = ["a", "b"]` lines of `<dir>/agent.toml` (the
 * server checks the manifest fully; the client needs only `name`, `description`, `tags`).
 * @param {string} dir
 * @returns {Record<string, string | string[]>}
 */
export function readManifest(dir) {
  let text;
  try {
    text = fs.readFileSync(path.join(dir, "agent.toml"), "utf8");
  } catch (e) {
    if (e.code === "ENOENT") throw new BundleError(`${dir} has no agent.toml: an agent folder needs one at its root`);
    throw e;
  }
  const out = {};
  const unescape = (s) => s.replace(/\\(["\\])/g, "$1");
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line.startsWith("[")) break;
    const m = /^([A-Za-z0-9_-]+)\s*=\s*(.*)$/.exec(line);
    if (!m) continue;
    const [, key, value] = m;
    const s = /^"((?:[^"\\]|\\.)*)"/.exec(value);
    if (s) out[key] = unescape(s[1]);
    else if (value.startsWith("[")) out[key] = [...value.matchAll(TOML_STRING)].map((x) => unescape(x[1]));
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The client

/**
 * @typedef {object} ClientOptions
 * @property {string} [baseUrl] default: env AGENTD_API_URL
 * @property {string} [apiKey] default: env AGENTD_API_KEY (an API key or a session token)
 * @property {number} [timeoutMs] per request, default 30000
 * @property {number} [maxRetries] default 3
 * @property {number} [backoffBaseMs] default 500
 * @property {number} [backoffMaxMs] default 20000
 * @property {number} [maxRetryAfterS] a longer Retry-After is thrown at once; default 60
 * @property {string} [userAgent]
 * @property {(ms: number) => Promise<void>} [sleep] replaceable in tests
 * @property {typeof fetch} [fetch] replaceable in tests
 */

/**
 * A client of one agentd server. Requests refused with 429 or 503 are retried (the server
 * did not act on them), and so are requests that lost their connection when repeating
 * them is safe: GET, PUT, DELETE and invoke (which always carries an Idempotency-Key); at
 * most `maxRetries` times, after Retry-After when sent, else an exponential backoff with
 * jitter.
 */
export class Client {
  /**
   * @param {string | ClientOptions} [baseUrl]
   * @param {string} [apiKey]
   * @param {ClientOptions} [options]
   */
  constructor(baseUrl, apiKey, options = {}) {
    if (baseUrl && typeof baseUrl === "object") {
      options = baseUrl;
      baseUrl = options.baseUrl;
      apiKey = options.apiKey;
    }
    const url = baseUrl || process.env.AGENTD_API_URL;
    if (!url) throw new AgentdError("no server: pass baseUrl or set AGENTD_API_URL");
    let parsed;
    try {
      parsed = new URL(url);
    } catch {
      throw new AgentdError(`${JSON.stringify(url)} is not a URL`);
    }
    if (!["http:", "https:"].includes(parsed.protocol)) throw new AgentdError(`${url} is not an http(s) URL`);
    if (parsed.search || parsed.hash) throw new AgentdError(`${url} must not have a query or a fragment`);
    this.baseUrl = url.replace(/\/+$/, "");
    const key = apiKey ?? process.env.AGENTD_API_KEY ?? null;
    // The key is a credential: kept off enumerable properties, so logging the client does not show it.
    Object.defineProperty(this, "apiKey", { value: key, enumerable: false, writable: true });
    this.timeoutMs = options.timeoutMs ?? 30_000;
    this.maxRetries = options.maxRetries ?? 3;
    this.backoffBaseMs = options.backoffBaseMs ?? 500;
    this.backoffMaxMs = options.backoffMaxMs ?? 20_000;
    this.maxRetryAfterS = options.maxRetryAfterS ?? 60;
    this.userAgent = options.userAgent ?? `agentd-client-node/${VERSION}`;
    this.sleep = options.sleep ?? ((ms) => delay(ms));
    this.fetch = options.fetch ?? globalThis.fetch;
    this.agents = new Agents(this);
    this.invocations = new Invocations(this);
    this.threads = new Threads(this);
    this.keys = new Keys(this);
  }

  /** `GET /v1/me`: who the credential is, its workspace and scopes. */
  me() {
    return this.request("GET", ["v1", "me"]);
  }

  /**
   * `POST /v1/agents/{slug}/invoke`: starts a run; the invocation. `wait` (seconds) returns
   * once it settles (finishes or waits for an answer) or the time is up; past the server's
   * 60 s it polls. An Idempotency-Key is generated when none is given, so retries never
   * start two runs.
   * @param {string} slug
   * @param {any} [input]
   * @param {import("./index.js").InvokeOptions} [options]
   */
  async invoke(slug, input = null, options = {}) {
    const body = { input };
    const fields = {
      thread_id: options.threadId,
      multitask_strategy: options.multitaskStrategy,
      priority: options.priority,
      max_attempts: options.maxAttempts,
      timeout_s: options.timeoutS,
      input_timeout_s: options.inputTimeoutS,
      metadata: options.metadata,
      env: options.env,
      webhook_url: options.webhookUrl,
    };
    for (const [k, v] of Object.entries(fields)) if (v !== undefined && v !== null) body[k] = v;
    const key = options.idempotencyKey || `sdk-${randomUUID().replaceAll("-", "")}`;
    const deadline = deadlineOf(options.wait);
    const first = serverWait(options.wait);
    const invocation = await this.request("POST", ["v1", "agents", slug, "invoke"], {
      query: { wait: first },
      json: body,
      headers: { "Idempotency-Key": key },
      retry: true,
      timeoutMs: this.timeoutMs + (first ?? 0) * 1000,
    });
    return this.invocations._waitAfter(invocation, deadline);
  }

  /** `POST /v1/invocations/{id}/respond`; see {@link Invocations#respond}. */
  respond(invocationId, answer, options = {}) {
    return this.invocations.respond(invocationId, answer, options);
  }

  /** @param {string | string[]} path @param {Record<string, any>} [query] */
  url(path, query) {
    let url;
    if (typeof path === "string") url = this.baseUrl + path;
    else {
      for (const s of path) if (s === "." || s === "..") throw new AgentdError(`${s} cannot be sent as a path segment`);
      url = this.baseUrl + path.map((s) => `/${encodeSegment(String(s))}`).join("");
    }
    const pairs = Object.entries(query ?? {}).filter(([, v]) => v !== undefined && v !== null);
    if (pairs.length) url += (url.includes("?") ? "&" : "?") + new URLSearchParams(pairs.map(([k, v]) => [k, String(v)]));
    return url;
  }

  /**
   * One API call; the decoded JSON answer (null for 204).
   * @param {string} method
   * @param {string | string[]} path segments (each percent-encoded) or a string taken verbatim
   * @param {import("./index.js").RequestOptions} [options]
   */
  async request(method, path, options = {}) {
    const response = await this.send(method, path, options);
    const text = await response.text();
    if (response.status === 204 || !text) return null;
    try {
      return JSON.parse(text);
    } catch {
      throw new AgentdError(`the server answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
  }

  /**
   * Sends a request with the retry rules; the 2xx Response (body unread), else throws.
   * @param {string} method
   * @param {string | string[]} path
   * @param {import("./index.js").RequestOptions & {stream?: boolean, signal?: AbortSignal}} [options]
   * @returns {Promise<Response>}
   */
  async send(method, path, options = {}) {
    method = method.toUpperCase();
    const url = this.url(path, options.query);
    const headers = { "user-agent": this.userAgent, accept: "application/json" };
    if (this.apiKey) headers.authorization = `Bearer ${this.apiKey}`;
    let body = options.body;
    let contentType = options.contentType;
    if (options.json !== undefined) {
      body = JSON.stringify(options.json);
      contentType = "application/json";
    }
    if (contentType) headers["content-type"] = contentType;
    Object.assign(headers, options.headers ?? {});
    const retryConnection = options.retry ?? IDEMPOTENT.has(method);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    for (let attempt = 0; ; attempt++) {
      let response;
      try {
        const signals = [AbortSignal.timeout(timeoutMs)];
        if (options.signal) signals.push(options.signal);
        // A stream's read timeout is the caller's: the whole-request timeout would cut it.
        const signal = options.stream ? options.signal : signals.length > 1 ? AbortSignal.any(signals) : signals[0];
        response = await this.fetch(url, { method, headers, body, signal, redirect: "manual" });
      } catch (e) {
        if (options.signal?.aborted) throw e;
        if (retryConnection && attempt < this.maxRetries) {
          await this.sleep(this._pauseMs(attempt, null) ?? 0);
          continue;
        }
        throw new TransportError(`${method} ${url}: ${reason(e)}`, { cause: e });
      }
      if (response.ok) return response;
      const text = await response.text().catch(() => "");
      const error = errorFor(response.status, problemOf(response, text), Object.fromEntries(response.headers));
      if (RETRY_STATUSES.has(response.status) && attempt < this.maxRetries) {
        const pause = this._pauseMs(attempt, error.retryAfter);
        if (pause !== null) {
          await this.sleep(pause);
          continue;
        }
      }
      throw error;
    }
  }

  /** Milliseconds before retry `attempt + 1`; null when Retry-After is longer than allowed. */
  _pauseMs(attempt, retryAfterS) {
    if (retryAfterS !== null && retryAfterS !== undefined) {
      return retryAfterS > this.maxRetryAfterS ? null : retryAfterS * 1000;
    }
    const ceiling = Math.min(this.backoffMaxMs, this.backoffBaseMs * 2 ** attempt);
    // "Equal jitter": at least half the backoff, so retries spread out but never bunch at 0.
    return ceiling / 2 + Math.random() * (ceiling / 2);
  }

  /** Shown by console.log and util.inspect: never the key. */
  [Symbol.for("nodejs.util.inspect.custom")]() {
    return `Client(${this.baseUrl})`;
  }
}

function encodeSegment(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

function problemOf(response, text) {
  try {
    const parsed = JSON.parse(text);
    if (parsed && typeof parsed === "object" && !Array.isArray(parsed)) return parsed;
  } catch {
    // not JSON: a proxy's page, say
  }
  return { status: response.status, title: response.statusText, detail: text.slice(0, 500) || null };
}

function reason(e) {
  const cause = e?.cause;
  if (e?.name === "TimeoutError") return "timed out";
  if (cause?.code) return `${cause.code}${cause.message ? ` (${cause.message})` : ""}`;
  return e?.message ?? String(e);
}

function deadlineOf(waitS) {
  return waitS ? Date.now() + waitS * 1000 : null;
}

function serverWait(waitS) {
  if (!waitS || waitS <= 0) return null;
  return Math.min(SERVER_MAX_WAIT_S, Math.max(1, Math.ceil(waitS)));
}

class Resource {
  /** @param {Client} client */
  constructor(client) {
    this.client = client;
  }

  async *_pages(list, filters = {}) {
    let cursor = null;
    for (;;) {
      const page = await list.call(this, { ...filters, cursor });
      yield* page.data ?? [];
      cursor = page.next_cursor;
      if (!cursor) return;
    }
  }
}

/** Agents, their versions (deploys and rollbacks) and their secrets. */
export class Agents extends Resource {
  /** `GET /v1/agents`: one page. */
  list({ limit, cursor } = {}) {
    return this.client.request("GET", ["v1", "agents"], { query: { limit, cursor } });
  }

  /** Every agent, page after page. */
  iter() {
    return this._pages(this.list);
  }

  get(slug) {
    return this.client.request("GET", ["v1", "agents", slug]);
  }

  /** `POST /v1/agents`: registers an agent (it has no version until a deploy). */
  create(slug, { name, description, tags, visibility } = {}) {
    const json = Object.fromEntries(
      Object.entries({ slug, name, description, tags, visibility }).filter(([, v]) => v !== undefined && v !== null),
    );
    return this.client.request("POST", ["v1", "agents"], { json });
  }

  /** `PATCH /v1/agents/{slug}` with the given fields. */
  update(slug, fields) {
    return this.client.request("PATCH", ["v1", "agents", slug], { json: fields });
  }

  async delete(slug) {
    await this.client.request("DELETE", ["v1", "agents", slug]);
  }

  /**
   * Deploys the agent folder at `dir` (or a .tar.gz/.zip file) as a new version, packed as
   * the CLI packs it. `slug` defaults to one made from the manifest's name; the agent is
   * created on its first deploy. `wait` (≤ 60 s) holds the answer until a dependency build
   * settles. Returns the version.
   * @param {string} dir
   * @param {{slug?: string, activate?: boolean, wait?: number}} [options]
   */
  async deploy(dir, { slug, activate = true, wait } = {}) {
    let manifest = {};
    let data;
    if (fs.statSync(dir).isDirectory()) {
      manifest = readManifest(dir);
      data = packDir(dir);
    } else data = fs.readFileSync(dir);
    if (!slug) {
      slug = typeof manifest.name === "string" ? slugify(manifest.name) : null;
      if (!slug) throw new BundleError(`cannot make a slug from the manifest's name ${JSON.stringify(manifest.name)}: pass slug`);
    }
    await this.#ensure(slug, manifest);
    return this.upload(slug, data, { activate, wait });
  }

  async #ensure(slug, manifest) {
    try {
      await this.get(slug);
      return;
    } catch (e) {
      if (!(e instanceof NotFound)) throw e;
    }
    try {
      await this.create(slug, {
        name: typeof manifest.name === "string" ? manifest.name : undefined,
        description: typeof manifest.description === "string" ? manifest.description : undefined,
        tags: Array.isArray(manifest.tags) ? manifest.tags : undefined,
      });
    } catch (e) {
      // Another deploy created it in the meantime.
      if (!(e instanceof Conflict && e.code === "agent_exists")) throw e;
    }
  }

  /** `POST /v1/agents/{slug}/versions` with a bundle's bytes (.tar.gz or .zip). */
  upload(slug, data, { activate = true, wait } = {}) {
    const bytes = Buffer.from(data);
    const zip = bytes.subarray(0, 4).equals(Buffer.from("PK\x03\x04", "latin1"));
    const first = serverWait(wait);
    return this.client.request("POST", ["v1", "agents", slug, "versions"], {
      query: { activate: activate ? undefined : "false", wait: first },
      body: bytes,
      contentType: zip ? "application/zip" : "application/gzip",
      timeoutMs: this.client.timeoutMs + (first ?? 0) * 1000,
    });
  }

  /** `GET /v1/agents/{slug}/versions`: one page, newest first. */
  versions(slug, { limit, cursor } = {}) {
    return this.client.request("GET", ["v1", "agents", slug, "versions"], { query: { limit, cursor } });
  }

  /** `POST /v1/agents/{slug}/versions/{n}/activate`: makes version n active; the agent. */
  rollback(slug, version) {
    return this.client.request("POST", ["v1", "agents", slug, "versions", String(Math.trunc(version)), "activate"], { retry: true });
  }

  /** The same as {@link Agents#rollback}, for moving forward. */
  activate(slug, version) {
    return this.rollback(slug, version);
  }

  /** `GET /v1/agents/{slug}/versions/{n}/build`: the dependency build and its log. */
  build(slug, version) {
    return this.client.request("GET", ["v1", "agents", slug, "versions", String(Math.trunc(version)), "build"]);
  }

  secrets(slug) {
    return this.client.request("GET", ["v1", "agents", slug, "secrets"]);
  }

  setSecret(slug, name, value) {
    return this.client.request("PUT", ["v1", "agents", slug, "secrets", name], { json: { value } });
  }

  async deleteSecret(slug, name) {
    await this.client.request("DELETE", ["v1", "agents", slug, "secrets", name]);
  }
}

/** Invocations: read, list, cancel, logs, questions and answers, live events. */
export class Invocations extends Resource {
  get(id) {
    return this.client.request("GET", ["v1", "invocations", id]);
  }

  /** `GET /v1/invocations`: one page, newest first, filtered by what is given. */
  list({ agent, status, threadId, parentId, limit, cursor } = {}) {
    const query = { agent, status, thread_id: threadId, parent_id: parentId, limit, cursor };
    return this.client.request("GET", ["v1", "invocations"], { query });
  }

  /** Every invocation matching the filters, page after page. */
  iter(filters = {}) {
    return this._pages(this.list, filters);
  }

  /** `POST /v1/invocations/{id}/cancel`: the invocation as cancel left it. */
  cancel(id) {
    return this.client.request("POST", ["v1", "invocations", id, "cancel"], { timeoutMs: this.client.timeoutMs + 10_000 });
  }

  /** `GET /v1/invocations/{id}/logs`: events in seq order after `after`. */
  logs(id, { after, limit } = {}) {
    return this.client.request("GET", ["v1", "invocations", id, "logs"], { query: { after, limit } });
  }

  /** `GET /v1/invocations/{id}/interrupts`: the questions asked and their answers. */
  interrupts(id) {
    return this.client.request("GET", ["v1", "invocations", id, "interrupts"]);
  }

  /**
   * `POST /v1/invocations/{id}/respond`: answers the open question; the invocation. `wait`
   * returns once it settles again. Not retried after a lost connection: a repeat would
   * answer the next question.
   */
  async respond(id, answer, { wait } = {}) {
    const deadline = deadlineOf(wait);
    const first = serverWait(wait);
    const invocation = await this.client.request("POST", ["v1", "invocations", id, "respond"], {
      query: { wait: first },
      json: { answer },
      timeoutMs: this.client.timeoutMs + (first ?? 0) * 1000,
    });
    return this._waitAfter(invocation, deadline);
  }

  /** Polls until the invocation settles (finished or waiting for an answer) or `timeout` seconds pass. */
  async wait(id, { timeout, intervalMs = 1000 } = {}) {
    return this._waitAfter(await this.get(id), deadlineOf(timeout), intervalMs);
  }

  async _waitAfter(invocation, deadline, intervalMs = 1000) {
    while (!SETTLED.includes(invocation.status) && deadline !== null && Date.now() < deadline) {
      await this.client.sleep(Math.min(intervalMs, Math.max(0, deadline - Date.now())));
      invocation = await this.get(invocation.id);
    }
    return invocation;
  }

  artifacts(id) {
    return this.client.request("GET", ["v1", "invocations", id, "artifacts"]);
  }

  /** One artifact's bytes. */
  async artifact(id, name) {
    const response = await this.client.send("GET", ["v1", "invocations", id, "artifacts", ...name.split("/")]);
    return Buffer.from(await response.arrayBuffer());
  }

  /**
   * The invocation's events, live, from the first (or after seq `after`): each once, in
   * order, then `{kind: "end", status, error}` when it is over. A dropped connection is
   * reopened with Last-Event-ID, so nothing is lost or repeated; `maxReconnects` drops in
   * a row without a byte in between throw TransportError. An invocation waiting for an
   * answer keeps the stream open: break out of the loop to stop following.
   * @param {string} id
   * @param {{after?: number, maxReconnects?: number, readTimeoutMs?: number}} [options]
   */
  async *events(id, { after, maxReconnects = 10, readTimeoutMs = 60_000 } = {}) {
    const client = this.client;
    let last = after ?? null;
    let failures = 0;
    for (;;) {
      const headers = { accept: "text/event-stream" };
      if (last !== null) headers["last-event-id"] = String(last);
      const abort = new AbortController();
      let idle;
      const arm = () => {
        clearTimeout(idle);
        idle = setTimeout(() => abort.abort(new Error("no data within the read timeout")), readTimeoutMs);
      };
      let cause = null;
      try {
        arm();
        let response;
        try {
          response = await client.send("GET", ["v1", "invocations", id, "events"], {
            headers,
            retry: true,
            stream: true,
            signal: abort.signal,
          });
        } catch (e) {
          if (!(e instanceof TransportError) && !abort.signal.aborted) throw e;
          cause = e;
        }
        if (response) {
          const parser = new SSEParser();
          try {
            for await (const chunk of response.body) {
              arm();
              failures = 0;
              for (const message of parser.feed(chunk)) {
                if (message.event === "end") {
                  const end = message.data ? JSON.parse(message.data) : {};
                  yield { kind: "end", status: end.status ?? null, error: end.error ?? null };
                  return;
                }
                if (message.event === "error") {
                  let problem;
                  try {
                    problem = JSON.parse(message.data);
                  } catch {
                    problem = { detail: message.data };
                  }
                  throw new StreamError(problem.code ?? null, String(problem.detail ?? ""));
                }
                const event = JSON.parse(message.data);
                let seq = event?.seq ?? null;
                if (seq === null && message.id && /^\d+$/.test(message.id)) seq = Number(message.id);
                if (seq !== null && last !== null && seq <= last) continue;
                if (seq !== null) last = seq;
                yield event;
              }
            }
          } catch (e) {
            if (e instanceof StreamError || e instanceof SyntaxError) throw e;
            cause = e;
          }
        }
      } finally {
        clearTimeout(idle);
        abort.abort();
      }
      failures += 1;
      if (failures > maxReconnects) {
        const why = cause ? reason(cause) : "the server closed the stream";
        throw new TransportError(`the event stream of ${id} dropped ${failures} times in a row: ${why}`, { cause });
      }
      await client.sleep(client._pauseMs(failures - 1, null) ?? 0);
    }
  }
}

/** Threads: conversations with one agent across invocations. */
export class Threads extends Resource {
  create({ agent, metadata } = {}) {
    const json = {};
    if (agent != null) json.agent = agent;
    if (metadata != null) json.metadata = metadata;
    return this.client.request("POST", ["v1", "threads"], { json });
  }

  get(id) {
    return this.client.request("GET", ["v1", "threads", id]);
  }

  /** `GET /v1/threads`: one page; `metadata` keeps threads having each of its fields. */
  list({ agent, status, metadata, limit, cursor } = {}) {
    const query = { agent, status, metadata: metadata == null ? undefined : JSON.stringify(metadata), limit, cursor };
    return this.client.request("GET", ["v1", "threads"], { query });
  }

  iter(filters = {}) {
    return this._pages(this.list, filters);
  }

  /** `PATCH /v1/threads/{id}`: merges `metadata` (a field set to null is removed). */
  update(id, metadata) {
    return this.client.request("PATCH", ["v1", "threads", id], { json: { metadata } });
  }

  async delete(id) {
    await this.client.request("DELETE", ["v1", "threads", id]);
  }

  /** `GET /v1/threads/{id}/state`: `{thread_id, state, checkpoint}`. */
  state(id) {
    return this.client.request("GET", ["v1", "threads", id, "state"]);
  }

  /** `POST /v1/threads/{id}/state`: sets the state by hand, as a new checkpoint. */
  setState(id, state) {
    return this.client.request("POST", ["v1", "threads", id, "state"], { json: { state } });
  }

  /** `GET /v1/threads/{id}/history`: checkpoints, newest first. */
  history(id, { limit, cursor } = {}) {
    return this.client.request("GET", ["v1", "threads", id, "history"], { query: { limit, cursor } });
  }
}

/** API keys of the workspace (scope admin). */
export class Keys extends Resource {
  list({ limit, cursor } = {}) {
    return this.client.request("GET", ["v1", "api-keys"], { query: { limit, cursor } });
  }

  /** `POST /v1/api-keys`: the key with its `secret`, shown this once. */
  create(name, { scopes, expiresInDays } = {}) {
    const json = { name };
    if (scopes != null) json.scopes = scopes;
    if (expiresInDays != null) json.expires_in_days = expiresInDays;
    return this.client.request("POST", ["v1", "api-keys"], { json });
  }

  /** `DELETE /v1/api-keys/{id}`: the key, `revoked_at` set. */
  revoke(id) {
    return this.client.request("DELETE", ["v1", "api-keys", id]);
  }
}
