//! agentd-client
