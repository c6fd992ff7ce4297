//! A restarted server and its journal: what clients hold survives, nothing else does.

use super::*;
use crate::journal::{Record, MARKS};

fn adopted(start: Start) -> (u32, u64, u32) {
    match start {
        Start::Adopted {
            buffers,
            pages,
            torn,
        } => (buffers, pages, torn),
        Start::Fresh(why) => panic!("started fresh: {why:?}"),
    }
}

#[test]
fn a_first_boot_starts_fresh_on_an_empty_journal() {
    let (fx, start) = Fixture::journaled(1);
    assert_eq!(start, Start::Fresh(Fresh::NoJournal));
    assert_eq!(fx.server.audit().unwrap().live_buffers, 0);
}

#[test]
fn a_restart_adopts_every_held_buffer_with_its_contents_and_handle() {
    let (mut fx, _) = Fixture::journaled(1);
    let queues = fx.alloc(GSP, GSP_DMA, 3 * PAGE).unwrap();
    let gart = fx.alloc(GPU, CLIENT0_DMA, PAGE).unwrap();
    let gone = fx.alloc(GPU, GPU_DMA, PAGE).unwrap();
    fx.server.free(GPU, gone.handle, gone.offset).unwrap();
    fx.scribble(GSP_DMA, &queues, 0x5a);
    fx.scribble(CLIENT0_DMA, &gart, 0x6b);
    // Free memory dirtied behind the server's back (a free the fault cut short before zeroing).
    fx.owners[1]
        .fill(gone.offset as usize, PAGE as usize, 0x77)
        .unwrap();

    let start = fx.restart(2);
    assert_eq!(adopted(start), (2, 4, 0));
    assert!(
        fx.all(GSP_DMA, queues.offset, queues.size, 0x5a),
        "contents kept"
    );
    assert!(fx.all(CLIENT0_DMA, gart.offset, gart.size, 0x6b));
    assert!(fx.all(GPU_DMA, 0, MIB, 0), "free memory zeroed");
    // The accounts and pools agree with the adopted table.
    let summary = fx.server.audit().unwrap();
    assert_eq!((summary.live_buffers, summary.live_bytes), (2, 4 * PAGE));
    assert_eq!(fx.server.client_usage(CLIENT0).unwrap().charged_buffers, 1);
    assert_eq!(fx.server.client_usage(GPU).unwrap().held_buffers, 1);
    // New buffers go around the adopted ones.
    let next = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    assert!(next.offset >= queues.offset + queues.size || next.offset + PAGE <= queues.offset);
    // The old handles still work, and a double free from the last life is still one.
    assert_eq!(fx.server.free(GSP, queues.handle, queues.offset), Ok(()));
    assert_eq!(fx.server.free(GPU, gart.handle, gart.offset), Ok(()));
    assert_eq!(
        fx.server.free(GPU, gone.handle, gone.offset),
        Err(AllocError::DoubleFree)
    );
    fx.server.audit().unwrap();
}

#[test]
fn restarts_in_a_row_keep_the_table() {
    let (mut fx, _) = Fixture::journaled(1);
    let a = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.restart(2);
    let b = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    assert_eq!(adopted(fx.restart(3)), (2, 2, 0));
    fx.server.free(GSP, a.handle, a.offset).unwrap();
    fx.server.free(GSP, b.handle, b.offset).unwrap();
    assert_eq!(adopted(fx.restart(4)), (0, 0, 0));
}

#[test]
fn a_torn_record_comes_back_unused_and_its_memory_zeroed() {
    let (mut fx, _) = Fixture::journaled(1);
    let kept = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    let cut = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.scribble(GSP_DMA, &cut, 0x33);
    // The fault cut the second buffer's record short (slot 1: the second slot handed out).
    let at = 4096 + 32 + 10;
    fx.journal.as_ref().unwrap().fill(at, 4, 0xff).unwrap();
    assert_eq!(adopted(fx.restart(2)), (1, 1, 1));
    assert!(fx.all(GSP_DMA, cut.offset, PAGE, 0));
    assert_eq!(fx.server.free(GSP, kept.handle, kept.offset), Ok(()));
    assert_eq!(
        fx.server.free(GSP, cut.handle, cut.offset),
        Err(AllocError::BadHandle)
    );
}

/// Write a record with a valid checksum but contents that contradict the configuration.
fn forge(fx: &Fixture, slot: u16, record: Record) {
    let journal = Journal::new(fx.journal.as_ref().unwrap().alias()).unwrap();
    journal.write(slot, record).unwrap();
}

#[test]
fn a_journal_that_contradicts_the_pools_is_refused_and_everything_scrubbed() {
    let cases = [
        (Record::live(1, [9, 0, 0], 0, 1), Fresh::BadBuffer(5)),
        (Record::live(1, [0, 0, 1], 0, 1), Fresh::BadBuffer(5)),
        (Record::live(1, [0, 2, 0], 0, 1), Fresh::BadBuffer(5)),
        (Record::live(1, [0, 0, 0], 1023, 2), Fresh::BadBuffer(5)),
        (Record::live(1, [0, 0, 0], 0, 0), Fresh::BadBuffer(5)),
        (Record::live(1, [0, 0, 0], 0, 1), Fresh::Overlap(GSP_DMA)),
    ];
    for (record, why) in cases {
        let (mut fx, _) = Fixture::journaled(7);
        let held = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
        fx.scribble(GSP_DMA, &held, 0x44);
        forge(&fx, 5, record);
        assert_eq!(fx.restart(7), Start::Fresh(why), "{record:?}");
        assert!(fx.all(GSP_DMA, 0, 4 * MIB, 0), "scrubbed");
        // A new epoch even though the supervisor's count repeated: old handles are stale.
        assert_eq!(
            fx.server.free(GSP, held.handle, held.offset),
            Err(AllocError::StaleHandle)
        );
        // And the fresh journal is a valid one: the next restart adopts from it.
        let again = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
        assert_eq!(adopted(fx.restart(8)), (1, 1, 0));
        assert_eq!(fx.server.free(GSP, again.handle, again.offset), Ok(()));
    }
}

#[test]
fn a_torn_header_starts_fresh() {
    let (mut fx, _) = Fixture::journaled(1);
    let held = fx.alloc(GSP, GSP_DMA, PAGE).unwrap();
    fx.journal.as_ref().unwrap().fill(14, 1, 0x99).unwrap();
    assert_eq!(fx.restart(2), Start::Fresh(Fresh::NoJournal));
    assert_eq!(
        fx.server.free(GSP, held.handle, held.offset),
        Err(AllocError::StaleHandle)
    );
}

#[test]
fn marks_survive_and_a_torn_mark_block_reads_as_none() {
    let region = region(vec![0u8; JOURNAL_SIZE].leak());
    let journal = Journal::new(region.alias()).unwrap();
    assert_eq!(journal.marks(), None, "never written");
    let values: [u32; MARKS] = core::array::from_fn(|i| i as u32 * 3);
    journal.set_marks(values).unwrap();
    assert_eq!(Journal::new(region.alias()).unwrap().marks(), Some(values));
    region.fill(64 + 4, 1, 0xff).unwrap();
    assert_eq!(journal.marks(), None);
}

#[test]
fn a_region_too_small_for_the_journal_is_refused() {
    let small = region(vec![0u8; JOURNAL_SIZE - 1].leak());
    assert_eq!(
        Journal::new(small).unwrap_err(),
        journal::TooSmall {
            size: JOURNAL_SIZE - 1,
            needed: JOURNAL_SIZE
        }
    );
}
