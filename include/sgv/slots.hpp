// sgv/slots.hpp - command slots: the preallocated command descriptors of one
// queue (seeds 000, 002), so taking a command costs a tag, never a malloc.
//
// A tag set owns depth + reserved slots, created in one allocation. Each slot
// is, by layout (blk-mq's "driver data is right after the request"):
//
//   [ Slot header 64 B | sense 252 B (+4 pad) | inline SG: n x Seg | private area ]
//     cache-line aligned; the stride between slots is a multiple of 64
//
// The inline SG table holds kDefaultInlineSegs (16) entries unless told
// otherwise: a 64 KiB I/O of 4 KiB pages needs no chained table. The private
// area (priv<T>()) is the owner's: the iSCSI server keeps its sgv::scsi::Task
// and transport state there. init_slot/exit_slot construct and destroy it
// once per slot, at tag set creation and destruction, never per command.
//
// Slot pools (seed 000): with share_pool (the default) the stride is rounded
// up to a power of two and the slot memory comes from a process-wide registry
// of pools keyed by that stride, refcounted by the tag sets using them. A tag
// set's region goes back to its pool when the tag set dies and the next tag
// set of the same stride and no greater slot count takes it (zeroed, already
// faulted in) instead of mapping new memory: a login storm of connections,
// each with its own tag set, does not mmap per connection.
//
// Thread-safety: get/put/get_wait/cancel from any thread (see tags.hpp).
// create/destroy are the slow path and take the registry lock.
#pragma once

#include <sys/types.h>

#include <cassert>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <memory>

#include "sgv/seg.hpp"
#include "sgv/tags.hpp"

namespace sgv {

class TagSet;
class SlotPool;

inline constexpr size_t kSenseSize = 252;       // SPC maximum sense data length
inline constexpr unsigned kDefaultInlineSegs = 16;

// One command descriptor. Never constructed by callers: obtained from
// TagSet::get and given back with TagSet::put (or put()).
class alignas(kCacheLine) Slot {
 public:
  uint32_t tag() const { return tag_; }
  TagSet* tag_set() const { return set_; }
  bool reserved() const { return reserved_ != 0; }

  // Sense buffer, kSenseSize bytes; sense_len is how much of it is valid
  // (0 after get()).
  uint8_t* sense() { return reinterpret_cast<uint8_t*>(this) + kHeaderSize; }
  const uint8_t* sense() const { return reinterpret_cast<const uint8_t*>(this) + kHeaderSize; }
  uint16_t sense_len = 0;

  // The command's segment list: sg points at the inline table after get();
  // the owner may point it at other segments (e.g. an SGV cache vector's) and
  // sets nsg to the entries in use.
  Seg* sg = nullptr;
  uint32_t nsg = 0;
  Seg* inline_sg() { return reinterpret_cast<Seg*>(reinterpret_cast<uint8_t*>(this) + kSgOffset); }
  uint32_t inline_sg_cap() const { return sg_cap_; }
  SegSpan segs() const { return SegSpan(sg, nsg); }

  // The private area, cache-line aligned, priv_size bytes (not zeroed per
  // command: init_slot sets it up once).
  void* priv_raw() { return reinterpret_cast<uint8_t*>(this) + priv_off_; }
  template <class T>
  T* priv() {
    static_assert(alignof(T) <= kCacheLine, "private area is cache-line aligned");
    assert(sizeof(T) <= priv_size_);
    return static_cast<T*>(priv_raw());
  }
  size_t priv_size() const { return priv_size_; }

  // Free word for the owner (e.g. a generation number for stale-tag checks);
  // kept across get/put.
  uint64_t user = 0;

  static constexpr size_t kHeaderSize = kCacheLine;
  static constexpr size_t kSgOffset = kHeaderSize + ((kSenseSize + 15) & ~size_t{15});

 private:
  friend class TagSet;
  Slot() = default;

  TagSet* set_ = nullptr;
  uint32_t tag_ = 0;
  uint32_t sg_cap_ = 0;
  uint32_t priv_off_ = 0;
  uint32_t priv_size_ = 0;
  uint8_t reserved_ = 0;
};
static_assert(sizeof(Slot) == Slot::kHeaderSize, "slot header is one cache line");

struct TagSetOptions {
  const char* name = "tags";
  unsigned depth = 128;           // normal tags (> 0)
  unsigned reserved = 0;          // reserved tags (task management), numbered first
  size_t priv_size = 0;           // private area bytes
  unsigned inline_segs = kDefaultInlineSegs;
  bool share_pool = true;         // stride rounded to 2^k, memory from the shared pool
  // Called once per slot after creation (slots zeroed) and once before
  // destruction; e.g. placement-new / destroy the owner's private state.
  void (*init_slot)(Slot* s, void* ctx) = nullptr;
  void (*exit_slot)(Slot* s, void* ctx) = nullptr;
  void* ctx = nullptr;
};

// A waiting slot allocation in caller memory (no allocation). Fill cb/ctx and
// call TagSet::get_wait. cb runs exactly once unless cancel() returns true:
// from the thread whose put freed the slot (status 0) or from the tag set's
// destruction (status -ECANCELED, slot nullptr).
struct SlotWaiter {
  using Callback = void (*)(SlotWaiter* w, Slot* slot, int status);
  Callback cb = nullptr;
  void* ctx = nullptr;

