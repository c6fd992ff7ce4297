//! One test per rule of the server: grants, policy, quota, zeroing, handles, reclaim,
//! accounting, configuration, and the PPC path through the real client stub.

use super::*;
use alloc_api::wire::error_reply;
use alloc_api::{DmaClient, DmaError, DmaHandle, FreeList, FreeSlot, Request, MAX_ALIGN};

#[test]
fn construction_scrubs_dirty_pools() {
    let fx = Fixture::new();
    for (i, p) in POOLS.iter().enumerate() {
        assert!(fx.all(PoolId(i as u8), 0, p.2, 0), "{} not scrubbed", p.0);
    }
    assert_eq!(fx.server.trace().count(2), 4, "one Scrubbed per pool");
}

#[test]
fn a_grant_has_offset_device_address_and_page_rounded_size() {
    let mut fx = Fixture::new();
    let a = fx.alloc(GSP, GSP_DMA, 1).unwrap();
    let b = fx.alloc(GSP, GSP_DMA, PAGE + 1).unwrap();
    assert_eq!((a.offset, a.size), (0, PAGE));
    assert_eq!(b.size, 2 * PAGE);
    assert_eq!(b.device_addr, POOLS[0].3 + b.offset);
    assert_ne!(a.offset, b.offset);
    assert_ne!(a.handle, b.handle);
    assert!(fx.all(GSP_DMA, b.offset, b.size, 0));
}

#[test]
fn alignment_is_honoured_up_to_two_mib_and_checked() {
    let mut fx = Fixture::new();
    fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    for align in [PAGE, 0x10000, 0x8_0000, MAX_ALIGN] {
        let a = fx.server.alloc(GSP, GSP_DMA, 3 * PAGE, align).unwrap();
        assert_eq!(a.device_addr % align, 0, "align {align:#x}");
    }
    assert_eq!(
        fx.server.alloc(GSP, GSP_DMA, PAGE, 3 * PAGE),
        Err(AllocError::BadAlignment)
    );
    assert_eq!(
        fx.server.alloc(GSP, GSP_DMA, PAGE, 2 * MAX_ALIGN),
        Err(AllocError::BadAlignment)
    );
}

#[test]
fn sizes_must_be_non_zero_and_fit_the_pool() {
    let mut fx = Fixture::new();
    assert_eq!(fx.alloc(GSP, GSP_DMA, 0), Err(AllocError::BadSize));
    assert_eq!(
        fx.alloc(GSP, GSP_DMA, 4 * MIB + 1),
        Err(AllocError::BadSize)
    );
    assert_eq!(fx.alloc(GSP, GSP_DMA, u64::MAX), Err(AllocError::BadSize));
    assert_eq!(fx.alloc(GSP, PoolId(9), PAGE), Err(AllocError::NoSuchPool));
    assert_eq!(
        fx.alloc(ClientId(9), GSP_DMA, PAGE),
        Err(AllocError::UnknownCaller)
    );
}

#[test]
fn a_caller_allocates_only_from_pools_it_is_granted() {
    let mut fx = Fixture::new();
    assert_eq!(fx.alloc(GSP, GPU_DMA, PAGE), Err(AllocError::NotGranted));
    assert_eq!(
        fx.alloc(GSP, CLIENT0_DMA, PAGE),
        Err(AllocError::NotGranted)
    );
    // Clients have no grant, not even on their own pools: they never call alloc-server.
    assert_eq!(
        fx.alloc(CLIENT0, CLIENT0_DMA, PAGE),
        Err(AllocError::NotGranted)
    );
    assert_eq!(fx.alloc(GPU, GSP_DMA, PAGE), Err(AllocError::NotGranted));
    assert!(fx.alloc(GPU, GPU_DMA, PAGE).is_ok());
    assert_eq!(fx.server.audit().unwrap().live_buffers, 1);
}

