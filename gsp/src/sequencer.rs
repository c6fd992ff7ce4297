//! CPU sequencer interpreter (opcodes 0-8), bounds-checked.
