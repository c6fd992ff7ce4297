//! The hosted Microkit runtime. (Being built: issue 3.)
