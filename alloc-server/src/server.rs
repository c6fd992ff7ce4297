//! The server: requests in, checks, the pools' buddies and the buffer table, replies out.

use crate::buddy::Buddy;
use crate::config::{Config, ConfigError, PoolSpec};
use crate::journal::Journal;
use crate::pool::{bytes, Pool};
use crate::slots::{Live, Release, Slots};
use crate::trace::{Trace, TRACE_KINDS};
use crate::{ARENA_PAGES, ARENA_WORDS, MAX_BUFFERS, MAX_CLIENTS, MAX_POOLS};
use alloc_api::wire::error_reply;
use alloc_api::{
    AllocError, Allocation, ClientId, DmaHandle, PoolId, Reply, Request, MAX_ALIGN, PAGE_SIZE,
};
use heapless::Vec;
use pd_core::trace::TraceRing;
use pd_core::{Channel, Kernel, MessageInfo, MAX_CHANNELS};

/// Trace ring depth.
const TRACE_DEPTH: usize = 32;

/// A client's quota, totals and rights.
#[derive(Debug)]
pub(crate) struct Account {
    pub(crate) name: &'static str,
    pub(crate) quota_bytes: u64,
    pub(crate) max_buffers: u32,
    pub(crate) charged_bytes: u64,
    pub(crate) charged_buffers: u32,
    pub(crate) held_buffers: u32,
    pub(crate) allocs: u64,
    pub(crate) frees: u64,
    pub(crate) reclaimed: u64,
    pub(crate) reclaims: u64,
    /// Bit `p`: this client may allocate from (and query) pool `p`.
    grants: u32,
    /// The supervisor's generation of this PD when last observed.
    generation: Option<u32>,
    /// The latest buffer granted to this caller ([`AllocServer::abandon`] takes it back).
    last_grant: Option<DmaHandle>,
}

/// What a reclaim took back.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReclaimReport {
    /// Buffers released.
    pub buffers: u32,
    /// Their bytes.
    pub bytes: u64,
}

/// How a server with a journal started ([`AllocServer::with_journal`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// It adopted the journal's buffers: their handles stay valid, their contents untouched,
    /// every free page zeroed. `torn` records (writes a fault cut short) came back unused.
    Adopted {
        /// Live buffers adopted.
        buffers: u32,
        /// Their pages.
        pages: u64,
        /// Records whose checksum failed.
        torn: u32,
    },
    /// It started with no buffers: every pool scrubbed, handles of earlier lives stale.
    Fresh(Fresh),
}

/// Why a server started fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fresh {
    /// The journal held no table (first boot, another layout, a torn header).
    NoJournal,
    /// This slot's buffer contradicts the configuration (pool, owner, holder's grant, bounds).
    BadBuffer(u16),
    /// Two of this pool's buffers overlap.
    Overlap(PoolId),
}

/// alloc-server's state: pools, buffer table, clients, and which channel is which client
/// (about 40 KiB, all of it fixed arrays).
#[derive(Debug)]
pub struct AllocServer {
    /// Every pool's free-block bitmaps, each pool in its own range.
    pub(crate) words: [u64; ARENA_WORDS],
    pub(crate) pools: Vec<Pool, MAX_POOLS>,
    pub(crate) clients: Vec<Account, MAX_CLIENTS>,
    callers: [Option<ClientId>; MAX_CHANNELS as usize],
    pub(crate) slots: Slots,
    pub(crate) trace: TraceRing<Trace, TRACE_DEPTH, TRACE_KINDS>,
}

fn find<T>(items: &[T], name: &str, of: impl Fn(&T) -> &str) -> Option<u8> {
    let i = items.iter().position(|t| of(t) == name)?;
    u8::try_from(i).ok()
}

impl AllocServer {
    /// A server over `pools` (in [`PoolId`] order), each scrubbed to zero, with the clients,
    /// grants and callers of `config`, and no journal: a restart loses every buffer.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first thing wrong with the tables.
    pub fn new(
        config: &Config<'_>,
        pools: impl IntoIterator<Item = PoolSpec>,
    ) -> Result<Self, ConfigError> {
        let mut server = Self::configure(config, pools)?;
        server.start_fresh()?;
        Ok(server)
    }

