// slots.cpp - tag sets of preallocated command slots and the registry of
// shared slot pools (see sgv/slots.hpp). Everything here but the waiter
// trampoline is the slow path: creation, destruction, stats.
#include "sgv/slots.hpp"

#include <sys/mman.h>
#include <unistd.h>

#include <cstring>
#include <mutex>
#include <new>
#include <vector>

namespace sgv {

namespace {

constexpr size_t kOsPage = 4096;
constexpr size_t kMaxStride = size_t{1} << 24;  // 16 MiB per slot is surely a bug
constexpr unsigned kMaxTags = 1u << 20;

size_t round_up(size_t v, size_t a) { return (v + a - 1) / a * a; }

size_t pow2_ceil(size_t v) {
  size_t p = kCacheLine;
  while (p < v) p <<= 1;
  return p;
}

int map_region(size_t bytes, uint8_t** out) {
  // Faulted in now so the first commands on a fresh tag set take no page
  // faults either.
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
  if (p == MAP_FAILED) return -errno;
  *out = static_cast<uint8_t*>(p);
  return 0;
}

// The registry: one pool per stride (index log2(stride)). Guarded by g_mu.
std::mutex g_mu;
SlotPool* g_pools[64] = {};

unsigned log2_of(size_t pow2) { return static_cast<unsigned>(__builtin_ctzl(pow2)); }

}  // namespace

struct SlotPool::Impl {
  struct Region {
    uint8_t* p;
    size_t bytes;
  };
  // All fields guarded by g_mu (pools change only on tag set create/destroy).
  unsigned users = 0;
  uint64_t mapped = 0;
  uint64_t reused = 0;
  size_t mapped_bytes = 0;
  std::vector<Region> free;
};

SlotPool::SlotPool(size_t stride) : stride_(stride), impl_(new Impl) {}

SlotPool::~SlotPool() {
  for (const Impl::Region& r : impl_->free) ::munmap(r.p, r.bytes);
  delete impl_;
}

SlotPool* SlotPool::acquire(size_t stride) {
  assert(stride >= kCacheLine && (stride & (stride - 1)) == 0);
  std::lock_guard<std::mutex> g(g_mu);
  SlotPool*& p = g_pools[log2_of(stride)];
  if (!p) p = new (std::nothrow) SlotPool(stride);
  if (!p) return nullptr;
  p->impl_->users++;
  return p;
}

void SlotPool::release(SlotPool* p) {
  std::lock_guard<std::mutex> g(g_mu);
  assert(p->impl_->users > 0);
  if (--p->impl_->users == 0) {
    g_pools[log2_of(p->stride_)] = nullptr;
    delete p;
  }
}

size_t SlotPool::registry_size() {
  std::lock_guard<std::mutex> g(g_mu);
  size_t n = 0;
  for (SlotPool* p : g_pools) n += p != nullptr;
  return n;
}

int SlotPool::take(size_t bytes, uint8_t** out, size_t* got) {
  bytes = round_up(bytes, kOsPage);
  std::lock_guard<std::mutex> g(g_mu);
  // Best fit among free regions no more than twice the need, so a small
  // tag set does not pin a big region.
  std::vector<Impl::Region>& fr = impl_->free;
  size_t best = fr.size();
  for (size_t i = 0; i < fr.size(); ++i)
    if (fr[i].bytes >= bytes && fr[i].bytes <= 2 * bytes && (best == fr.size() || fr[i].bytes < fr[best].bytes))
      best = i;
  if (best != fr.size()) {
    Impl::Region r = fr[best];
    fr[best] = fr.back();
    fr.pop_back();
    // Reuse hygiene: the last owner's commands must not leak into this one.
    std::memset(r.p, 0, r.bytes);
    impl_->reused++;
    *out = r.p;
    *got = r.bytes;
    return 0;
  }
  int rc = map_region(bytes, out);
  if (rc) return rc;
  impl_->mapped++;
  impl_->mapped_bytes += bytes;
  *got = bytes;
  return 0;
}

void SlotPool::give(uint8_t* p, size_t bytes) {
  std::lock_guard<std::mutex> g(g_mu);
  // Keep it for the next tag set of this stride; if the vector cannot grow,
  // give the memory back instead.
  try {
    impl_->free.push_back({p, bytes});
  } catch (const std::bad_alloc&) {
    ::munmap(p, bytes);
    impl_->mapped_bytes -= bytes;
  }
}

SlotPoolStats SlotPool::stats() const {
  std::lock_guard<std::mutex> g(g_mu);
  SlotPoolStats s;
  s.stride = stride_;
  s.users = impl_->users;
  s.regions_mapped = impl_->mapped;
  s.regions_reused = impl_->reused;
  s.mapped_bytes = impl_->mapped_bytes;
  for (const Impl::Region& r : impl_->free) s.free_bytes += r.bytes;
  return s;
}

size_t TagSet::slot_bytes(size_t priv_size, unsigned inline_segs) {
  return round_up(Slot::kSgOffset + size_t{inline_segs} * sizeof(Seg), kCacheLine) + priv_size;
}

int TagSet::create(const TagSetOptions& opts, std::unique_ptr<TagSet>* out) {
  if (opts.depth == 0 || opts.depth > kMaxTags || opts.reserved > kMaxTags) return -EINVAL;
  if (opts.priv_size > kMaxStride || opts.inline_segs > kMaxStride / sizeof(Seg)) return -EINVAL;
  size_t need = round_up(slot_bytes(opts.priv_size, opts.inline_segs), kCacheLine);
  if (need > kMaxStride) return -EINVAL;

  std::unique_ptr<TagSet> ts(new (std::nothrow) TagSet());
  if (!ts) return -ENOMEM;
  ts->opts_ = opts;
  int rc = ts->tags_.init(opts.depth, opts.reserved);
  if (rc) return rc;

  const size_t n = size_t{opts.depth} + opts.reserved;
  if (opts.share_pool) {
    ts->stride_ = pow2_ceil(need);
    ts->pool_ = SlotPool::acquire(ts->stride_);
    if (!ts->pool_) return -ENOMEM;
    rc = ts->pool_->take(n * ts->stride_, &ts->base_, &ts->region_bytes_);
    if (rc) {
      SlotPool::release(ts->pool_);
      ts->pool_ = nullptr;
      return rc;
    }
  } else {
    ts->stride_ = need;
    ts->region_bytes_ = round_up(n * ts->stride_, kOsPage);
    rc = map_region(ts->region_bytes_, &ts->base_);
    if (rc) return rc;
  }

  const uint32_t priv_off = static_cast<uint32_t>(round_up(Slot::kSgOffset + size_t{opts.inline_segs} * sizeof(Seg), kCacheLine));
  for (size_t t = 0; t < n; ++t) {
    Slot* s = new (ts->base_ + t * ts->stride_) Slot();
    s->set_ = ts.get();
    s->tag_ = static_cast<uint32_t>(t);
    s->sg_cap_ = opts.inline_segs;
    s->priv_off_ = priv_off;
    s->priv_size_ = static_cast<uint32_t>(opts.priv_size);
    s->reserved_ = t < opts.reserved;
    s->sg = s->inline_sg();
  }
  if (opts.init_slot)
    for (size_t t = 0; t < n; ++t) opts.init_slot(ts->slot(static_cast<unsigned>(t)), opts.ctx);
  *out = std::move(ts);
  return 0;
}

TagSet::~TagSet() {
  if (!base_) return;  // creation failed before the region existed
  assert(tags_.busy() == 0 && "tag set destroyed with slots in use");
  // Tags' queues cancel their waiters in their own destructors, which run
  // after this body; slot memory is gone by then but waiters never touch it.
  const size_t n = total();
  if (opts_.exit_slot)
    for (size_t t = 0; t < n; ++t) opts_.exit_slot(slot(static_cast<unsigned>(t)), opts_.ctx);
  if (pool_) {
    pool_->give(base_, region_bytes_);
    SlotPool::release(pool_);
  } else {
    ::munmap(base_, region_bytes_);
  }
}

void TagSet::trampoline(TagWaiter* tw, int tag, int status) {
  SlotWaiter* w = static_cast<SlotWaiter*>(tw->ctx);
  Slot* s = tag >= 0 ? w->set_->prepare(static_cast<unsigned>(tag)) : nullptr;
  w->cb(w, s, status);
}

int TagSet::get_wait(SlotWaiter* w, unsigned flags, Slot** out) {
  assert(w->cb != nullptr);
  w->set_ = this;
  w->flags_ = flags;
  w->tw_.cb = &TagSet::trampoline;
  w->tw_.ctx = w;
  int tag = -1;
  int rc = tags_.get_wait(&w->tw_, flags, &tag);
  if (rc == 0) *out = prepare(static_cast<unsigned>(tag));
  return rc;
}

bool TagSet::cancel(SlotWaiter* w) { return tags_.cancel(&w->tw_, w->flags_); }

bool TagSet::check_invariants() const {
  if (!tags_.check_invariants()) return false;
  for (unsigned t = 0; t < total(); ++t) {
    const Slot* s = slot(t);
    if (s->set_ != this || s->tag_ != t || s->reserved_ != (t < reserved())) return false;
  }
  return true;
}

TagSetStats TagSet::stats() const {
  TagSetStats s;
  s.depth = depth();
  s.reserved = reserved();
  s.busy = busy();
  s.waiting = tags_.normal_queue().waiting() + tags_.reserved_queue().waiting();
  s.waits = tags_.normal_queue().waits() + tags_.reserved_queue().waits();
  s.slot_stride = stride_;
  s.region_bytes = region_bytes_;
  return s;
}

}  // namespace sgv
