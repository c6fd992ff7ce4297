//! GSP firmware ELF and BinHdr blobs.