    /// As [`AllocServer::new`], with the buffer table kept in `journal`: a server restarted on
    /// the journal of its previous life adopts that life's buffers when the journal is valid and
    /// agrees with `config` and `pools`, and otherwise starts fresh on it (with an epoch other than
    /// the journal's, so earlier handles are stale).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first thing wrong with the tables.
    pub fn with_journal(
        config: &Config<'_>,
        pools: impl IntoIterator<Item = PoolSpec>,
        journal: Journal,
    ) -> Result<(Self, Start), ConfigError> {
        let mut server = Self::configure(config, pools)?;
        let (why, journal, old_epoch) = match Slots::adopt(journal) {
            Ok((slots, torn)) => {
                let epoch = slots.epoch();
                server.slots = slots;
                match server.adopt() {
                    Ok((buffers, pages)) => {
                        let start = Start::Adopted {
                            buffers,
                            pages,
                            torn,
                        };
                        return Ok((server, start));
                    }
                    Err(why) => (why, server.slots.take_journal(), Some(epoch)),
                }
            }
            Err(journal) => (Fresh::NoJournal, Some(journal), None),
        };
        let epoch = match old_epoch {
            Some(old) if old == config.epoch => old.wrapping_add(1),
            _ => config.epoch,
        };
        server.slots = match journal {
            Some(j) => Slots::journaled(epoch, j).map_err(|_| ConfigError::Journal)?,
            None => Slots::new(epoch),
        };
        server.start_fresh()?;
        Ok((server, Start::Fresh(why)))
    }

    /// Every pool empty and zeroed.
    fn start_fresh(&mut self) -> Result<(), ConfigError> {
        for (id, pool) in (0u8..).zip(self.pools.iter_mut()) {
            pool.rebuild(&mut self.words, &[])
                .map_err(|_| ConfigError::PoolsTooLarge)?;
            self.trace.record(Trace::Scrubbed { pool: PoolId(id) });
        }
        Ok(())
    }

    /// Take the buffer table's live buffers as this life's: check each against the pools and
    /// clients, rebuild every pool's free blocks around them (zeroing the rest) and the
    /// accounts' counters. Returns the buffers and pages adopted.
    fn adopt(&mut self) -> Result<(u32, u64), Fresh> {
        for (index, live) in self.slots.live() {
            let fits = self.pool(live.pool).is_ok_and(|p| {
                p.owner == live.account
                    && live.pages > 0
                    && live
                        .first
                        .checked_add(live.pages)
                        .is_some_and(|e| e <= p.pages())
            });
            if !fits || !self.granted(live.holder, live.pool) {
                return Err(Fresh::BadBuffer(index));
            }
        }
        for (id, pool) in (0u8..).zip(self.pools.iter_mut()) {
            let mut used: Vec<(u32, u32), MAX_BUFFERS> = Vec::new();
            for (_, live) in self.slots.live().filter(|(_, l)| l.pool.0 == id) {
                // The table has MAX_BUFFERS slots: `used` cannot overflow.
                let _ = used.push((live.first, live.pages));
            }
            used.sort_unstable();
            pool.rebuild(&mut self.words, &used)
                .map_err(|_| Fresh::Overlap(PoolId(id)))?;
        }
        for a in self.clients.iter_mut() {
            (a.charged_bytes, a.charged_buffers, a.held_buffers) = (0, 0, 0);
            (a.allocs, a.frees, a.reclaimed, a.reclaims) = (0, 0, 0, 0);
        }
        let (mut buffers, mut pages) = (0, 0);
        for (_, live) in self.slots.live() {
            if let Some(a) = self.clients.get_mut(usize::from(live.account.index())) {
                a.charged_bytes += bytes(live.pages);
                a.charged_buffers += 1;
                a.allocs += 1;
            }
            if let Some(h) = self.clients.get_mut(usize::from(live.holder.index())) {
                h.held_buffers += 1;
            }
            buffers += 1;
            pages += u64::from(live.pages);
        }
        Ok((buffers, pages))
    }

