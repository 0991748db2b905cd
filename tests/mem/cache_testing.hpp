// cache_testing.hpp - test-only page source for the SGV cache tests: hands
// out single pages of an arena in a scripted order (to make runs adjacent or
// scattered on purpose), can fail every Nth request, and counts what is out.
#pragma once

#include <sys/mman.h>

#include <cerrno>
#include <cstddef>
#include <mutex>
#include <vector>

#include "sgv/cache.hpp"
#include "sgv/page_source.hpp"

namespace sgv::testing {

class ScriptedSource final : public PageSource {
 public:
  // order: arena page indices handed out in turn (cycled), one per get().
  ScriptedSource(size_t arena_pages, std::vector<size_t> order) : pages_(arena_pages), order_(std::move(order)) {
    base_ = static_cast<char*>(
        mmap(nullptr, arena_pages * kPageSize, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
    used_.assign(arena_pages, false);
  }
  ~ScriptedSource() override { munmap(base_, pages_ * kPageSize); }
  void fail_every(unsigned n) { fail_every_ = n; }
  int get(size_t, PageRun* out) override {
    std::lock_guard<std::mutex> lk(mu_);
    ++calls_;
    if (fail_every_ && calls_ % fail_every_ == 0) return -ENOMEM;
    for (size_t tries = 0; tries < order_.size() + pages_; ++tries) {
      size_t idx = tries < order_.size() ? order_[next_++ % order_.size()] : tries - order_.size();
      if (idx < pages_ && !used_[idx]) {
        used_[idx] = true;
        ++out_;
        *out = PageRun{base_ + idx * kPageSize, 1, -1, 0};
        return 0;
      }
    }
    return -ENOMEM;
  }
  void put(const PageRun& r) override {
    std::lock_guard<std::mutex> lk(mu_);
    size_t idx = static_cast<size_t>(static_cast<char*>(r.addr) - base_) / kPageSize;
    used_[idx] = false;
    --out_;
  }
  const char* name() const override { return "scripted"; }
  size_t out() {
    std::lock_guard<std::mutex> lk(mu_);
    return out_;
  }
  char* base() const { return base_; }

 private:
  std::mutex mu_;
  char* base_;
  size_t pages_;
  std::vector<size_t> order_;
  std::vector<bool> used_;
  size_t next_ = 0;
  size_t out_ = 0;
  unsigned fail_every_ = 0;
  unsigned long calls_ = 0;
};

inline PoolOptions quiet_opts(PageSource* src = nullptr) {
  PoolOptions o;
  o.purge_interval_ms = -1;  // no maintenance thread unless a test wants it
  o.pages = src;
  return o;
}

}  // namespace sgv::testing
