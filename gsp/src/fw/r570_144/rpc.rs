//! rpc_message_header_v03_00 and function numbers (570.144).
