//! Cross-element rules of the Microkit tool. (Being built.)

use crate::{Error, System};

pub(crate) fn validate(_system: &System) -> Result<(), Error> {
    Ok(())
}
