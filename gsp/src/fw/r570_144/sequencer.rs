//! rpc_run_cpu_sequencer and opcodes (570.144).
