// Types of agentd-client (index.mjs). Responses are the API's JSON as the server sends it
// (snake_case fields, see docs/API.md and GET /openapi.json); servers may add fields.

export declare const VERSION: string;
export declare const TERMINAL: readonly InvocationStatus[];
export declare const SETTLED: readonly InvocationStatus[];
export declare const SERVER_MAX_WAIT_S: 60;

export type InvocationStatus =
  | "queued"
  | "running"
  | "retrying"
  | "waiting_for_input"
  | "succeeded"
  | "failed"
  | "cancelled"
  | "timed_out";

export type Scope = "read" | "invoke" | "deploy" | "admin";

export interface Page<T> {
  data: T[];
  next_cursor: string | null;
}

export interface PageOptions {
  limit?: number;
  cursor?: string | null;
}

export interface Problem {
  type?: string;
  title?: string;
  status?: number;
  detail?: string | null;
  code?: string;
  request_id?: string;
  errors?: { path: string; message: string }[];
  [field: string]: unknown;
}

export interface InvocationError {
  code: string;
  message: string;
  [field: string]: unknown;
}

export interface Invocation {
  id: string;
  agent: string;
  version: number;
  thread_id: string | null;
  status: InvocationStatus;
  input: unknown;
  output: unknown;
  error: InvocationError | null;
  priority: number;
  attempt: number;
  max_attempts: number;
  recoveries: number;
  timeout_s: number;
  idempotency_key: string | null;
  metadata: Record<string, unknown>;
  parent_id: string | null;
  depth: number;
  created_at: string;
  started_at: string | null;
  finished_at: string | null;
  usage: Record<string, number> | null;
  [field: string]: unknown;
}

export interface Agent {
  id: string;
  slug: string;
  name: string;
  description: string | null;
  tags: string[];
  visibility: string;
  status: string;
  active_version: number | null;
  config: { env: Record<string, string> };
  input_schema: unknown;
  output_schema: unknown;
  created_at: string;
  updated_at: string;
  [field: string]: unknown;
}

export interface AgentVersion {
  id: string;
  agent_id: string;
  version: number;
  digest: string;
  manifest: Record<string, unknown>;
  size_bytes: number;
  created_by: string | null;
  created_at: string;
  build: {
    status: "pending" | "building" | "ready" | "failed";
    id: string | null;
    installer: string | null;
    dependencies_digest: string | null;
    error: string | null;
    warnings: string[];
  };
  [field: string]: unknown;
}

/** One event of an invocation, as the events stream and the logs route give it. */
export interface InvocationEvent {
  seq: number;
  ts: string;
  kind: string;
  stream: string | null;
  level: string | null;
  message: string | null;
  data: unknown;
  [field: string]: unknown;
}

/** The last item of {@link Invocations.events}: the invocation is over. */
export interface StreamEnd {
  kind: "end";
  status: InvocationStatus | null;
  error: InvocationError | null;
}

export interface Interrupt {
  round: number;
  value: unknown;
  answer: unknown;
  answered_by: string | null;
  answered_at: string | null;
  created_at: string;
}

export interface Thread {
  id: string;
  agent: string | null;
  status: "idle" | "busy" | "interrupted";
  metadata: Record<string, unknown>;
  created_at: string;
  updated_at: string;
  [field: string]: unknown;
}

export interface Checkpoint {
  seq: number;
  state: unknown;
  invocation_id: string | null;
  created_at: string;
}

export interface ThreadState {
  thread_id: string;
  state: unknown;
  checkpoint: Checkpoint | null;
}

export interface ApiKey {
  id: string;
  name: string;
  prefix: string;
  scopes: Scope[];
  created_at: string;
  expires_at: string | null;
  last_used_at: string | null;
  revoked_at: string | null;
  [field: string]: unknown;
}

export interface CreatedApiKey extends ApiKey {
  /** Shown this once. */
  secret: string;
}