#[test]
fn delegated_buffers_are_charged_to_the_pool_owner_and_held_by_the_caller() {
    let mut fx = Fixture::new();
    let a = fx.alloc(GPU, CLIENT0_DMA, 3 * PAGE).unwrap();
    let client = fx.server.client_usage(CLIENT0).unwrap();
    let gpu = fx.server.client_usage(GPU).unwrap();
    assert_eq!(
        (
            client.charged_buffers,
            client.charged_bytes,
            client.held_buffers
        ),
        (1, 3 * PAGE, 0)
    );
    assert_eq!((gpu.charged_buffers, gpu.held_buffers), (0, 1));
    // Only the holder may free it; the owner, were it a caller, may not.
    assert_eq!(
        fx.server.free(CLIENT0, a.handle, a.offset),
        Err(AllocError::NotOwner)
    );
    fx.server.free(GPU, a.handle, a.offset).unwrap();
    assert_eq!(fx.server.client_usage(CLIENT0).unwrap().frees, 1);
}

#[test]
fn quotas_of_the_owner_bite_and_change_nothing() {
    let mut fx = Fixture::new();
    // client0's quota is 192 KiB of a 256 KiB pool.
    let a = fx.alloc(GPU, CLIENT0_DMA, 128 * 1024).unwrap();
    assert_eq!(
        fx.alloc(GPU, CLIENT0_DMA, 65 * 1024),
        Err(AllocError::QuotaBytes)
    );
    let before = fx.server.pool_usage(CLIENT0_DMA).unwrap();
    assert!(fx.alloc(GPU, CLIENT0_DMA, 64 * 1024).is_ok());
    assert_eq!(
        fx.alloc(GPU, CLIENT0_DMA, PAGE),
        Err(AllocError::QuotaBytes)
    );
    fx.server.free(GPU, a.handle, a.offset).unwrap();
    // Eight buffers at most in client1's pool.
    for _ in 0..8 {
        fx.alloc(GPU, CLIENT1_DMA, PAGE).unwrap();
    }
    assert_eq!(
        fx.alloc(GPU, CLIENT1_DMA, PAGE),
        Err(AllocError::QuotaBuffers)
    );
    assert_eq!(before.live_buffers, 1);
    fx.server.audit().unwrap();
}

#[test]
fn an_exhausted_or_fragmented_pool_is_out_of_memory() {
    let mut fx = Fixture::new();
    // gpu's quota (2 MiB, 32 buffers) is larger than its 1 MiB pool, so the pool runs out first.
    let mut grants = Vec::new();
    for _ in 0..16 {
        grants.push(fx.alloc(GPU, GPU_DMA, 64 * 1024).unwrap());
    }
    assert_eq!(fx.alloc(GPU, GPU_DMA, PAGE), Err(AllocError::OutOfMemory));
    // Free every other 64 KiB: half the pool is free but no 128 KiB block is.
    for a in grants.iter().step_by(2) {
        fx.server.free(GPU, a.handle, a.offset).unwrap();
    }
    assert_eq!(
        fx.server.pool_usage(GPU_DMA).unwrap().largest_free,
        64 * 1024
    );
    assert_eq!(
        fx.alloc(GPU, GPU_DMA, 128 * 1024),
        Err(AllocError::OutOfMemory)
    );
}

#[test]
fn freed_memory_is_zero_before_anyone_gets_it_again() {
    let mut fx = Fixture::new();
    let a = fx.alloc(GSP, GSP_DMA, 5 * PAGE).unwrap();
    fx.scribble(GSP_DMA, &a, 0x5a);
    fx.server.free(GSP, a.handle, a.offset).unwrap();
    assert!(fx.all(GSP_DMA, a.offset, a.size, 0));
    let b = fx.alloc(GSP, GSP_DMA, 5 * PAGE).unwrap();
    assert_eq!(b.offset, a.offset, "the same memory comes back");
    assert!(fx.all(GSP_DMA, b.offset, b.size, 0));
}

