//! GPU page-table formats (MMU v2), shared by gpu-server (writer) and the model (walker).
