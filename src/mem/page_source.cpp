// page_source.cpp - the page sources the SGV cache builds vectors from:
// anonymous mmap, hugetlb with fallback, memfd (shareable), caller hooks.
// All of this is slow path: it runs on a cache miss, a purge or a shrink.
#include "sgv/page_source.hpp"

#include <fcntl.h>
#include <linux/mman.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <map>
#include <mutex>

namespace sgv {

namespace {

class AnonSource final : public PageSource {
 public:
  int get(size_t max_pages, PageRun* out) override {
    if (max_pages == 0) return -EINVAL;
    void* p = mmap(nullptr, max_pages << kPageShift, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return -errno;
    *out = PageRun{p, max_pages, -1, 0};
    return 0;
  }
  void put(const PageRun& run) override { munmap(run.addr, run.pages << kPageShift); }
  const char* name() const override { return "anon"; }
};

inline constexpr size_t kHugePages = 512;  // OS pages per 2 MiB huge page

class HugetlbSource final : public PageSource {
 public:
  int get(size_t max_pages, PageRun* out) override {
    if (max_pages == 0) return -EINVAL;
    size_t huge = max_pages / kHugePages * kHugePages;
    if (huge) {
      void* p = mmap(nullptr, huge << kPageShift, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB | MAP_HUGE_2MB, -1, 0);
      if (p != MAP_FAILED) {
        counters_huge_.fetch_add(1, std::memory_order_relaxed);
        *out = PageRun{p, huge, -1, 0};
        return 0;
      }
      // No huge pages reserved (the usual case): ordinary pages instead.
      counters_fallback_.fetch_add(1, std::memory_order_relaxed);
    }
    return anon_.get(max_pages, out);
  }
  void put(const PageRun& run) override { munmap(run.addr, run.pages << kPageShift); }
  const char* name() const override { return "hugetlb"; }

  // Relaxed counters: statistics only.
  std::atomic<uint64_t> counters_huge_{0};
  std::atomic<uint64_t> counters_fallback_{0};

 private:
  AnonSource anon_;
};

// One memfd; each run is a window of the file mapped MAP_SHARED, so a peer
// given the fd maps the very same pages. Freed windows are hole-punched
// (their memory goes back to the kernel) and their offsets kept by size for
// the next run of that size -- the cache asks for power-of-two runs, so
// exact-size reuse keeps the file from growing without bound.
class MemfdSource final : public PageSource {
 public:
  explicit MemfdSource(int fd) : fd_(fd) {}
  ~MemfdSource() override { close(fd_); }
  int get(size_t max_pages, PageRun* out) override {
    if (max_pages == 0) return -EINVAL;
    size_t len = max_pages << kPageShift;
    uint64_t off;
    {
      std::lock_guard<std::mutex> lk(mu_);
      auto it = free_.find(max_pages);
      if (it != free_.end()) {
        off = it->second;
        free_.erase(it);
      } else {
        off = next_;
        if (ftruncate(fd_, static_cast<off_t>(off + len)) != 0) return -errno;
        next_ = off + len;
      }
    }
    void* p = mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd_, static_cast<off_t>(off));
    if (p == MAP_FAILED) {
      int e = -errno;
      release_window(off, max_pages);
      return e;
    }
    *out = PageRun{p, max_pages, fd_, off};
    return 0;
  }
  void put(const PageRun& run) override {
    munmap(run.addr, run.pages << kPageShift);
    release_window(run.offset, run.pages);
  }
  const char* name() const override { return "memfd"; }

 private:
  void release_window(uint64_t off, size_t pages) {
    fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, static_cast<off_t>(off),
              static_cast<off_t>(pages << kPageShift));
    std::lock_guard<std::mutex> lk(mu_);
    free_.emplace(pages, off);
  }

  const int fd_;
  std::mutex mu_;      // guards next_, free_
  uint64_t next_ = 0;  // end of the file: next never-used offset
  std::multimap<size_t, uint64_t> free_;  // pages -> offset of a punched window
};

class HookSource final : public PageSource {
 public:
  explicit HookSource(const sgv_page_hooks& h) : h_(h) {}
  int get(size_t max_pages, PageRun* out) override {
    if (max_pages == 0) return -EINVAL;
    PageRun r{nullptr, 0, -1, 0};
    int rc = h_.get(h_.priv, max_pages, &r);
    if (rc != 0) return rc < 0 ? rc : -ENOMEM;
    if (r.addr == nullptr || r.pages == 0 || r.pages > max_pages) return -EIO;  // hook broke its contract
    *out = r;
    return 0;
  }
  void put(const PageRun& run) override { h_.put(h_.priv, &run); }
  const char* name() const override { return "hooks"; }

 private:
  const sgv_page_hooks h_;
};

}  // namespace

std::unique_ptr<PageSource> make_anon_source() { return std::make_unique<AnonSource>(); }
std::unique_ptr<PageSource> make_hugetlb_source() { return std::make_unique<HugetlbSource>(); }

std::unique_ptr<PageSource> make_memfd_source(const char* name) {
  int fd = memfd_create(name ? name : "sgv", MFD_CLOEXEC);
  if (fd < 0) return nullptr;
  return std::make_unique<MemfdSource>(fd);
}

std::unique_ptr<PageSource> make_hook_source(const sgv_page_hooks& hooks) {
  if (!hooks.get || !hooks.put) return nullptr;
  return std::make_unique<HookSource>(hooks);
}

bool hugetlb_counters(const PageSource* src, HugetlbCounters* out) {
  auto* h = dynamic_cast<const HugetlbSource*>(src);
  if (!h) return false;
  out->huge_runs = h->counters_huge_.load(std::memory_order_relaxed);
  out->fallback_runs = h->counters_fallback_.load(std::memory_order_relaxed);
  return true;
}

}  // namespace sgv
