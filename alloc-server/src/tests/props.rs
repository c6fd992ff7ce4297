//! Property tests: random alloc / free / forged free / restart sequences against a model.
//!
//! After every step: live buffers never overlap and stay inside their pool, alignment is held,
//! every quota is held, a fresh buffer reads zero and a freed one is zero at once, refusals are
//! exactly the ones the model predicts (out-of-memory only when no free block is large enough),
//! a restart reclaims everything the client held or owned (zeroed), and the audit agrees with
//! the model's count.

use super::*;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Alloc {
        caller: u8,
        pool: u8,
        log: u32,
        extra: u16,
        align_log: u32,
    },
    Free(usize),
    Forge {
        pick: usize,
        how: u8,
    },
    Restart(u8),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => (0..2u8, 0..4u8, 0..10u32, any::<u16>(), 0..10u32).prop_map(
            |(caller, pool, log, extra, align_log)| Op::Alloc { caller, pool, log, extra, align_log }
        ),
        3 => any::<usize>().prop_map(Op::Free),
        1 => (any::<usize>(), 0..3u8).prop_map(|(pick, how)| Op::Forge { pick, how }),
        1 => (0..4u8).prop_map(Op::Restart),
    ]
}

#[derive(Clone, Copy, Debug)]
struct Buf {
    holder: ClientId,
    pool: PoolId,
    a: Allocation,
}

/// Pool ids and client ids coincide in the fixture: pool `i` is owned by client `i`.
fn owner(pool: PoolId) -> ClientId {
    ClientId(pool.0)
}

fn granted(caller: ClientId, pool: PoolId) -> bool {
    GRANTS.iter().any(|g| {
        g.caller == CLIENTS[usize::from(caller.0)].name && g.pool == POOLS[usize::from(pool.0)].0
    })
}

struct Model {
    fx: Fixture,
    live: Vec<Buf>,
    /// Handles that died (freed or reclaimed), with their holder and offset.
    dead: Vec<Buf>,
}

impl Model {
    fn charged(&self, client: ClientId) -> (u64, u32) {
        let mine = self.live.iter().filter(|b| owner(b.pool) == client);
        mine.fold((0, 0), |(bytes, n), b| (bytes + b.a.size, n + 1))
    }

    fn alloc(
        &mut self,
        caller: ClientId,
        pool: PoolId,
        pages: u64,
        align: u64,
    ) -> Result<(), TestCaseError> {
        let size = pages * PAGE;
        let got = self.fx.server.alloc(caller, pool, size - PAGE / 2, align);
        let spec = CLIENTS[usize::from(owner(pool).0)];
        let (bytes, count) = self.charged(owner(pool));
        let expected = if !granted(caller, pool) {
            Some(AllocError::NotGranted)
        } else if size > POOLS[usize::from(pool.0)].2 {
            Some(AllocError::BadSize)
        } else if bytes + size > spec.quota_bytes {
            Some(AllocError::QuotaBytes)
        } else if count >= spec.max_buffers {
            Some(AllocError::QuotaBuffers)
        } else {
            None
        };
        match (got, expected) {
            (Err(e), Some(x)) => prop_assert_eq!(e, x),
            (Err(AllocError::OutOfMemory), None) => {
                let need = pages.next_power_of_two().max(align / PAGE) * PAGE;
                let largest = self.fx.server.pool_usage(pool).unwrap().largest_free;
                prop_assert!(
                    largest < need,
                    "out of memory with a {largest:#x} block free for {need:#x}"
                );
            }
            (Ok(a), None) => {
                prop_assert_eq!(a.size, size);
                prop_assert_eq!(a.device_addr % align, 0);
                prop_assert_eq!(a.device_addr, POOLS[usize::from(pool.0)].3 + a.offset);
                prop_assert!(a.offset + a.size <= POOLS[usize::from(pool.0)].2);
                for b in self.live.iter().filter(|b| b.pool == pool) {
                    let apart =
                        a.offset + a.size <= b.a.offset || b.a.offset + b.a.size <= a.offset;
                    prop_assert!(apart, "{a:?} overlaps {b:?}");
                }
                prop_assert!(
                    self.fx.all(pool, a.offset, a.size, 0),
                    "fresh buffer not zero"
                );
                self.fx.scribble(pool, &a, 0xc3);
                self.live.push(Buf {
                    holder: caller,
                    pool,
                    a,
                });
            }
            (got, expected) => prop_assert!(false, "got {got:?}, model expected {expected:?}"),
        }
        Ok(())
    }

    fn free(&mut self, pick: usize) -> Result<(), TestCaseError> {
        if self.live.is_empty() {
            return Ok(());
        }
        let b = self.live.swap_remove(pick % self.live.len());
        prop_assert_eq!(
            self.fx.server.free(b.holder, b.a.handle, b.a.offset),
            Ok(())
        );
        prop_assert!(
            self.fx.all(b.pool, b.a.offset, b.a.size, 0),
            "freed buffer not zero"
        );
        self.dead.push(b);
        Ok(())
    }

