//! The GSP message queues (cmdq/statq): in-place send, validated receive, resync.