#[test]
fn a_handle_names_only_the_callers_own_live_buffer() {
    let mut fx = Fixture::new();
    let a = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    let g = fx.alloc(GPU, GPU_DMA, PAGE).unwrap();
    // Someone else's buffer.
    assert_eq!(
        fx.server.free(GSP, g.handle, g.offset),
        Err(AllocError::NotOwner)
    );
    // The right handle with a forged offset.
    assert_eq!(
        fx.server.free(GSP, a.handle, a.offset + PAGE),
        Err(AllocError::OffsetMismatch)
    );
    // A generation never issued, a slot out of range, another epoch.
    let raw = a.handle.raw();
    let forged = [raw + (5 << 32), raw & !(0xffff_ffff << 32), raw | 0xffff];
    for h in forged {
        assert_eq!(
            fx.server.free(GSP, DmaHandle::from_raw(h), a.offset),
            Err(AllocError::BadHandle),
            "{h:#x}"
        );
    }
    let other_epoch = DmaHandle::from_raw(raw ^ (1 << 16));
    assert_eq!(
        fx.server.free(GSP, other_epoch, a.offset),
        Err(AllocError::StaleHandle)
    );
    // None of that freed anything.
    assert_eq!(fx.server.audit().unwrap().live_buffers, 2);
    fx.server.free(GSP, a.handle, a.offset).unwrap();
    assert_eq!(
        fx.server.free(GSP, a.handle, a.offset),
        Err(AllocError::DoubleFree)
    );
}

#[test]
fn a_handle_is_stale_once_its_slot_carries_a_newer_buffer() {
    let mut fx = Fixture::new();
    let first = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.server.free(GSP, first.handle, first.offset).unwrap();
    // Slots are reused oldest-first: the freed one comes back after all the others.
    for _ in 0..MAX_BUFFERS {
        let a = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
        fx.server.free(GSP, a.handle, a.offset).unwrap();
    }
    assert_eq!(
        fx.server.free(GSP, first.handle, first.offset),
        Err(AllocError::StaleHandle)
    );
}

#[test]
fn handles_from_a_previous_life_of_the_server_are_stale() {
    let mut old = Fixture::with_epoch(1);
    let a = old.alloc(GSP, GSP_DMA, PAGE).unwrap();
    let mut new = Fixture::with_epoch(2);
    let b = new.alloc(GSP, GSP_DMA, PAGE).unwrap();
    assert_eq!((a.offset, b.offset), (0, 0));
    assert_eq!(
        new.server.free(GSP, a.handle, a.offset),
        Err(AllocError::StaleHandle)
    );
}

#[test]
fn reclaiming_a_pool_owner_takes_back_delegated_buffers_and_scrubs_the_pool() {
    let mut fx = Fixture::new();
    let a = fx.alloc(GPU, CLIENT0_DMA, 2 * PAGE).unwrap();
    let b = fx.alloc(GPU, CLIENT0_DMA, PAGE).unwrap();
    let other = fx.alloc(GPU, CLIENT1_DMA, PAGE).unwrap();
    fx.scribble(CLIENT0_DMA, &a, 1);
    // The owner also wrote into free parts of its pool.
    fx.owners[2].fill(100 * 1024, 8, 0x77).unwrap();
    fx.scribble(CLIENT1_DMA, &other, 2);
    let report = fx.server.reclaim(CLIENT0).unwrap();
    assert_eq!(
        report,
        ReclaimReport {
            buffers: 2,
            bytes: 3 * PAGE
        }
    );
    assert!(fx.all(CLIENT0_DMA, 0, POOLS[2].2, 0));
    assert_eq!(
        fx.server.free(GPU, b.handle, b.offset),
        Err(AllocError::Reclaimed)
    );
    let c0 = fx.server.client_usage(CLIENT0).unwrap();
    assert_eq!(
        (
            c0.charged_buffers,
            c0.charged_bytes,
            c0.reclaimed,
            c0.reclaims
        ),
        (0, 0, 2, 1)
    );
    assert_eq!(fx.server.client_usage(GPU).unwrap().held_buffers, 1);
    // Another client's buffer is untouched.
    assert!(fx.all(CLIENT1_DMA, other.offset, other.size, 2));
    fx.server.free(GPU, other.handle, other.offset).unwrap();
    fx.server.audit().unwrap();
}

