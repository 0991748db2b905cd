// tags.cpp - the sbitmap-style Bitmap and the waiter queue over it (see
// sgv/tags.hpp for the contract).
#include "sgv/tags.hpp"

#include <cassert>
#include <new>

namespace sgv {

namespace {
constexpr unsigned kBitsPerLong = 64;

// Threads get consecutive indexes so that the first kTagHintSlots threads
// have a hint slot each.
std::atomic<unsigned> g_next_thread{0};  // relaxed: only uniqueness matters
}  // namespace

unsigned Bitmap::thread_index() {
  thread_local unsigned idx = g_next_thread.fetch_add(1, std::memory_order_relaxed);
  return idx % kTagHintSlots;
}

Bitmap::~Bitmap() { ::operator delete[](w_, std::align_val_t{kCacheLine}); }

int Bitmap::init(unsigned depth, int shift) {
  assert(w_ == nullptr);
  if (shift > 6) return -EINVAL;
  if (shift < 0) {
    // As sbitmap_calculate_shift: prefer >= 4 words so concurrent getters
    // spread over cache lines instead of fighting over one.
    shift = 6;
    if (depth >= 4)
      while ((4u << shift) > depth) --shift;
  }
  depth_ = depth;
  shift_ = static_cast<unsigned>(shift);
  const unsigned bpw = 1u << shift_;
  nwords_ = (depth + bpw - 1) / bpw;
  if (nwords_ == 0) return 0;
  void* mem = ::operator new[](sizeof(Word) * nwords_, std::align_val_t{kCacheLine}, std::nothrow);
  if (!mem) return -ENOMEM;
  w_ = static_cast<Word*>(mem);
  for (unsigned i = 0; i < nwords_; ++i) {
    new (&w_[i]) Word();
    unsigned bits = (i + 1 == nwords_ && depth % bpw) ? depth % bpw : bpw;
    w_[i].mask = bits == kBitsPerLong ? ~0UL : ((1UL << bits) - 1);
  }
  // Spread the threads' starting points like sbitmap's random initial hint.
  for (unsigned i = 0; i < kTagHintSlots; ++i)
    hints_[i].v.store(static_cast<unsigned>((static_cast<uint64_t>(i) * depth) / kTagHintSlots),
                      std::memory_order_relaxed);
  return 0;
}

// Fold the deferred frees into the word. True if anything was folded.
bool Bitmap::fold(Word& w, std::memory_order mo) {
  if (mo != std::memory_order_seq_cst && w.cleared.load(std::memory_order_relaxed) == 0) return false;
  // The exchange acquires the frees put() published; the fetch_and
  // releases them to whoever takes those bits next.
  unsigned long m = w.cleared.exchange(0, mo == std::memory_order_seq_cst ? mo : std::memory_order_acquire);
  if (m == 0) return false;
  w.word.fetch_and(~m, std::memory_order_release);
  return true;
}

// A free bit of w at or after off (wrapping within the word), or -1.
int Bitmap::get_word(Word& w, unsigned off) {
  unsigned long val = w.word.load(std::memory_order_relaxed);
  for (;;) {
    unsigned long avail = ~val & w.mask;
    if (avail == 0) {
      if (!fold(w, std::memory_order_acquire)) return -1;
      val = w.word.load(std::memory_order_relaxed);
      continue;
    }
    unsigned long above = avail & (~0UL << off);
    unsigned nr = static_cast<unsigned>(__builtin_ctzl(above ? above : avail));
    unsigned long bit = 1UL << nr;
    // Pairs with fold()'s release fetch_and: we see the previous owner's
    // writes to the slot behind this bit.
    val = w.word.fetch_or(bit, std::memory_order_acquire);
    if (!(val & bit)) return static_cast<int>(nr);
  }
}

int Bitmap::find(unsigned hint) {
  if (hint >= depth_) hint = 0;
  unsigned idx = hint >> shift_;
  unsigned off = hint & ((1u << shift_) - 1);
  for (unsigned i = 0; i < nwords_; ++i) {
    int nr = get_word(w_[idx], off);
    if (nr >= 0) return static_cast<int>((idx << shift_) + static_cast<unsigned>(nr));
    off = 0;
    if (++idx == nwords_) idx = 0;
  }
  return -1;
}

int Bitmap::get() {
  Hint& h = hints_[thread_index()];
  unsigned hint = h.v.load(std::memory_order_relaxed);
  int bit = -1;
  if (hint < depth_) {
    // The hinted bit was freed by this thread's last put and sits in
    // `cleared` (set in `word` too): take it straight back by removing it
    // from `cleared`, so the warm slot is reused (sbitmap would skip it
    // until the word fills). acquire pairs with put's fetch_or.
    Word& w = w_[hint >> shift_];
    unsigned long m = 1UL << (hint & ((1u << shift_) - 1));
    if ((w.cleared.load(std::memory_order_relaxed) & m) &&
        (w.cleared.fetch_and(~m, std::memory_order_acquire) & m))
      bit = static_cast<int>(hint);
  }
  if (bit < 0) bit = find(hint);
  // As sbitmap: move the hint past what we took, so the next get on this
  // thread starts on a free bit instead of re-scanning a taken one.
  if (bit >= 0) {
    unsigned next = static_cast<unsigned>(bit) + 1;
    h.v.store(next >= depth_ ? 0 : next, std::memory_order_relaxed);
  }
  return bit;
}

int Bitmap::get_sync() {
  for (unsigned i = 0; i < nwords_; ++i) fold(w_[i], std::memory_order_seq_cst);
  return get();
}

void Bitmap::put(unsigned bit) {
  assert(bit < depth_);
  Word& w = w_[bit >> shift_];
  unsigned long m = 1UL << (bit & ((1u << shift_) - 1));
  // Releases this owner's writes to the next one (via fold()); seq_cst for
  // the waiter check that follows in TagQueue::put.
  [[maybe_unused]] unsigned long old = w.cleared.fetch_or(m, std::memory_order_seq_cst);
  assert(!(old & m) && "tag put twice");
  // The next get on this thread tries the slot it just freed (warm).
  hints_[thread_index()].v.store(bit, std::memory_order_relaxed);
}

unsigned Bitmap::weight() const {
  unsigned n = 0;
  for (unsigned i = 0; i < nwords_; ++i) {
    unsigned long taken = w_[i].word.load(std::memory_order_relaxed) &
                          ~w_[i].cleared.load(std::memory_order_relaxed) & w_[i].mask;
    n += static_cast<unsigned>(__builtin_popcountl(taken));
  }
  return n;
}

bool Bitmap::test(unsigned bit) const {
  assert(bit < depth_);
  const Word& w = w_[bit >> shift_];
  unsigned long m = 1UL << (bit & ((1u << shift_) - 1));
  return (w.word.load(std::memory_order_relaxed) & ~w.cleared.load(std::memory_order_relaxed) & m) != 0;
}

bool Bitmap::check_invariants() const {
  for (unsigned i = 0; i < nwords_; ++i) {
    unsigned long word = w_[i].word.load(std::memory_order_relaxed);
    unsigned long cleared = w_[i].cleared.load(std::memory_order_relaxed);
    if (cleared & ~word) return false;
    if ((word | cleared) & ~w_[i].mask) return false;
  }
  return true;
}

bool TagQueue::check_invariants() const {
  if (!map_.check_invariants()) return false;
  std::lock_guard<std::mutex> g(mu_);
  unsigned n = 0;
  const TagWaiter* prev = nullptr;
  for (const TagWaiter* w = head_; w; w = w->next_) {
    if (!w->queued_ || w->prev_ != prev) return false;
    prev = w;
    ++n;
  }
  return prev == tail_ && n == nwaiters_.load(std::memory_order_relaxed);
}

TagQueue::~TagQueue() {
  TagWaiter* w;
  {
    std::lock_guard<std::mutex> g(mu_);
    w = head_;
    for (TagWaiter* p = head_; p; p = p->next_) p->queued_ = false;
    head_ = tail_ = nullptr;
    nwaiters_.store(0, std::memory_order_relaxed);
  }
  while (w) {
    TagWaiter* next = w->next_;  // cb may reuse w
    w->cb(w, -1, -ECANCELED);
    w = next;
  }
}

int TagQueue::get_wait(TagWaiter* w, int* tag) {
  assert(w->cb != nullptr);
  int t = get();
  if (t >= 0) {
    *tag = t;
    return 0;
  }
  std::lock_guard<std::mutex> g(mu_);
  // Pairs with put(): its seq_cst cleared.fetch_or precedes its seq_cst
  // load of nwaiters_. Either that load sees this increment, or get_sync's
  // seq_cst exchange sees the freed bit.
  nwaiters_.fetch_add(1, std::memory_order_seq_cst);
  // Waiters already queued come first (FIFO): do not jump them.
  if (head_ == nullptr) {
    int b = map_.get_sync();
    if (b >= 0) {
      nwaiters_.fetch_sub(1, std::memory_order_relaxed);
      *tag = b + static_cast<int>(base_);
      return 0;
    }
  }
  w->next_ = nullptr;
  w->prev_ = tail_;
  if (tail_)
    tail_->next_ = w;
  else
    head_ = w;
  tail_ = w;
  w->queued_ = true;
  waits_.fetch_add(1, std::memory_order_relaxed);
  return -EINPROGRESS;
}

bool TagQueue::cancel(TagWaiter* w) {
  std::lock_guard<std::mutex> g(mu_);
  if (!w->queued_) return false;
  if (w->prev_)
    w->prev_->next_ = w->next_;
  else
    head_ = w->next_;
  if (w->next_)
    w->next_->prev_ = w->prev_;
  else
    tail_ = w->prev_;
  w->queued_ = false;
  nwaiters_.fetch_sub(1, std::memory_order_relaxed);
  return true;
}

// A put saw waiters: grant free tags to them in FIFO order. The callbacks
// run after the lock is dropped (they may put or get_wait again).
void TagQueue::wake() {
  TagWaiter* granted = nullptr;
  TagWaiter** link = &granted;
  {
    std::lock_guard<std::mutex> g(mu_);
    while (head_) {
      int b = map_.get_sync();
      if (b < 0) break;
      TagWaiter* w = head_;
      head_ = w->next_;
      if (head_)
        head_->prev_ = nullptr;
      else
        tail_ = nullptr;
      w->queued_ = false;
      w->prev_ = reinterpret_cast<TagWaiter*>(static_cast<uintptr_t>(b) + base_);  // carry the tag
      w->next_ = nullptr;
      *link = w;
      link = &w->next_;
      nwaiters_.fetch_sub(1, std::memory_order_relaxed);
    }
  }
  while (granted) {
    TagWaiter* next = granted->next_;
    int tag = static_cast<int>(reinterpret_cast<uintptr_t>(granted->prev_));
    granted->prev_ = nullptr;
    granted->next_ = nullptr;
    granted->cb(granted, tag, 0);
    granted = next;
  }
}

int Tags::init(unsigned depth, unsigned reserved) {
  nres_ = reserved;
  int rc = res_.init(reserved, 0);
  if (rc) return rc;
  return norm_.init(depth, reserved);
}

}  // namespace sgv