    /// The server with `config`'s clients, grants and callers and `pools` (all free, not yet
    /// zeroed), an empty buffer table of `config.epoch`.
    fn configure(
        config: &Config<'_>,
        pools: impl IntoIterator<Item = PoolSpec>,
    ) -> Result<Self, ConfigError> {
        let mut clients = Vec::new();
        for spec in config.clients {
            if clients.iter().any(|a: &Account| a.name == spec.name) {
                return Err(ConfigError::DuplicateName(spec.name));
            }
            let account = Account {
                name: spec.name,
                quota_bytes: spec.quota_bytes,
                max_buffers: spec.max_buffers,
                charged_bytes: 0,
                charged_buffers: 0,
                held_buffers: 0,
                allocs: 0,
                frees: 0,
                reclaimed: 0,
                reclaims: 0,
                grants: 0,
                generation: None,
                last_grant: None,
            };
            clients
                .push(account)
                .map_err(|_| ConfigError::TooManyClients)?;
        }
        let shares = clients
            .iter()
            .map(|a| u64::from(a.max_buffers))
            .sum::<u64>();
        if shares > MAX_BUFFERS as u64 {
            return Err(ConfigError::TooManyBuffers);
        }
        let client = |name| {
            find(&clients, name, |a| a.name)
                .map(ClientId)
                .ok_or(ConfigError::UnknownClient(name))
        };

        let mut callers = [None; MAX_CHANNELS as usize];
        for &(ch, name) in config.callers {
            let id = client(name)?;
            match callers.get_mut(usize::from(ch.index())) {
                Some(slot @ None) => *slot = Some(id),
                _ => return Err(ConfigError::DuplicateChannel(ch)),
            }
        }

        let mut server = Self {
            words: [0; ARENA_WORDS],
            pools: Vec::new(),
            clients: Vec::new(),
            callers,
            slots: Slots::new(config.epoch),
            trace: TraceRing::new(),
        };
        let (mut pages_used, mut words_used) = (0, 0);
        for spec in pools {
            let owner = client(spec.owner)?;
            let pages = check_pool(&spec)?;
            if server.pools.iter().any(|p| p.name == spec.name) {
                return Err(ConfigError::DuplicateName(spec.name));
            }
            if server.pools.is_full() {
                return Err(ConfigError::TooManyPools);
            }
            pages_used += pages;
            if pages_used > ARENA_PAGES {
                return Err(ConfigError::PoolsTooLarge);
            }
            let pool = Pool::new(spec, owner, &mut server.words, words_used)
                .map_err(|_| ConfigError::PoolsTooLarge)?;
            words_used += Buddy::words_needed(pool.pages());
            server
                .pools
                .push(pool)
                .map_err(|_| ConfigError::TooManyPools)?;
        }
        server.clients = clients;

        for g in config.grants {
            let pool =
                find(&server.pools, g.pool, |p| p.name).ok_or(ConfigError::UnknownPool(g.pool))?;
            let caller = find(&server.clients, g.caller, |a| a.name)
                .and_then(|i| server.clients.get_mut(usize::from(i)))
                .ok_or(ConfigError::UnknownClient(g.caller))?;
            caller.grants |= 1 << pool;
        }
        Ok(server)
    }

    /// The client at the other end of `ch`, if any.
    pub fn caller(&self, ch: Channel) -> Option<ClientId> {
        self.callers.get(usize::from(ch.index())).copied().flatten()
    }

    /// A client by its `system.xml` name.
    pub fn client_id(&self, name: &str) -> Option<ClientId> {
        find(&self.clients, name, |a| a.name).map(ClientId)
    }

    /// A pool by its region name.
    pub fn pool_id(&self, name: &str) -> Option<PoolId> {
        find(&self.pools, name, |p| p.name).map(PoolId)
    }

