//! Which instances of its clients a server has outlived, from the supervisor's status page: the
//! trigger for taking back what a dead instance held (pci's claims, alloc's DMA buffers).
//!
//! An instance is a generation of a child PD. Generation `g` has ended once the page shows it
//! faulted (state other than `Running`: restart pending, held, failed) or shows a later
//! generation. [`Deaths::since`] reports each ended generation once. That matters for a
//! throttled restart, which the page shows twice (`g` Restarting, later `g + 1` Running): the
//! server reclaims at the first, and the second does not take back what instance `g + 1` may
//! already hold. (`status::Watch` reports every change of generation or state, which would.)

use crate::status::{self, PdState, PdStatus};
use pd_core::shm::{Access, Region};
use pd_core::Child;

/// The last generation of `s`'s child that has ended (0: none yet).
fn ended(s: &PdStatus) -> u32 {
    match PdState::try_from(s.state) {
        Ok(PdState::Running) => s.generation.saturating_sub(1),
        _ => s.generation,
    }
}

/// The children a server watches and the last ended generation it handled for each.
#[derive(Debug)]
pub struct Deaths<const N: usize> {
    children: [Child; N],
    handled: [u32; N],
}

impl<const N: usize> Deaths<N> {
    /// Watch `children`; whatever ended before now counts as handled (a server that just started
    /// holds nothing of earlier instances).
    pub fn new<A: Access>(page: &Region<A>, children: [Child; N]) -> Self {
        let mut d = Self {
            children,
            handled: [0; N],
        };
        let _ = d.since(page);
        d
    }

    /// Watch `children`, resuming from `handled` (the last ended generation of each that an
    /// earlier life of the server handled, kept where it survives the server: alloc's journal).
    /// Whatever ended since is reported by the next [`Deaths::since`].
    pub fn resume(children: [Child; N], handled: [u32; N]) -> Self {
        Self { children, handled }
    }

    /// The last ended generation handled, per watched child (for [`Deaths::resume`]).
    pub fn handled(&self) -> [u32; N] {
        self.handled
    }

    /// The watched children with an instance that ended since the last call, each with the
    /// generation that ended. A page that cannot be read reports nothing.
    pub fn since<A: Access>(&mut self, page: &Region<A>) -> heapless::Vec<(Child, u32), N> {
        let mut out = heapless::Vec::new();
        for (&child, handled) in self.children.iter().zip(self.handled.iter_mut()) {
            let Ok(s) = status::read(page, child) else {
                continue;
            };
            let gone = ended(&s);
            if gone > *handled {
                *handled = gone;
                // Cannot overflow: at most one entry per watched child.
                let _ = out.push((child, gone));
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    extern crate std;
    use super::*;
    use crate::status::{reset, write};
    use pd_core::shm::ReadWrite;

    fn set(page: &Region<ReadWrite>, child: Child, generation: u32, state: PdState) {
        let s = PdStatus {
            generation,
            state: state as u32,
            restarts: generation.saturating_sub(1),
            last_fault: 0,
        };
        write(page, child, &s).unwrap();
    }

    #[test]
    fn each_ended_generation_is_reported_once() {
        let page = Region::from_static(std::vec![0u8; 0x1000].leak());
        let (a, b) = (Child::new(3), Child::new(4));
        // Before the supervisor wrote the page nothing is reported, and nothing is lost.
        let mut d = Deaths::new(&page, [a, b]);
        assert!(d.since(&page).is_empty());
        reset(&page).unwrap();
        set(&page, a, 1, PdState::Running);
        set(&page, b, 1, PdState::Running);
        assert!(d.since(&page).is_empty());
        // An immediate restart shows only the new generation.
        set(&page, a, 2, PdState::Running);
        assert_eq!(d.since(&page).as_slice(), &[(a, 1)]);
        assert!(d.since(&page).is_empty());
        // A throttled restart shows the fault first, then the new generation: reported once.
        set(&page, b, 1, PdState::Restarting);
        assert_eq!(d.since(&page).as_slice(), &[(b, 1)]);
        set(&page, b, 2, PdState::Running);
        assert!(d.since(&page).is_empty());
        // Held and failed instances have ended too; two restarts between looks report the last.
        set(&page, b, 2, PdState::Held);
        set(&page, a, 4, PdState::Running);
        assert_eq!(d.since(&page).as_slice(), &[(a, 3), (b, 2)]);
    }

    #[test]
    fn a_server_started_late_does_not_reclaim_for_earlier_instances() {
        let page = Region::from_static(std::vec![0u8; 0x1000].leak());
        reset(&page).unwrap();
        let a = Child::new(5);
        set(&page, a, 3, PdState::Running);
        let mut d = Deaths::new(&page, [a]);
        assert!(d.since(&page).is_empty());
        set(&page, a, 3, PdState::Failed);
        assert_eq!(d.since(&page).as_slice(), &[(a, 3)]);
    }
}