#[test]
fn reclaiming_a_holder_returns_what_it_held_everywhere_zeroed() {
    let mut fx = Fixture::new();
    let own = fx.alloc(GPU, GPU_DMA, 4 * PAGE).unwrap();
    let delegated = fx.alloc(GPU, CLIENT1_DMA, PAGE).unwrap();
    let gsp = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.scribble(GPU_DMA, &own, 3);
    fx.scribble(CLIENT1_DMA, &delegated, 4);
    fx.scribble(GSP_DMA, &gsp, 5);
    assert_eq!(fx.server.reclaim(GPU).unwrap().buffers, 2);
    assert!(fx.all(GPU_DMA, own.offset, own.size, 0));
    assert!(fx.all(CLIENT1_DMA, delegated.offset, delegated.size, 0));
    assert!(fx.all(GSP_DMA, gsp.offset, gsp.size, 5));
    assert_eq!(fx.server.client_usage(CLIENT1).unwrap().charged_buffers, 0);
    let left = fx.server.audit().unwrap();
    assert_eq!((left.live_buffers, left.live_bytes), (1, PAGE));
    // The whole pool is one free block again.
    assert_eq!(fx.server.pool_usage(GPU_DMA).unwrap().largest_free, MIB);
    assert_eq!(
        fx.server.reclaim(ClientId(7)),
        Err(AllocError::NoSuchClient)
    );
}

#[test]
fn a_changed_generation_means_a_restart_and_reclaims() {
    let mut fx = Fixture::new();
    assert_eq!(
        fx.server.observe(GPU, 3),
        Ok(None),
        "first sight only records"
    );
    let a = fx.alloc(GPU, GPU_DMA, PAGE).unwrap();
    assert_eq!(fx.server.observe(GPU, 3), Ok(None));
    assert_eq!(
        fx.server.observe(GPU, 4).unwrap().map(|r| r.buffers),
        Some(1)
    );
    assert_eq!(
        fx.server.free(GPU, a.handle, a.offset),
        Err(AllocError::Reclaimed)
    );
    assert_eq!(
        fx.server.observe(ClientId(9), 1),
        Err(AllocError::NoSuchClient)
    );
    assert_eq!(fx.server.trace().count(1), 1, "one Reclaimed traced");
}

#[test]
fn usage_records_and_log_lines_report_the_pools() {
    let mut fx = Fixture::new();
    fx.alloc(GSP, GSP_DMA, 3 * PAGE).unwrap();
    let a = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.server.free(GSP, a.handle, a.offset).unwrap();
    let u = fx.server.pool_usage(GSP_DMA).unwrap();
    assert_eq!((u.pool, u.owner, u.live_buffers), (0, 0, 1));
    assert_eq!(
        (u.size, u.used, u.device_base),
        (4 * MIB, 3 * PAGE, POOLS[0].3)
    );
    assert_eq!((u.allocs, u.releases, u.owner_vaddr), (2, 1, 0x5000_0000));
    assert_eq!(u.largest_free, 2 * MIB);
    let lines: Vec<std::string::String> = fx
        .server
        .usage_lines()
        .map(|l| std::format!("{l}"))
        .collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(
        lines[0],
        "alloc: pool gsp_dma (owner gsp, device 0x40000000): 1 buffers, 12 of 4096 KiB used, \
         largest free 2048 KiB, 2 allocs, 1 releases"
    );
    assert!(lines[3].starts_with("alloc: pool client1_dma (owner client1"));
    assert_eq!(fx.server.pool_usage(PoolId(4)), Err(AllocError::NoSuchPool));
    assert_eq!(
        fx.server.client_usage(ClientId(4)),
        Err(AllocError::NoSuchClient)
    );
}

