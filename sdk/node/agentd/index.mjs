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
    this.#emit = emit;
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