export interface ClientOptions {
  /** Default: env AGENTD_API_URL. */
  baseUrl?: string;
  /** Default: env AGENTD_API_KEY. An API key or a session token. */
  apiKey?: string;
  /** Per request; default 30000. */
  timeoutMs?: number;
  /** Default 3. */
  maxRetries?: number;
  /** Default 500. */
  backoffBaseMs?: number;
  /** Default 20000. */
  backoffMaxMs?: number;
  /** A longer Retry-After is thrown at once; default 60. */
  maxRetryAfterS?: number;
  userAgent?: string;
  sleep?: (ms: number) => Promise<void>;
  fetch?: typeof fetch;
}

export interface InvokeOptions {
  /** Seconds to wait for the run to settle (finish, or wait for an answer). */
  wait?: number;
  threadId?: string;
  /** Generated when absent, so retries never start two runs. */
  idempotencyKey?: string;
  multitaskStrategy?: "enqueue" | "reject" | "interrupt" | "rollback";
  priority?: number;
  maxAttempts?: number;
  timeoutS?: number;
  inputTimeoutS?: number;
  metadata?: Record<string, unknown>;
  env?: Record<string, string>;
  webhookUrl?: string;
}

export interface RequestOptions {
  query?: Record<string, string | number | boolean | null | undefined>;
  json?: unknown;
  body?: BodyInit;
  contentType?: string;
  headers?: Record<string, string>;
  /** Retry after a lost connection; default: only for idempotent methods. */
  retry?: boolean;
  timeoutMs?: number;
}

export declare class AgentdError extends Error {}
export declare class TransportError extends AgentdError {}
export declare class BundleError extends AgentdError {}
export declare class StreamError extends AgentdError {
  constructor(code: string | null, detail: string);
  code: string | null;
  detail: string;
}
export declare class APIError extends AgentdError {
  constructor(status: number, problem: Problem, headers?: Record<string, string>);
  status: number;
  /** The stable code to switch on: "not_found", "thread_busy", "requests_per_second", ... */
  code: string | null;
  title: string | null;
  detail: string | null;
  type: string | null;
  requestId: string | null;
  problem: Problem;
  headers: Record<string, string>;
  errors: { path: string; message: string }[];
  /** Retry-After in seconds, when sent. */
  readonly retryAfter: number | null;
}
export declare class BadRequest extends APIError {}
export declare class Unauthorized extends APIError {}
export declare class Forbidden extends APIError {}
export declare class NotFound extends APIError {}
export declare class Conflict extends APIError {}
export declare class PayloadTooLarge extends APIError {}
export declare class UnprocessableEntity extends APIError {}
export declare class RateLimited extends APIError {}
export declare class ServerError extends APIError {}
export declare class ServiceUnavailable extends ServerError {}

export declare function errorFor(status: number, problem: Problem, headers?: Record<string, string>): APIError;
export declare function parseRetryAfter(value: string | null | undefined): number | null;

export interface SSEMessage {
  event: string;
  data: string;
  id: string | null;
}
export declare class SSEParser {
  lastEventId: string | null;
  feed(chunk: Uint8Array | string): SSEMessage[];
}

export interface TarEntry {
  name: string;
  type: "file" | "dir" | "symlink";
  mode: number;
  data?: Uint8Array;
  linkname?: string;
}
export declare function tarEntries(dir: string): TarEntry[];
export declare function writeTar(entries: TarEntry[]): Buffer;
export declare function packDir(dir: string): Buffer;
export declare function slugify(name: string): string | null;
export declare function readManifest(dir: string): Record<string, string | string[]>;

export declare class Client {
  constructor(baseUrl?: string, apiKey?: string, options?: ClientOptions);
  constructor(options: ClientOptions);
  readonly baseUrl: string;
  apiKey: string | null;
  agents: Agents;
  invocations: Invocations;
  threads: Threads;
  keys: Keys;
  me(): Promise<Record<string, unknown>>;
  invoke(slug: string, input?: unknown, options?: InvokeOptions): Promise<Invocation>;
  respond(invocationId: string, answer: unknown, options?: { wait?: number }): Promise<Invocation>;
  url(path: string | string[], query?: Record<string, unknown>): string;
  request<T = any>(method: string, path: string | string[], options?: RequestOptions): Promise<T>;
  send(method: string, path: string | string[], options?: RequestOptions & { stream?: boolean; signal?: AbortSignal }): Promise<Response>;
}

