//! agentd-sandbox
