//! agentd-bundle
