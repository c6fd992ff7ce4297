//! The campaign client program on the hosted platforms: `pd_programs::campaign_client` (the one
//! definition, shared with the seL4 campaign image), given the plan these platforms pass in the
//! environment ([`PLAN_ENV`]).

pub use pd_programs::campaign_client::*;

use pd_core::faults::PLAN_ENV;
use pd_core::Kernel;

/// `client.elf`'s `init` in the campaign's program table.
pub fn init(k: &mut dyn Kernel) -> Client {
    let plan = std::env::var(PLAN_ENV).ok();
    pd_programs::campaign_client::init(k, plan.as_deref())
}
