// sgv/tags.hpp - tag allocation for command slots, in the manner of Linux
// sbitmap (lib/sbitmap.c) under blk-mq's tag layer (block/blk-mq-tag.c).
//
// Three rungs, each a thin policy over the one below:
//   Bitmap    - the generic primitive: a lock-free bitmap of `depth` bits
//               split into words of 2^shift bits, one word per cache line,
//               with per-thread allocation hints and deferred clear.
//   TagQueue  - a Bitmap plus a FIFO of waiters embedded in caller memory;
//               a put hands its freed tag to the oldest waiter.
//   Tags      - reserved tags [0, reserved) for task management and normal
//               tags [reserved, reserved + depth), each class its own queue.
//
// Thread-safety: get/put/get_wait/cancel may be called from any thread.
// Errors: get returns -1 when no tag is free (not an error, backpressure);
// init returns 0 or -ENOMEM / -EINVAL.
#pragma once

#include <atomic>
#include <cerrno>
#include <cstddef>
#include <cstdint>
#include <mutex>

namespace sgv {

inline constexpr size_t kCacheLine = 64;

// Per-thread hint slots per bitmap: threads are spread over them by a
// thread index, so a thread tends to reuse the tag it last freed (warm slot).
inline constexpr unsigned kTagHintSlots = 16;

// Invariant (check_invariants, at quiescence), per word:
//   cleared & ~word == 0   (a deferred free is of a bit that was taken)
//   (word | cleared) & ~mask == 0
//   weight() == popcount(word & ~cleared) over the words
class Bitmap {
 public:
  Bitmap() = default;
  ~Bitmap();
  Bitmap(const Bitmap&) = delete;
  Bitmap& operator=(const Bitmap&) = delete;

  // depth bits (0 allowed: every get fails). shift < 0 picks as sbitmap
  // does: the largest word size (<= 64 bits) that still gives >= 4 words.
  // Slow path (allocates the words); 0, -EINVAL or -ENOMEM.
  int init(unsigned depth, int shift = -1);

  // Take a free bit, or -1. Budget: one relaxed load + one fetch_or on the
  // hinted word in the common case (no lock).
  int get();
  // Free a bit taken by get(). Budget: one fetch_or on the word's `cleared`.
  // seq_cst so that TagQueue's waiter check after it is ordered (Dekker).
  void put(unsigned bit);

  // Like get(), but first folds every word's deferred-clear mask in with
  // seq_cst RMWs: after a seq_cst store elsewhere, it cannot miss a bit
  // freed by a put() that did not see that store (TagQueue's slow path).
  int get_sync();

  unsigned depth() const { return depth_; }
  unsigned shift() const { return shift_; }
  unsigned words() const { return nwords_; }
  // Bits taken now (racy snapshot; exact at quiescence).
  unsigned weight() const;
  bool test(unsigned bit) const;  // bit is taken (snapshot)
  bool check_invariants() const;

 private:
  struct alignas(kCacheLine) Word {
    // word: taken bits. fetch_or(acquire) in get pairs with the release
    // fetch_and in fold(), which publishes the frees it folds in.
    std::atomic<unsigned long> word{0};
    // cleared: freed bits not yet folded into `word`. put's seq_cst
    // fetch_or pairs with fold()'s exchange (acq_rel / seq_cst).
    std::atomic<unsigned long> cleared{0};
    unsigned long mask = 0;  // valid bits of this word (last word may be short)
  };
  struct alignas(kCacheLine) Hint {
    // Only a hint: relaxed loads and stores, races merely cost a scan.
    std::atomic<unsigned> v{0};
  };

  static int get_word(Word& w, unsigned off);
  static bool fold(Word& w, std::memory_order mo);
  int find(unsigned hint);
  static unsigned thread_index();

  Word* w_ = nullptr;
  unsigned depth_ = 0;
  unsigned shift_ = 0;
  unsigned nwords_ = 0;
  Hint hints_[kTagHintSlots];
};

// A waiting tag allocation, in the caller's memory (no allocation). Fill cb
// and ctx, then call get_wait. cb runs exactly once unless cancel() returns
// true: on the thread whose put freed the tag (status 0, tag >= 0), or from
// the queue's destruction (status -ECANCELED, tag -1). cb runs with no lock
// held and may call get/put/get_wait.
struct TagWaiter {
  using Callback = void (*)(TagWaiter* w, int tag, int status);
  Callback cb = nullptr;
  void* ctx = nullptr;