  // Private to the tag set.
  TagWaiter tw_;
  TagSet* set_ = nullptr;
  unsigned flags_ = 0;
};

struct TagSetStats {
  unsigned depth = 0;
  unsigned reserved = 0;
  unsigned busy = 0;         // slots taken now (snapshot)
  unsigned waiting = 0;      // queued waiters now
  uint64_t waits = 0;        // waiters ever queued
  size_t slot_stride = 0;    // bytes between slots
  size_t region_bytes = 0;   // bytes of the slot region (page-rounded)
};

class TagSet {
 public:
  // The slow path: maps (or takes from the shared pool) the region, builds
  // the slots, runs init_slot. 0, -EINVAL (depth 0, absurd sizes) or
  // -ENOMEM / -errno of mmap.
  static int create(const TagSetOptions& opts, std::unique_ptr<TagSet>* out);
  // Every slot must have been put back. Queued waiters get -ECANCELED.
  ~TagSet();
  TagSet(const TagSet&) = delete;
  TagSet& operator=(const TagSet&) = delete;

  // A free slot (sense_len = 0, sg = inline table, nsg = 0), or nullptr when
  // the class is exhausted (backpressure, not an error).
  // Budget: ~20 ns - one Bitmap::get and three stores.
  Slot* get(unsigned flags = 0) {
    int t = tags_.get(flags);
    if (t < 0) return nullptr;
    return prepare(static_cast<unsigned>(t));
  }
  // 0 with *out, or -EINPROGRESS with w queued (FIFO per class).
  int get_wait(SlotWaiter* w, unsigned flags, Slot** out);
  // True if w was still queued and is now removed.
  bool cancel(SlotWaiter* w);
  // Budget: one fetch_or and one load; wakes a waiter out of line.
  void put(Slot* s) {
    assert(s->set_ == this);
    tags_.put(s->tag_);
  }

  // Slot by tag (any tag < total(), taken or not).
  Slot* slot(unsigned tag) const {
    assert(tag < tags_.total());
    return reinterpret_cast<Slot*>(base_ + static_cast<size_t>(tag) * stride_);
  }
  // The slot whose private area holds p (p anywhere inside a slot).
  Slot* slot_of(const void* p) const {
    size_t off = static_cast<size_t>(static_cast<const uint8_t*>(p) - base_);
    assert(off < static_cast<size_t>(tags_.total()) * stride_);
    return reinterpret_cast<Slot*>(base_ + off / stride_ * stride_);
  }

  unsigned depth() const { return tags_.depth(); }
  unsigned reserved() const { return tags_.reserved(); }
  unsigned total() const { return tags_.total(); }
  unsigned busy() const { return tags_.busy(); }
  size_t stride() const { return stride_; }
  const TagSetOptions& options() const { return opts_; }
  const Tags& tags() const { return tags_; }
  // Shared pool this tag set draws from, or nullptr (share_pool = false).
  SlotPool* pool() const { return pool_; }
  TagSetStats stats() const;
  // Tags' invariants plus: every slot's header names this tag set and its
  // own tag. Call at quiescence.
  bool check_invariants() const;

  // Bytes a slot needs before any rounding (header + sense + SG + private).
  static size_t slot_bytes(size_t priv_size, unsigned inline_segs);

 private:
  TagSet() = default;
  Slot* prepare(unsigned tag) {
    Slot* s = slot(tag);
    s->sense_len = 0;
    s->sg = s->inline_sg();
    s->nsg = 0;
    return s;
  }
  static void trampoline(TagWaiter* tw, int tag, int status);

  Tags tags_;
  TagSetOptions opts_;
  uint8_t* base_ = nullptr;
  size_t stride_ = 0;
  size_t region_bytes_ = 0;
  SlotPool* pool_ = nullptr;
};

inline void put(Slot* s) { s->tag_set()->put(s); }

// A process-wide pool of slot regions of one stride (power of two), shared by
// the tag sets of that stride. Internal to TagSet::create; public for stats.
struct SlotPoolStats {
  size_t stride = 0;
  unsigned users = 0;          // tag sets holding a reference
  uint64_t regions_mapped = 0; // regions ever mapped
  uint64_t regions_reused = 0; // regions taken from the free list
  size_t free_bytes = 0;       // bytes of regions waiting for reuse
  size_t mapped_bytes = 0;     // bytes mapped now
};

class SlotPool {
 public:
  // The pool for `stride`, created on first use; adds a reference.
  static SlotPool* acquire(size_t stride);
  // Drops a reference; the last one unmaps every free region.
  static void release(SlotPool* p);
  // Number of pools in the registry (tests).
  static size_t registry_size();

  // A zeroed region of at least `bytes` (page-rounded), faulted in.
  // 0 or -errno. Sets *got to the region's real size.
  int take(size_t bytes, uint8_t** out, size_t* got);
  void give(uint8_t* p, size_t bytes);

  size_t stride() const { return stride_; }
  SlotPoolStats stats() const;

 private:
  struct Impl;
  explicit SlotPool(size_t stride);
  ~SlotPool();
  size_t stride_;
  Impl* impl_;
};

}  // namespace sgv