    /// The journal the buffer table is kept in, if any (the PD keeps its marks there).
    pub fn journal(&self) -> Option<&Journal> {
        self.slots.journal()
    }

    /// The trace ring (recovery decisions: refusals, reclaims, scrubs).
    pub fn trace(&self) -> &TraceRing<Trace, TRACE_DEPTH, TRACE_KINDS> {
        &self.trace
    }

    pub(crate) fn account(&self, id: ClientId) -> Result<&Account, AllocError> {
        self.clients
            .get(usize::from(id.index()))
            .ok_or(AllocError::NoSuchClient)
    }

    fn account_mut(&mut self, id: ClientId) -> Result<&mut Account, AllocError> {
        self.clients
            .get_mut(usize::from(id.index()))
            .ok_or(AllocError::NoSuchClient)
    }

    pub(crate) fn pool(&self, id: PoolId) -> Result<&Pool, AllocError> {
        self.pools
            .get(usize::from(id.index()))
            .ok_or(AllocError::NoSuchPool)
    }

    /// Whether `caller` may use pool `pool` (an existing pool).
    fn granted(&self, caller: ClientId, pool: PoolId) -> bool {
        self.account(caller)
            .is_ok_and(|a| a.grants & (1 << pool.index()) != 0)
    }

    /// Allocate `size` bytes (rounded up to pages) from `pool` for `caller`, aligned to `align`
    /// (a power of two up to 2 MiB) on the device side. The buffer is zero, charged to the
    /// pool's owner, and only `caller` may free it.
    ///
    /// # Errors
    /// `NoSuchPool`, `UnknownCaller`, `NotGranted` (no grant for this pool), `BadAlignment`,
    /// `BadSize` (zero or larger than the pool), `QuotaBytes` / `QuotaBuffers` (the owner's quota),
    /// `NoSlots`, `OutOfMemory` (no block large enough).
    pub fn alloc(
        &mut self,
        caller: ClientId,
        pool: PoolId,
        size: u64,
        align: u64,
    ) -> Result<Allocation, AllocError> {
        // Only a grant this very call makes may be abandoned: a refused request whose answer
        // arrived garbled must not take back the grant before it, which the caller holds.
        self.account_mut(caller)
            .map_err(|_| AllocError::UnknownCaller)?
            .last_grant = None;
        let owner = self.pool(pool)?.owner;
        if !self.granted(caller, pool) {
            return Err(AllocError::NotGranted);
        }
        if !align.is_power_of_two() || align > MAX_ALIGN {
            return Err(AllocError::BadAlignment);
        }
        let pages = u32::try_from(size.div_ceil(PAGE_SIZE))
            .ok()
            .filter(|&n| n > 0 && n <= self.pool(pool).map_or(0, Pool::pages))
            .ok_or(AllocError::BadSize)?;
        // align <= 2 MiB, so align / PAGE_SIZE <= 512 fits.
        let align_pages =
            u32::try_from((align / PAGE_SIZE).max(1)).map_err(|_| AllocError::BadAlignment)?;
        let account = self.account(owner)?;
        if account.charged_bytes.saturating_add(bytes(pages)) > account.quota_bytes {
            return Err(AllocError::QuotaBytes);
        }
        if account.charged_buffers >= account.max_buffers {
            return Err(AllocError::QuotaBuffers);
        }
        if !self.slots.has_room() {
            return Err(AllocError::NoSlots);
        }
        let p = self
            .pools
            .get_mut(usize::from(pool.index()))
            .ok_or(AllocError::NoSuchPool)?;
        let first = p.alloc(&mut self.words, pages, align_pages)?;
        let grant = Allocation {
            handle: DmaHandle::from_raw(0),
            offset: p.offset(first),
            device_addr: p.device_addr(first),
            size: bytes(pages),
        };
        let live = Live {
            pool,
            first,
            pages,
            holder: caller,
            account: owner,
        };
        let handle = match self.slots.insert(live) {
            Ok(h) => h,
            Err(e) => {
                let _ = p.release(&mut self.words, first, pages, false);
                return Err(e);
            }
        };
        let account = self.account_mut(owner)?;
        account.charged_bytes += bytes(pages);
        account.charged_buffers += 1;
        account.allocs += 1;
        let holder = self.account_mut(caller)?;
        holder.held_buffers += 1;
        holder.last_grant = Some(handle);
        Ok(Allocation { handle, ..grant })
    }

