//! Accounting: usage records, the bring-up log's one line per pool, and the audit the fault
//! campaign uses to prove nothing leaked.
//!
//! The proof after a campaign that restarted clients: [`AllocServer::audit`] passes (every
//! counter agrees with the buffer table and the free-block bitmaps, and for every client `allocs ==
//! frees + reclaimed + live`), and each restarted client's [`ClientUsage`] shows
//! `charged_buffers == 0` and `held_buffers == 0`.

use crate::pool::bytes;
use crate::server::AllocServer;
use crate::{MAX_CLIENTS, MAX_POOLS};
use alloc_api::{AllocError, ClientId, ClientUsage, PoolId, PoolUsage};
use core::fmt;

/// What the audit found inconsistent (each is a server bug).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuditError {
    /// The pool's free-block bitmaps are inconsistent or disagree with its free-page count.
    FreeBlocks(PoolId),
    /// Free pages plus used pages is not the pool's size.
    Pages(PoolId),
    /// The pool's live-buffer or used-page counters disagree with the buffer table.
    PoolCounters(PoolId),
    /// A live buffer is charged to someone other than its pool's owner, or names no pool.
    Charge(ClientId),
    /// The client's charged or held counters disagree with the buffer table.
    ClientCounters(ClientId),
    /// The client's allocations are not all accounted for as freed, reclaimed or live.
    Ledger(ClientId),
}

/// What the audit counted.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AuditSummary {
    /// Live buffers in all pools.
    pub live_buffers: u32,
    /// Their bytes.
    pub live_bytes: u64,
}

/// One pool's line for the bring-up log (`Display`).
#[derive(Clone, Copy, Debug)]
pub struct PoolLine<'a> {
    name: &'a str,
    owner: &'a str,
    usage: PoolUsage,
}

impl fmt::Display for PoolLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let u = &self.usage;
        write!(
            f,
            "alloc: pool {} (owner {}, device {:#x}): {} buffers, {} of {} KiB used, largest free {} KiB, {} allocs, {} releases",
            self.name,
            self.owner,
            u.device_base,
            u.live_buffers,
            u.used / 1024,
            u.size / 1024,
            u.largest_free / 1024,
            u.allocs,
            u.releases
        )
    }
}

impl AllocServer {
    /// Usage of one pool.
    ///
    /// # Errors
    /// `NoSuchPool`.
    pub fn pool_usage(&self, pool: PoolId) -> Result<PoolUsage, AllocError> {
        Ok(self.pool(pool)?.usage(pool))
    }

    /// Totals of one client.
    ///
    /// # Errors
    /// `NoSuchClient`.
    pub fn client_usage(&self, client: ClientId) -> Result<ClientUsage, AllocError> {
        let a = self.account(client)?;
        Ok(ClientUsage {
            client: client.index(),
            charged_buffers: a.charged_buffers,
            charged_bytes: a.charged_bytes,
            quota_bytes: a.quota_bytes,
            max_buffers: a.max_buffers,
            held_buffers: a.held_buffers,
            allocs: a.allocs,
            frees: a.frees,
            reclaimed: a.reclaimed,
            reclaims: a.reclaims,
            ..ClientUsage::default()
        })
    }

    /// One line per pool for the hosted bring-up log (each starts with `alloc:`).
    pub fn usage_lines(&self) -> impl Iterator<Item = PoolLine<'_>> + '_ {
        (0u8..).zip(self.pools.iter()).map(|(id, p)| PoolLine {
            name: p.name,
            owner: self.account(p.owner).map_or("?", |a| a.name),
            usage: p.usage(PoolId(id)),
        })
    }

    /// Recount everything from the buffer table and the free-block bitmaps and compare with the
    /// counters the server keeps. O(buffer slots + bitmap words + free blocks × orders).
    ///
    /// # Errors
    /// The first inconsistency found, as an [`AuditError`].
    pub fn audit(&self) -> Result<AuditSummary, AuditError> {
        let mut pool_buffers = [0u32; MAX_POOLS];
        let mut pool_pages = [0u32; MAX_POOLS];
        let mut charged = [(0u32, 0u64); MAX_CLIENTS];
        let mut held = [0u32; MAX_CLIENTS];
        let mut summary = AuditSummary::default();
        for (_, live) in self.slots.live() {
            let owner = self.pool(live.pool).map(|p| p.owner);
            let pi = usize::from(live.pool.index());
            let (Some(pb), Some(pp), Ok(owner)) =
                (pool_buffers.get_mut(pi), pool_pages.get_mut(pi), owner)
            else {
                return Err(AuditError::Charge(live.account));
            };
            if owner != live.account {
                return Err(AuditError::Charge(live.account));
            }
            *pb += 1;
            *pp += live.pages;
            let c = charged
                .get_mut(usize::from(live.account.index()))
                .ok_or(AuditError::Charge(live.account))?;
            c.0 += 1;
            c.1 += bytes(live.pages);
            *held
                .get_mut(usize::from(live.holder.index()))
                .ok_or(AuditError::ClientCounters(live.holder))? += 1;
            summary.live_buffers += 1;
            summary.live_bytes += bytes(live.pages);
        }
        for ((id, pool), (&buffers, &pages)) in (0u8..)
            .zip(self.pools.iter())
            .zip(pool_buffers.iter().zip(pool_pages.iter()))
        {
            let id = PoolId(id);
            let free = pool
                .count_free(&self.words)
                .map_err(|_| AuditError::FreeBlocks(id))?;
            if free + pool.used_pages != pool.pages() {
                return Err(AuditError::Pages(id));
            }
            if pool.live_buffers != buffers || pool.used_pages != pages {
                return Err(AuditError::PoolCounters(id));
            }
        }
        for ((id, a), (&(buffers, bytes), &held)) in (0u8..)
            .zip(self.clients.iter())
            .zip(charged.iter().zip(held.iter()))
        {
            let id = ClientId(id);
            if a.charged_buffers != buffers || a.charged_bytes != bytes || a.held_buffers != held {
                return Err(AuditError::ClientCounters(id));
            }
            if a.allocs != a.frees + a.reclaimed + u64::from(a.charged_buffers) {
                return Err(AuditError::Ledger(id));
            }
        }
        Ok(summary)
    }
}
