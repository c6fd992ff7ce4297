//! RPC codec: rpc_message_header_v03_00, typed payloads, reply matching, event dispatch.