  // Private to the queue (guarded by its waiter lock).
  TagWaiter* next_ = nullptr;
  TagWaiter* prev_ = nullptr;
  bool queued_ = false;
};

// Invariant (check_invariants, at quiescence): waiting() equals the length
// of the FIFO, and every queued waiter is marked queued.
class TagQueue {
 public:
  TagQueue() = default;
  ~TagQueue();  // queued waiters get -ECANCELED
  TagQueue(const TagQueue&) = delete;
  TagQueue& operator=(const TagQueue&) = delete;

  // Tags are numbered base .. base+depth-1 (Tags puts its normal class
  // after the reserved one).
  int init(unsigned depth, unsigned base = 0, int shift = -1) {
    base_ = base;
    return map_.init(depth, shift);
  }

  // Non-blocking. -1 when full. It does not look at the waiter queue, so it
  // can take a tag ahead of queued waiters (as blk-mq's NOWAIT does);
  // waiters are FIFO among themselves.
  int get() {
    int b = map_.get();
    return b < 0 ? b : b + static_cast<int>(base_);
  }
  // A tag into *tag and 0, or queue w (FIFO) and return -EINPROGRESS.
  int get_wait(TagWaiter* w, int* tag);
  // True if w was queued and is now removed (cb will not run).
  bool cancel(TagWaiter* w);
  // Budget: Bitmap::put + one seq_cst load; the wake is out of line.
  void put(unsigned tag) {
    map_.put(tag - base_);
    // Pairs with the seq_cst fetch_add in get_wait: either we see the
    // waiter, or its get_sync sees our freed bit.
    if (nwaiters_.load(std::memory_order_seq_cst) != 0) wake();
  }

  const Bitmap& bitmap() const { return map_; }
  unsigned depth() const { return map_.depth(); }
  unsigned busy() const { return map_.weight(); }
  unsigned waiting() const { return nwaiters_.load(std::memory_order_relaxed); }
  uint64_t waits() const { return waits_.load(std::memory_order_relaxed); }
  bool check_invariants() const;

 private:
  [[gnu::noinline]] void wake();

  Bitmap map_;
  unsigned base_ = 0;
  // nwaiters_: queued waiters; see put() and get_wait() for the pairing.
  std::atomic<unsigned> nwaiters_{0};
  std::atomic<uint64_t> waits_{0};  // statistics (relaxed)
  mutable std::mutex mu_;           // guards head_, tail_ and waiter links
  TagWaiter* head_ = nullptr;
  TagWaiter* tail_ = nullptr;
};

// Flags for Tags::get / TagSet::get.
inline constexpr unsigned kTagReserved = 1u;  // from the reserved class (task management)

class Tags {
 public:
  Tags() = default;
  // depth normal tags, `reserved` reserved tags (numbered first, as blk-mq).
  int init(unsigned depth, unsigned reserved);

  // A tag number, or -1 when the class is exhausted.
  int get(unsigned flags = 0) { return (flags & kTagReserved) ? res_.get() : norm_.get(); }
  // As TagQueue::get_wait, from the class `flags` selects.
  int get_wait(TagWaiter* w, unsigned flags, int* tag) {
    return (flags & kTagReserved) ? res_.get_wait(w, tag) : norm_.get_wait(w, tag);
  }
  bool cancel(TagWaiter* w, unsigned flags) {
    return (flags & kTagReserved) ? res_.cancel(w) : norm_.cancel(w);
  }
  void put(unsigned tag) {
    if (tag < nres_)
      res_.put(tag);
    else
      norm_.put(tag);
  }

  unsigned depth() const { return norm_.depth(); }
  unsigned reserved() const { return nres_; }
  unsigned total() const { return nres_ + norm_.depth(); }
  unsigned busy() const { return res_.busy() + norm_.busy(); }
  bool is_reserved(unsigned tag) const { return tag < nres_; }
  const TagQueue& normal_queue() const { return norm_; }
  const TagQueue& reserved_queue() const { return res_; }
  bool check_invariants() const { return res_.check_invariants() && norm_.check_invariants(); }

 private:
  TagQueue res_;
  TagQueue norm_;
  unsigned nres_ = 0;
};

}  // namespace sgv
