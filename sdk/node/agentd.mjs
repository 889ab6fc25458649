// agentd: the in-sandbox helper for Node agents. The implementation lives in
// ./agentd/index.mjs, which the platform mounts at /node_modules/agentd so that agents can
// `import { run } from "agentd"`; this file is the path the design documents.
export * from "./agentd/index.mjs";