    /// Take back `caller`'s latest grant, because its reply reached the caller garbled (the
    /// caller cannot trust the handle it got, so it names the grant by its own order of calls).
    /// The buffer is zeroed and freed as by its holder.
    ///
    /// # Errors
    /// `NothingToAbandon` when the caller has no live latest grant (none made, or freed since).
    pub fn abandon(&mut self, caller: ClientId) -> Result<(), AllocError> {
        let handle = self
            .account_mut(caller)?
            .last_grant
            .take()
            .ok_or(AllocError::NothingToAbandon)?;
        let (index, live) = self
            .slots
            .lookup(handle, caller)
            .map_err(|_| AllocError::NothingToAbandon)?;
        self.release(index, live, Release::Freed, true)
    }

    /// Free the buffer `handle` names; `offset` must be the one it was granted at. The memory is
    /// zeroed before it can be handed out again.
    ///
    /// # Errors
    /// `StaleHandle`, `BadHandle`, `DoubleFree`, `Reclaimed`, `NotOwner` (see the buffer table),
    /// `OffsetMismatch`; nothing changes on any of them.
    pub fn free(
        &mut self,
        caller: ClientId,
        handle: DmaHandle,
        offset: u64,
    ) -> Result<(), AllocError> {
        let (index, live) = self.slots.lookup(handle, caller)?;
        if bytes(live.first) != offset {
            return Err(AllocError::OffsetMismatch);
        }
        self.release(index, live, Release::Freed, true)
    }

    /// End buffer `index`: zero it if asked, return its pages, uncharge its owner and holder.
    fn release(
        &mut self,
        index: u16,
        live: Live,
        why: Release,
        zero: bool,
    ) -> Result<(), AllocError> {
        let pool = self
            .pools
            .get_mut(usize::from(live.pool.index()))
            .ok_or(AllocError::Internal)?;
        // The table (and its journal) first: a fault before the pages are back leaves them free
        // in the journal, to be zeroed by the next life.
        self.slots.remove(index, why)?;
        pool.release(&mut self.words, live.first, live.pages, zero)?;
        let account = self.account_mut(live.account)?;
        account.charged_bytes = account.charged_bytes.saturating_sub(bytes(live.pages));
        account.charged_buffers = account.charged_buffers.saturating_sub(1);
        match why {
            Release::Freed => account.frees += 1,
            Release::Reclaimed => account.reclaimed += 1,
            Release::Never => {}
        }
        let holder = self.account_mut(live.holder)?;
        holder.held_buffers = holder.held_buffers.saturating_sub(1);
        Ok(())
    }

    /// Take back everything `client` owned, because the supervisor restarted or retired it:
    /// every buffer it holds (zeroed) and every buffer in the pools it owns, whoever holds them
    /// (those pools are then zeroed whole, since the owner could write anywhere in them). Their
    /// handles answer `Reclaimed` from now on.
    ///
    /// # Errors
    /// `NoSuchClient`; `Internal` if the server's state is inconsistent.
    pub fn reclaim(&mut self, client: ClientId) -> Result<ReclaimReport, AllocError> {
        let name = self.account(client)?.name;
        let mut report = ReclaimReport::default();
        for index in (0u16..).take(MAX_BUFFERS) {
            let Some(live) = self.slots.get(index) else {
                continue;
            };
            if live.holder != client && live.account != client {
                continue;
            }
            self.release(index, live, Release::Reclaimed, live.account != client)?;
            report.buffers += 1;
            report.bytes += bytes(live.pages);
        }
        for (id, pool) in (0u8..).zip(self.pools.iter()) {
            if pool.owner == client {
                pool.scrub()?;
                self.trace.record(Trace::Scrubbed { pool: PoolId(id) });
            }
        }
        self.account_mut(client)?.reclaims += 1;
        self.trace.record(Trace::Reclaimed {
            client,
            buffers: report.buffers,
        });
        log::info!(
            "alloc: reclaimed {} buffers ({} KiB) of {name}",
            report.buffers,
            report.bytes / 1024
        );
        Ok(report)
    }

