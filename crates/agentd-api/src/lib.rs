//! agentd-api
