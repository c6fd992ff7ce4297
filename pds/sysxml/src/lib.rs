//! Parse and validate Microkit system descriptions. (Being built: issue 3.)