    /// Tell the server the supervisor's current generation (restart count) of `client`; a change
    /// since the last observation means the client was restarted, so it is reclaimed. The first
    /// observation only records. The PD glue calls this for each client when the supervisor
    /// notifies that its status page changed.
    ///
    /// # Errors
    /// As [`AllocServer::reclaim`].
    pub fn observe(
        &mut self,
        client: ClientId,
        generation: u32,
    ) -> Result<Option<ReclaimReport>, AllocError> {
        match self.account_mut(client)?.generation.replace(generation) {
            Some(seen) if seen != generation => self.reclaim(client).map(Some),
            _ => Ok(None),
        }
    }

    /// Serve one request from `caller`.
    fn serve(&mut self, caller: ClientId, req: Request) -> Result<Reply, AllocError> {
        match req {
            Request::Alloc { pool, size, align } => {
                self.alloc(caller, pool, size, align).map(Reply::Allocated)
            }
            Request::Free { handle, offset } => {
                self.free(caller, handle, offset).map(|()| Reply::Freed)
            }
            Request::Abandon => self.abandon(caller).map(|()| Reply::Freed),
            Request::PoolUsage { pool } => {
                let usage = self.pool_usage(pool)?;
                if !self.granted(caller, pool) {
                    return Err(AllocError::NotGranted);
                }
                Ok(Reply::Pool(usage))
            }
            Request::ClientUsage { client } => {
                let client = client.unwrap_or(caller);
                let usage = self.client_usage(client)?;
                let owns_granted = (0u8..)
                    .zip(self.pools.iter())
                    .any(|(id, p)| p.owner == client && self.granted(caller, PoolId(id)));
                if client != caller && !owns_granted {
                    return Err(AllocError::NotGranted);
                }
                Ok(Reply::Client(usage))
            }
        }
    }

    /// A PPC arrived on `ch` (the PD's `protected` entry point): decode, check, serve, reply.
    /// A refusal is answered with its [`AllocError`] code, traced and logged; it changes nothing.
    pub fn protected(&mut self, k: &mut dyn Kernel, ch: Channel, msg: MessageInfo) -> MessageInfo {
        let caller = self.caller(ch);
        let result = caller
            .ok_or(AllocError::UnknownCaller)
            .and_then(|c| Ok((c, Request::decode(msg, k.mrs())?)))
            .and_then(|(c, req)| self.serve(c, req));
        match result {
            Ok(reply) => reply.encode(k.mrs()),
            Err(error) => {
                self.trace.record(Trace::Refused {
                    caller,
                    label: msg.label(),
                    error,
                });
                let who = caller
                    .and_then(|c| self.account(c).ok())
                    .map_or("?", |a| a.name);
                log::warn!(
                    "{}: refused label {:#x} from {who} on {ch:?}: {error}",
                    k.pd_name(),
                    msg.label()
                );
                error_reply(error)
            }
        }
    }
}

/// Check a pool's geometry; returns its page count.
fn check_pool(spec: &PoolSpec) -> Result<usize, ConfigError> {
    let size = spec.memory.size();
    // CAST: PAGE_SIZE and MAX_ALIGN are small constants.
    let (page, align) = (PAGE_SIZE as usize, MAX_ALIGN);
    if size == 0
        || !size.is_multiple_of(page)
        || spec.device_base.checked_add(size as u64).is_none()
    {
        return Err(ConfigError::PoolSize(spec.name));
    }
    if !spec.device_base.is_multiple_of(align) {
        return Err(ConfigError::PoolAlignment(spec.name));
    }
    Ok(size / page)
}