export declare class Agents {
  list(options?: PageOptions): Promise<Page<Agent>>;
  iter(): AsyncGenerator<Agent, void, undefined>;
  get(slug: string): Promise<Agent>;
  create(slug: string, fields?: { name?: string; description?: string; tags?: string[]; visibility?: string }): Promise<Agent>;
  update(slug: string, fields: Record<string, unknown>): Promise<Agent>;
  delete(slug: string): Promise<void>;
  /** Packs the folder (or takes a .tar.gz/.zip file) and deploys it as a new version. */
  deploy(dir: string, options?: { slug?: string; activate?: boolean; wait?: number }): Promise<AgentVersion>;
  upload(slug: string, data: Uint8Array, options?: { activate?: boolean; wait?: number }): Promise<AgentVersion>;
  versions(slug: string, options?: PageOptions): Promise<Page<AgentVersion>>;
  rollback(slug: string, version: number): Promise<Agent>;
  activate(slug: string, version: number): Promise<Agent>;
  build(slug: string, version: number): Promise<Record<string, unknown>>;
  secrets(slug: string): Promise<Page<{ name: string; created_at: string; updated_at: string }>>;
  setSecret(slug: string, name: string, value: string): Promise<{ name: string; created_at: string; updated_at: string }>;
  deleteSecret(slug: string, name: string): Promise<void>;
}

export interface InvocationFilter extends PageOptions {
  agent?: string;
  status?: InvocationStatus;
  threadId?: string;
  parentId?: string;
}

export declare class Invocations {
  get(id: string): Promise<Invocation>;
  list(filter?: InvocationFilter): Promise<Page<Invocation>>;
  iter(filter?: Omit<InvocationFilter, "cursor">): AsyncGenerator<Invocation, void, undefined>;
  cancel(id: string): Promise<Invocation>;
  logs(id: string, options?: { after?: number; limit?: number }): Promise<Page<InvocationEvent>>;
  interrupts(id: string): Promise<Page<Interrupt>>;
  respond(id: string, answer: unknown, options?: { wait?: number }): Promise<Invocation>;
  /** Polls until settled or `timeout` seconds pass. */
  wait(id: string, options?: { timeout?: number; intervalMs?: number }): Promise<Invocation>;
  artifacts(id: string): Promise<Page<Record<string, unknown>>>;
  artifact(id: string, name: string): Promise<Buffer>;
  /** Live events, each once and in order, reconnecting with Last-Event-ID; last a {@link StreamEnd}. */
  events(
    id: string,
    options?: { after?: number; maxReconnects?: number; readTimeoutMs?: number },
  ): AsyncGenerator<InvocationEvent | StreamEnd, void, undefined>;
}

export interface ThreadFilter extends PageOptions {
  agent?: string;
  status?: "idle" | "busy" | "interrupted";
  metadata?: Record<string, unknown>;
}

export declare class Threads {
  create(options?: { agent?: string; metadata?: Record<string, unknown> }): Promise<Thread>;
  get(id: string): Promise<Thread>;
  list(filter?: ThreadFilter): Promise<Page<Thread>>;
  iter(filter?: Omit<ThreadFilter, "cursor">): AsyncGenerator<Thread, void, undefined>;
  update(id: string, metadata: Record<string, unknown>): Promise<Thread>;
  delete(id: string): Promise<void>;
  state(id: string): Promise<ThreadState>;
  setState(id: string, state: unknown): Promise<ThreadState>;
  history(id: string, options?: PageOptions): Promise<Page<Checkpoint>>;
}

export declare class Keys {
  list(options?: PageOptions): Promise<Page<ApiKey>>;
  create(name: string, options?: { scopes?: Scope[]; expiresInDays?: number }): Promise<CreatedApiKey>;
  revoke(id: string): Promise<ApiKey>;
}
