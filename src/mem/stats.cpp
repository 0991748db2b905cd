// stats.cpp - the SGV cache's statistics: a snapshot per pool and per order,
// and the key=value dump sgvctl and the C API print.
#include <cstdio>

#include "mem/cache_impl.hpp"

namespace sgv {

PoolStats Pool::stats() const {
  Impl& im = *impl_;
  PoolStats s;
  s.name = name_;
  s.max_order = opts_.max_order;
  {
    std::lock_guard<std::mutex> lk(im.mu);
    for (unsigned k = 0; k <= opts_.max_order; ++k) {
      OrderStats& o = s.order[k];
      uint64_t out = im.dead_out[k], in = im.dead_in[k];
      o.hits = im.dead_hits[k];
      o.cached_vecs = im.shared[k].n + im.xchg[k].n.load(std::memory_order_relaxed);
      for (ThreadCache* tc : im.tcs) {
        const ThreadCache::Order& t = tc->ord[k];
        uint64_t hits = t.hits();
        o.hits += hits;
        out += hits + tc->out_miss[k].get();
        in += t.in.get();
        o.cached_vecs += t.n.load(std::memory_order_relaxed);
      }
      o.frees = in;
      o.misses = im.misses[k].load(std::memory_order_relaxed);
      o.cached_pages = o.cached_vecs << k;
      o.in_use_pages = (out > in ? out - in : 0) << k;
      o.allocated_pages = im.allocated_vecs[k].load(std::memory_order_relaxed) << k;
      o.built_segs = im.built_segs[k].load(std::memory_order_relaxed);
      o.purged = im.purged[k].load(std::memory_order_relaxed);
      o.shrunk = im.shrunk[k].load(std::memory_order_relaxed);
      o.watermark_refusals = im.wm_refusals[k].load(std::memory_order_relaxed);
      o.waits = im.order_waits[k].load(std::memory_order_relaxed);
      o.wait_ns = im.order_wait_ns[k].load(std::memory_order_relaxed);
      OrderStats& t = s.total;
      t.hits += o.hits, t.misses += o.misses, t.frees += o.frees, t.cached_vecs += o.cached_vecs;
      t.cached_pages += o.cached_pages, t.in_use_pages += o.in_use_pages, t.allocated_pages += o.allocated_pages;
      t.built_segs += o.built_segs, t.purged += o.purged, t.shrunk += o.shrunk;
    }
  }
  uint64_t oneshot = im.oneshot_pages.load(std::memory_order_relaxed);
  s.chains = im.chains.load(std::memory_order_relaxed);
  s.one_shot = im.one_shot.load(std::memory_order_relaxed);
  s.empty_returns = im.empty_returns.load(std::memory_order_relaxed);
  s.watermark_refusals = im.watermark_refusals.load(std::memory_order_relaxed);
  s.total.watermark_refusals = s.watermark_refusals;  // pool-wide, chains and one-shot included
  s.budget_refusals = im.budget_refusals.load(std::memory_order_relaxed);
  s.source_failures = im.source_failures.load(std::memory_order_relaxed);
  s.waits = im.waits.load(std::memory_order_relaxed);
  s.wait_ns = im.wait_ns.load(std::memory_order_relaxed);
  s.total.waits = s.waits;
  s.total.wait_ns = s.wait_ns;
  s.pressure_events = im.pressure_events.load(std::memory_order_relaxed);
  s.cached_bytes = s.total.cached_pages << kPageShift;
  s.in_use_bytes = (s.total.in_use_pages + oneshot) << kPageShift;
  s.allocated_bytes = (s.total.allocated_pages + oneshot) << kPageShift;
  s.segs_per_vec = s.total.misses ? static_cast<double>(s.total.built_segs) / static_cast<double>(s.total.misses) : 0.0;
  return s;
}

namespace {
void put(std::string* out, const std::string& key, unsigned long long v) {
  *out += key;
  *out += '=';
  *out += std::to_string(v);
  *out += '\n';
}
void put_order(std::string* out, const std::string& p, const OrderStats& o) {
  put(out, p + "hits", o.hits);
  put(out, p + "misses", o.misses);
  put(out, p + "frees", o.frees);
  put(out, p + "cached_vecs", o.cached_vecs);
  put(out, p + "cached_pages", o.cached_pages);
  put(out, p + "in_use_pages", o.in_use_pages);
  put(out, p + "allocated_pages", o.allocated_pages);
  put(out, p + "built_segs", o.built_segs);
  put(out, p + "purged", o.purged);
  put(out, p + "shrunk", o.shrunk);
  char spv[32];
  std::snprintf(spv, sizeof spv, "%.2f", o.misses ? static_cast<double>(o.built_segs) / static_cast<double>(o.misses) : 0.0);
  *out += p + "segs_per_vec=" + spv + "\n";
}
void put_order_extra(std::string* out, const std::string& p, const OrderStats& o) {
  put(out, p + "watermark_refusals", o.watermark_refusals);
  put(out, p + "waits", o.waits);
  put(out, p + "wait_ns", o.wait_ns);
}
}  // namespace

std::string Pool::dump_stats() const {
  PoolStats s = stats();
  std::string out;
  out += "name=" + s.name + "\n";
  put(&out, "max_order", s.max_order);
  put_order(&out, "", s.total);
  put(&out, "chains", s.chains);
  put(&out, "one_shot", s.one_shot);
  put(&out, "empty_returns", s.empty_returns);
  put(&out, "watermark_refusals", s.watermark_refusals);
  put(&out, "budget_refusals", s.budget_refusals);
  put(&out, "source_failures", s.source_failures);
  put(&out, "waits", s.waits);
  put(&out, "wait_ns", s.wait_ns);
  put(&out, "pressure_events", s.pressure_events);
  put(&out, "cached_bytes", s.cached_bytes);
  put(&out, "in_use_bytes", s.in_use_bytes);
  put(&out, "allocated_bytes", s.allocated_bytes);
  for (unsigned k = 0; k <= s.max_order; ++k) {
    std::string p = "order" + std::to_string(k) + ".";
    put_order(&out, p, s.order[k]);
    put_order_extra(&out, p, s.order[k]);
  }
  if (global_) global_->dump(&out);
  return out;
}

}  // namespace sgv
