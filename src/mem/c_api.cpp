// c_api.cpp - the C API of libsgv (sgv/sgv.h) over the C++ pool, budget and
// vector types. Opaque handles are the C++ objects themselves, except
// sgv_pool, which also owns the page source it was created with.
#include <cerrno>
#include <cstring>
#include <new>

#include "sgv/cache.hpp"
#include "sgv/sgv.h"

struct sgv_pool {
  std::unique_ptr<sgv::PageSource> src;
  std::unique_ptr<sgv::Pool> pool;
};
struct sgv_budget {
  sgv::Budget b;
  sgv_budget(sgv_budget* parent, size_t limit, size_t reserve) : b(parent ? &parent->b : nullptr, limit, reserve) {}
};

namespace {
sgv::Vec* V(sgv_vec* v) { return reinterpret_cast<sgv::Vec*>(v); }
const sgv::Vec* V(const sgv_vec* v) { return reinterpret_cast<const sgv::Vec*>(v); }
}  // namespace

extern "C" {

void sgv_pool_opts_init(struct sgv_pool_opts* o) {
  std::memset(o, 0, sizeof *o);
  o->name = "sgv";
  o->clustering = SGV_CLUSTER_NONE;
  o->purge_interval_ms = 60000;
  o->max_order = 10;
  o->page_source = SGV_PAGES_ANON;
  o->thread_batch_bytes = sgv::PoolOptions::kDefaultThreadBatchBytes;
}

sgv_pool* sgv_pool_create(const struct sgv_pool_opts* o, sgv_budget* global) {
  if (!o || o->clustering < 0 || o->clustering > 2 || o->max_order > sgv::kMaxOrderLimit) {
    errno = EINVAL;
    return nullptr;
  }
  auto* p = new (std::nothrow) sgv_pool;
  if (!p) {
    errno = ENOMEM;
    return nullptr;
  }
  errno = 0;
  switch (o->page_source) {
    case SGV_PAGES_ANON: p->src = sgv::make_anon_source(); break;
    case SGV_PAGES_HUGETLB: p->src = sgv::make_hugetlb_source(); break;
    case SGV_PAGES_MEMFD: p->src = sgv::make_memfd_source(o->name); break;
    case SGV_PAGES_HOOKS: p->src = sgv::make_hook_source(o->hooks); break;
    default: break;
  }
  if (!p->src) {
    if (errno == 0) errno = EINVAL;
    delete p;
    return nullptr;
  }
  sgv::PoolOptions po;
  po.name = o->name ? o->name : "sgv";
  po.clustering = static_cast<sgv::Clustering>(o->clustering);
  po.purge_interval_ms = o->purge_interval_ms;
  po.max_order = o->max_order;
  po.pages = p->src.get();
  po.low_watermark_bytes = o->low_watermark_bytes;
  po.watch_pressure = o->watch_pressure != 0;
  po.thread_batch_bytes = o->thread_batch_bytes;
  p->pool = std::make_unique<sgv::Pool>(po, global ? &global->b : nullptr);
  return p;
}

void sgv_pool_destroy(sgv_pool* p) {
  if (!p) return;
  p->pool.reset();  // before its page source
  delete p;
}

sgv_budget* sgv_budget_create(sgv_budget* parent, size_t limit, size_t reserve) {
  auto* b = new (std::nothrow) sgv_budget(parent, limit, reserve);
  if (!b) errno = ENOMEM;
  return b;
}
void sgv_budget_destroy(sgv_budget* b) { delete b; }
size_t sgv_budget_used(const sgv_budget* b) { return b->b.used(); }
size_t sgv_budget_peak(const sgv_budget* b) { return b->b.peak(); }

int sgv_alloc(sgv_pool* p, size_t bytes, unsigned flags, sgv_budget* charge, sgv_vec** out) {
  if (!p || !out) return -EINVAL;
  sgv::Vec* v = nullptr;
  int rc = p->pool->alloc(bytes, flags, charge ? &charge->b : nullptr, &v);
  if (rc == 0) *out = reinterpret_cast<sgv_vec*>(v);
  return rc;
}

void sgv_free(sgv_vec* v) {
  if (v) V(v)->release();
}
void sgv_ref(sgv_vec* v) { V(v)->ref(); }

const struct sgv_seg* sgv_segs(const sgv_vec* v, unsigned* count) {
  sgv::SegSpan s = V(v)->segs();
  if (count) *count = static_cast<unsigned>(s.size());
  return s.data();
}
size_t sgv_len(const sgv_vec* v) { return V(v)->len(); }

int sgv_seg_fd(const sgv_vec* v, unsigned i, uint64_t* offset) {
  if (i >= V(v)->nsegs()) return -EINVAL;
  int fd = V(v)->seg_fd(i, offset);
  return fd >= 0 ? fd : -ENOENT;
}

size_t sgv_pool_shrink(sgv_pool* p, size_t bytes) { return p->pool->shrink(bytes); }

int sgv_pool_dump_stats(sgv_pool* p, char* buf, size_t len) {
  if (!p || !buf || len == 0) return -EINVAL;
  std::string s = p->pool->dump_stats();
  size_t n = s.size() < len - 1 ? s.size() : len - 1;
  std::memcpy(buf, s.data(), n);
  buf[n] = '\0';
  return n == s.size() ? 0 : -ENOSPC;
}

int sgv_pool_check(sgv_pool* p) { return p->pool->check_invariants() ? 0 : -EFAULT; }

}  // extern "C"
