//! agentd-worker