#[test]
fn every_bad_configuration_is_a_typed_error() {
    let mut mem = vec![0u8; 0x40_0000];
    let mut pool = |name, owner, size: usize, base| PoolSpec {
        name,
        owner,
        owner_vaddr: 0,
        device_base: base,
        memory: region(&mut mem[..size]),
    };
    const NAMES: [&str; 17] = [
        "a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", "m", "n", "o", "p", "q",
    ];
    let ok = config(1);
    let c = |r: Result<AllocServer, ConfigError>| r.err();
    let one = |p| [p];
    assert_eq!(
        c(AllocServer::new(&ok, one(pool("x", "gsp", 0x1000, 0x1000)))),
        Some(ConfigError::PoolAlignment("x"))
    );
    assert_eq!(
        c(AllocServer::new(&ok, one(pool("x", "gsp", 0x1800, 0)))),
        Some(ConfigError::PoolSize("x"))
    );
    assert_eq!(
        c(AllocServer::new(&ok, one(pool("x", "gsp", 0, 0)))),
        Some(ConfigError::PoolSize("x"))
    );
    assert_eq!(
        c(AllocServer::new(
            &ok,
            one(pool("x", "gsp", 0x20_0000, !0x1f_ffff))
        )),
        Some(ConfigError::PoolSize("x"))
    );
    assert_eq!(
        c(AllocServer::new(&ok, one(pool("x", "nobody", 0x1000, 0)))),
        Some(ConfigError::UnknownClient("nobody"))
    );
    // The test config grants pools this one lacks.
    assert_eq!(
        c(AllocServer::new(
            &ok,
            one(pool("gsp_dma", "gsp", 0x1000, 0))
        )),
        Some(ConfigError::UnknownPool("gpu_dma"))
    );
    let two = [
        pool("gsp_dma", "gsp", 0x1000, 0),
        pool("gsp_dma", "gsp", 0x1000, 0),
    ];
    assert_eq!(
        c(AllocServer::new(&ok, two)),
        Some(ConfigError::DuplicateName("gsp_dma"))
    );
    let nine = NAMES[..9].iter().map(|&name| pool(name, "gsp", 0x1000, 0));
    assert_eq!(
        c(AllocServer::new(&Config { grants: &[], ..ok }, nine)),
        Some(ConfigError::TooManyPools)
    );

    let none = || core::iter::empty::<PoolSpec>();
    let dup = [CLIENTS[0], CLIENTS[0]];
    assert_eq!(
        c(AllocServer::new(
            &Config {
                clients: &dup,
                ..ok
            },
            none()
        )),
        Some(ConfigError::DuplicateName("gsp"))
    );
    let many = NAMES.map(|name| ClientSpec {
        name,
        quota_bytes: 0,
        max_buffers: 0,
    });
    assert_eq!(
        c(AllocServer::new(
            &Config {
                clients: &many,
                grants: &[],
                callers: &[],
                ..ok
            },
            none()
        )),
        Some(ConfigError::TooManyClients)
    );
    let greedy = [ClientSpec {
        max_buffers: 1025,
        ..CLIENTS[0]
    }];
    assert_eq!(
        c(AllocServer::new(
            &Config {
                clients: &greedy,
                grants: &[],
                callers: &[],
                ..ok
            },
            none()
        )),
        Some(ConfigError::TooManyBuffers)
    );
    let twice = [(GSP_CH, "gsp"), (GSP_CH, "gpu")];
    assert_eq!(
        c(AllocServer::new(
            &Config {
                callers: &twice,
                grants: &[],
                ..ok
            },
            none()
        )),
        Some(ConfigError::DuplicateChannel(GSP_CH))
    );
    let stranger = [(GSP_CH, "stranger")];
    assert_eq!(
        c(AllocServer::new(
            &Config {
                callers: &stranger,
                ..ok
            },
            none()
        )),
        Some(ConfigError::UnknownClient("stranger"))
    );
    let bad_grant = [Grant {
        caller: "stranger",
        pool: "p",
    }];
    assert_eq!(
        c(AllocServer::new(
            &Config {
                grants: &bad_grant,
                ..ok
            },
            one(pool("p", "gsp", 0x1000, 0))
        )),
        Some(ConfigError::UnknownClient("stranger"))
    );
}