    fn forge(&mut self, pick: usize, how: u8) -> Result<(), TestCaseError> {
        let (Some(&live), Some(&dead)) = (
            self.live.get(pick % self.live.len().max(1)),
            self.dead.get(pick % self.dead.len().max(1)),
        ) else {
            return Ok(());
        };
        let other = if live.holder == GSP { GPU } else { GSP };
        let (got, allowed): (_, &[AllocError]) = match how {
            0 => (
                self.fx.server.free(other, live.a.handle, live.a.offset),
                &[AllocError::NotOwner],
            ),
            1 => (
                self.fx
                    .server
                    .free(live.holder, live.a.handle, live.a.offset + PAGE),
                &[AllocError::OffsetMismatch],
            ),
            _ => (
                self.fx
                    .server
                    .free(dead.holder, dead.a.handle, dead.a.offset),
                &[
                    AllocError::DoubleFree,
                    AllocError::StaleHandle,
                    AllocError::Reclaimed,
                ],
            ),
        };
        prop_assert!(
            got.is_err_and(|e| allowed.contains(&e)),
            "forged free gave {got:?}"
        );
        Ok(())
    }

    fn restart(&mut self, client: ClientId) -> Result<(), TestCaseError> {
        let (gone, kept): (Vec<Buf>, Vec<Buf>) = self
            .live
            .iter()
            .partition(|b| b.holder == client || owner(b.pool) == client);
        let report = self.fx.server.reclaim(client).unwrap();
        prop_assert_eq!(report.buffers as usize, gone.len());
        prop_assert_eq!(report.bytes, gone.iter().map(|b| b.a.size).sum::<u64>());
        for b in &gone {
            prop_assert!(
                self.fx.all(b.pool, b.a.offset, b.a.size, 0),
                "reclaimed buffer not zero"
            );
        }
        // The client's own pool is empty now, and all of it reads zero.
        prop_assert!(self
            .fx
            .all(PoolId(client.0), 0, POOLS[usize::from(client.0)].2, 0));
        let u = self.fx.server.client_usage(client).unwrap();
        prop_assert_eq!(
            (u.charged_buffers, u.charged_bytes, u.held_buffers),
            (0, 0, 0)
        );
        self.dead.extend(gone);
        self.live = kept;
        Ok(())
    }

    fn check(&self) -> Result<(), TestCaseError> {
        let audit = self.fx.server.audit();
        prop_assert!(audit.is_ok(), "audit: {audit:?}");
        let audit = audit.unwrap();
        prop_assert_eq!(audit.live_buffers as usize, self.live.len());
        prop_assert_eq!(
            audit.live_bytes,
            self.live.iter().map(|b| b.a.size).sum::<u64>()
        );
        for (i, spec) in CLIENTS.iter().enumerate() {
            let u = self.fx.server.client_usage(ClientId(i as u8)).unwrap();
            prop_assert!(
                u.charged_bytes <= spec.quota_bytes && u.charged_buffers <= spec.max_buffers
            );
            prop_assert_eq!(
                (u.charged_bytes, u.charged_buffers),
                self.charged(ClientId(i as u8))
            );
        }
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn random_sequences_keep_every_rule(ops in proptest::collection::vec(op(), 1..80)) {
        let mut m = Model { fx: Fixture::new(), live: Vec::new(), dead: Vec::new() };
        for op in ops {
            match op {
                Op::Alloc { caller, pool, log, extra, align_log } => {
                    let pages = (1u64 << log) + u64::from(extra) % (1u64 << log);
                    m.alloc(ClientId(caller), PoolId(pool), pages, PAGE << align_log)?;
                }
                Op::Free(pick) => m.free(pick)?,
                Op::Forge { pick, how } => m.forge(pick, how)?,
                Op::Restart(client) => m.restart(ClientId(client))?,
            }
            m.check()?;
        }
        // Restarting everyone leaves nothing live, every pool whole and zero.
        for c in 0..4 {
            m.restart(ClientId(c))?;
        }
        m.check()?;
        for (i, p) in POOLS.iter().enumerate() {
            let u = m.fx.server.pool_usage(PoolId(i as u8)).unwrap();
            prop_assert_eq!((u.live_buffers, u.used, u.largest_free), (0, 0, p.2));
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// The buddy alone on a pool the size of `gsp_dma` (96 MiB, several summary words per order):
    /// grants never overlap, stay inside and aligned, and the bitmaps pass the audit throughout.
    #[test]
    fn buddy_grants_on_a_gsp_sized_pool_stay_disjoint_and_audited(
        ops in proptest::collection::vec((any::<bool>(), 0..10u32, any::<u16>(), 0..10u32, any::<usize>()), 1..300)
    ) {
        use crate::buddy::Buddy;
        const PAGES: u32 = 24576;
        let mut words = vec![0; Buddy::words_needed(PAGES)];
        let mut b = Buddy::new(PAGES, &mut words).unwrap();
        let mut live: Vec<(u32, u32)> = Vec::new();
        for (grant, log, extra, align_log, pick) in ops {
            if grant || live.is_empty() {
                let pages = (1u32 << log) + u32::from(extra) % (1 << log);
                let Ok(first) = b.alloc(&mut words, pages, 1 << align_log) else { continue };
                prop_assert_eq!(first % (1 << align_log), 0);
                prop_assert!(first + pages <= PAGES);
                prop_assert!(live.iter().all(|&(f, n)| first + pages <= f || f + n <= first));
                live.push((first, pages));
            } else {
                let (first, pages) = live.swap_remove(pick % live.len());
                b.free(&mut words, first, pages).unwrap();
            }
            let used: u32 = live.iter().map(|l| l.1).sum();
            prop_assert_eq!(b.count_free(&words), Ok(PAGES - used));
        }
        for (first, pages) in live.drain(..) {
            b.free(&mut words, first, pages).unwrap();
        }
        prop_assert_eq!((b.free_pages(), b.largest_free()), (PAGES, 16384));
    }
}
