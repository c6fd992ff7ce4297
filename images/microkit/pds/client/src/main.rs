//! `client.elf` on seL4: pd-programs' `client` PD module, unchanged, on the pd-sel4 glue; in the
//! fault campaign's image (feature `campaign`), the campaign client with the image's plan.
#![no_std]
#![no_main]

#[cfg(not(feature = "campaign"))]
pd_sel4::protection_domain!(pd_programs::client::init);

#[cfg(feature = "campaign")]
fn campaign(k: &mut dyn pd_core::Kernel) -> pd_programs::campaign_client::Client {
    pd_programs::campaign_client::init(k, pd_sel4::fault_plan())
}

#[cfg(feature = "campaign")]
pd_sel4::protection_domain!(campaign);