#[test]
fn pools_beyond_the_page_arena_are_refused() {
    let mut small = vec![0u8; 0x1000];
    // SAFETY: the server refuses this pool by its size before it touches the memory (the arena
    // check comes before scrubbing), so the oversized view is never read or written.
    let huge = unsafe { Region::new(NonNull::new(small.as_mut_ptr()).unwrap(), 0x800_1000) };
    let spec = PoolSpec {
        name: "big",
        owner: "gsp",
        owner_vaddr: 0,
        device_base: 0,
        memory: huge,
    };
    let cfg = Config {
        grants: &[],
        ..config(1)
    };
    assert_eq!(
        AllocServer::new(&cfg, [spec]).err(),
        Some(ConfigError::PoolsTooLarge)
    );
}

/// Send `req` from the caller on `ch` and return (reply label, reply count, first register).
fn call(
    server: &mut AllocServer,
    k: &mut Registers,
    ch: Channel,
    req: Request,
) -> (u64, usize, u64) {
    let info = req.encode(&mut k.0);
    let reply = server.protected(k, ch, info);
    (reply.label(), reply.count(), k.0.get(0))
}

#[test]
fn requests_over_ppc_are_decoded_checked_and_answered() {
    let mut fx = Fixture::new();
    let mut k = Registers::default();
    let k = &mut k;
    let alloc = Request::Alloc {
        pool: GSP_DMA,
        size: PAGE,
        align: PAGE,
    };
    let (label, count, handle) = call(&mut fx.server, k, GSP_CH, alloc);
    assert_eq!((label, count), (0, 5), "four fields and the check word");
    // An unknown channel, an unknown opcode, a pool not granted, a query not granted.
    assert_eq!(
        call(&mut fx.server, k, Channel::new(5), alloc).0,
        AllocError::UnknownCaller as u64
    );
    let reply = fx.server.protected(k, GSP_CH, MessageInfo::new(9, 0));
    assert_eq!(reply, error_reply(AllocError::BadOpcode));
    let gpu_pool = Request::Alloc {
        pool: GPU_DMA,
        size: PAGE,
        align: PAGE,
    };
    assert_eq!(
        call(&mut fx.server, k, GSP_CH, gpu_pool).0,
        AllocError::NotGranted as u64
    );
    let query = Request::PoolUsage { pool: GPU_DMA };
    assert_eq!(
        call(&mut fx.server, k, GSP_CH, query).0,
        AllocError::NotGranted as u64
    );
    let query = Request::ClientUsage {
        client: Some(CLIENT0),
    };
    assert_eq!(
        call(&mut fx.server, k, GSP_CH, query).0,
        AllocError::NotGranted as u64
    );
    // gpu may see client0 (it allocates there) and gsp may see itself.
    assert_eq!(call(&mut fx.server, k, GPU_CH, query).0, 0);
    let (label, count, _) = call(
        &mut fx.server,
        k,
        GSP_CH,
        Request::ClientUsage { client: None },
    );
    assert_eq!((label, count), (0, 8));
    let query = Request::PoolUsage { pool: PoolId(200) };
    assert_eq!(
        call(&mut fx.server, k, GSP_CH, query).0,
        AllocError::NoSuchPool as u64
    );
    let free = Request::Free {
        handle: DmaHandle::from_raw(handle),
        offset: 0,
    };
    assert_eq!(
        call(&mut fx.server, k, GPU_CH, free).0,
        AllocError::NotOwner as u64
    );
    assert_eq!(call(&mut fx.server, k, GSP_CH, free), (0, 0, handle));
    // Every refusal was traced.
    assert_eq!(fx.server.trace().count(0), 7);
    fx.server.audit().unwrap();
}

