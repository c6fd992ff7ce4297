//! Top-of-VRAM framebuffer layout and GspFwWprMeta.
