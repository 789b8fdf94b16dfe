use super::*;

// crc: u32 4
// kind: u8 1
// seg num: u64 9 (varint)
// pid: u64 9 (varint)
// len: u64 9 (varint)
/// Log messages have a header that might eb up to this length.
pub const MAX_MSG_HEADER_LEN: usize = 32;

/// Log segments have a header of this length.
pub const SEG_HEADER_LEN: usize = 20;

/// The minimum number of items per segment.
/// Items larger than this fraction of an `io_buf`
/// will be stored as an off-log blob.
pub const MINIMUM_ITEMS_PER_SEGMENT: usize = 4;

/// During testing, this should never be exceeded.
#[allow(unused)]
pub const MAX_SPACE_AMPLIFICATION: f64 = 5.;

pub(crate) const META_PID: PageId = 0;
pub(crate) const COUNTER_PID: PageId = 1;
pub(crate) const BATCH_MANIFEST_PID: PageId = PageId::max_value() - 666;

pub(crate) const PAGE_CONSOLIDATION_THRESHOLD: usize = 10;
pub(crate) const SEGMENT_CLEANUP_THRESHOLD: usize = 50;

// pbx-authd patch: 2^26 page ids (around 250 million items by the reckoning below)
// instead of 2^37 (64-bit) / 2^32 (32-bit). The page table's two levels are arrays
// sized by these bits, allocated zeroed; with 37 bits that is 4 MiB + 2 MiB per open
// database, and a calloc that writes its zeros (zig's libc for the musl targets) makes
// all of it resident: 6 of the daemon's 9.5 MiB at idle. The boxes' databases hold a
// few thousand items. Page ids are not limited on disk, only in this table.
//
// Upstream: allows for around 1 trillion items to be stored
// 2^37 * (assuming 50% node fill, 8 items per leaf)
// and well below 1% of nodes being non-leaf nodes.
pub(crate) const MAX_PID_BITS: usize = 26;