#[test]
fn the_client_stub_works_end_to_end_and_drop_returns_buffers() {
    let mut fx = Fixture::new();
    let frees: FreeList<[FreeSlot; 8]> = FreeList::new();
    let mut stub = DmaClient::new(Channel::new(2), &frees);
    let mut k = Loopback {
        server: &mut fx.server,
        server_ch: GPU_CH,
        mrs: MessageRegisters::default(),
    };
    let gart = stub
        .alloc_for(&mut k, CLIENT0_DMA, 3 * PAGE, 0x10000)
        .unwrap();
    let a = gart.allocation();
    assert_eq!((a.size, a.device_addr % 0x10000), (3 * PAGE, 0));
    let usage = stub.client_usage(&mut k, Some(CLIENT0)).unwrap();
    assert_eq!(usage.charged_bytes, 3 * PAGE);
    drop(gart);
    // The drop queued the free; the next call sends it first.
    assert_eq!(frees.queued(), 1);
    let usage = stub.pool_usage(&mut k, CLIENT0_DMA).unwrap();
    assert_eq!((usage.live_buffers, frees.queued()), (0, 0));
    drop(stub.alloc_for(&mut k, CLIENT0_DMA, PAGE, 0).unwrap());
    assert_eq!(stub.flush(&mut k).unwrap().freed, 1);
    assert_eq!(
        stub.alloc_for(&mut k, GSP_DMA, PAGE, 0).err(),
        Some(DmaError::Server(AllocError::NotGranted))
    );
    assert_eq!(frees.outstanding(), 0);
}

#[test]
fn the_server_is_small_enough_for_a_pd_stack() {
    // The PD glue builds the server in `init` (about 40 KiB today, most of it the 1024-slot
    // buffer table); it must stay well under a 64 KiB PD stack.
    let size = core::mem::size_of::<AllocServer>();
    assert!(size <= 48 * 1024, "AllocServer is {size} bytes");
}

#[test]
fn abandon_takes_back_only_the_callers_latest_live_grant() {
    let mut fx = Fixture::new();
    assert_eq!(fx.server.abandon(GSP), Err(AllocError::NothingToAbandon));
    let kept = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    let garbled = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.scribble(GSP_DMA, &garbled, 0x11);
    let theirs = fx.alloc(GPU, GPU_DMA, PAGE).unwrap();
    assert_eq!(fx.server.abandon(GSP), Ok(()));
    assert!(fx.all(GSP_DMA, garbled.offset, PAGE, 0), "zeroed");
    assert_eq!(
        fx.server.free(GSP, garbled.handle, garbled.offset),
        Err(AllocError::DoubleFree)
    );
    assert_eq!(fx.server.abandon(GSP), Err(AllocError::NothingToAbandon));
    assert_eq!(fx.server.free(GSP, kept.handle, kept.offset), Ok(()));
    // A refused request (its answer garbled on the way) leaves the grant before it alone.
    let held = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    assert_eq!(fx.alloc(GSP, GSP_DMA, 0), Err(AllocError::BadSize));
    assert_eq!(fx.server.abandon(GSP), Err(AllocError::NothingToAbandon));
    assert_eq!(fx.server.free(GSP, held.handle, held.offset), Ok(()));
    // Freed by its holder first: nothing left to abandon.
    fx.server.free(GPU, theirs.handle, theirs.offset).unwrap();
    assert_eq!(fx.server.abandon(GPU), Err(AllocError::NothingToAbandon));
    fx.server.audit().unwrap();
}
