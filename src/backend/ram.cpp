// backend/ram.cpp - the RAM backend: one sparse anonymous mapping per LUN.
//
// MAP_NORESERVE|MAP_ANONYMOUS lets a 1 TiB LUN cost nothing until written:
// the kernel allocates a page on first write and unwritten pages read as the
// shared zero page. Reads need no copy at all (map_read hands the store's own
// memory to the transport); writes copy from the command's segments into the
// store, which is the one copy a RAM disk cannot avoid. UNMAP gives whole
// pages back with MADV_DONTNEED (they then read as zeros again).
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <mutex>

#include "backend/backend.hpp"

namespace sgv::backend {
namespace {

constexpr uint64_t kPage = 4096;
constexpr uint64_t kScanPages = 65536;  // extent_state: 256 MiB per call at most

class RamBackend final : public Backend {
 public:
  RamBackend(uint8_t* base, uint64_t size) : base_(base), size_(size) {}
  ~RamBackend() override {
    munmap(base_, size_);
    if (pagemap_ >= 0) close(pagemap_);
  }

  const char* kind() const override { return "ram"; }
  uint64_t size_bytes() const override { return size_; }
  bool supports_unmap() const override { return true; }
  bool volatile_cache() const override { return false; }
  uint64_t bytes_copied() const override { return copied_.load(std::memory_order_relaxed); }

  // Budget: one bounds check and a memcpy per segment; completes inline.
  void submit(Io& io) override {
    io.result = run(io);
    io.done(&io);
  }

  unsigned map_read(uint64_t off, uint64_t len, Seg* out, unsigned cap) override {
    if (cap == 0 || off > size_ || len > size_ - off) return 0;
    out[0].addr = base_ + off;
    out[0].len = len;
    return 1;
  }
  bool can_map_read() const override { return true; }

  // A page the kernel has neither present nor swapped out was never written
  // or was given back by UNMAP: it reads as zeros. /proc/self/pagemap says
  // which (bit 63 present, bit 62 swapped; readable unprivileged). Scans at
  // most kScanPages per call, so one command cannot stall the reactor. If
  // pagemap cannot be read, everything is reported mapped. The file is
  // opened on the first call and kept: GET LBA STATUS calls this up to 64
  // times per command (pread on one fd is safe from any reactor).
  int extent_state(uint64_t off, uint64_t max, uint64_t* run) override {
    *run = max;
    if (off >= size_ || max == 0) return kMapped;
    std::call_once(pagemap_once_, [this] { pagemap_ = open("/proc/self/pagemap", O_RDONLY | O_CLOEXEC); });
    int fd = pagemap_;
    if (fd < 0) return kMapped;
    uint64_t first = (reinterpret_cast<uintptr_t>(base_) + off) / kPage;
    uint64_t end_off = off + std::min(max, size_ - off);
    uint64_t last = (reinterpret_cast<uintptr_t>(base_) + end_off + kPage - 1) / kPage;  // exclusive
    last = std::min(last, first + kScanPages);
    int state = -1;
    uint64_t page = first;
    uint64_t buf[512];
    while (page < last) {
      size_t want = size_t(std::min<uint64_t>(last - page, 512));
      ssize_t got = pread(fd, buf, want * 8, off_t(page * 8));
      if (got <= 0) break;
      size_t n = size_t(got) / 8;
      size_t i = 0;
      for (; i < n; ++i) {
        int st = (buf[i] >> 62) & 3 ? kMapped : kDeallocated;
        if (state < 0) state = st;
        if (st != state) break;
      }
      page += i;
      if (i < n) break;
    }
    if (state < 0) return kMapped;  // pagemap gave nothing
    uint64_t run_end = page * kPage - reinterpret_cast<uintptr_t>(base_);  // offset where the state changes
    *run = std::max<uint64_t>(1, std::min(run_end, end_off) - off);
    return state;
  }

  int flush_sync() override { return 0; }

  int read_sync(uint64_t off, const Seg* segs, unsigned n) override {
    for (unsigned i = 0; i < n; ++i) {
      if (off > size_ || segs[i].len > size_ - off) return -EINVAL;
      std::memcpy(segs[i].addr, base_ + off, segs[i].len);
      off += segs[i].len;
    }
    return 0;
  }

  int write_sync(uint64_t off, const Seg* segs, unsigned n, bool) override {
    uint64_t len = total_len(SegSpan(segs, n));
    if (off > size_ || len > size_ - off) return -EINVAL;
    for (unsigned i = 0; i < n; ++i) {
      std::memcpy(base_ + off, segs[i].addr, segs[i].len);
      off += segs[i].len;
    }
    copied_.fetch_add(len, std::memory_order_relaxed);
    return 0;
  }

 private:
  int run(Io& io) {
    if (io.offset > size_ || io.len > size_ - io.offset) return -EINVAL;
    switch (io.op) {
      // io.len bounds the transfer: the segments may describe more (a
      // transport buffer that also holds data beyond the CDB's length).
      case Io::Op::read: {
        uint64_t off = io.offset, left = io.len;
        for (unsigned i = 0; i < io.nsegs && left; ++i) {
          size_t n = std::min<uint64_t>(io.segs[i].len, left);
          std::memcpy(io.segs[i].addr, base_ + off, n);
          off += n;
          left -= n;
        }
        return 0;
      }
      case Io::Op::write: {
        uint64_t off = io.offset, left = io.len;
        for (unsigned i = 0; i < io.nsegs && left; ++i) {
          size_t n = std::min<uint64_t>(io.segs[i].len, left);
          std::memcpy(base_ + off, io.segs[i].addr, n);
          off += n;
          left -= n;
        }
        // Pairs with nothing: a statistic read by tests after the fact.
        copied_.fetch_add(io.len, std::memory_order_relaxed);
        return 0;
      }
      case Io::Op::flush:
        return 0;
      case Io::Op::unmap:
      case Io::Op::write_zeroes:
        return zero(io.offset, io.len);
    }
    return -EINVAL;
  }

  // Whole pages go back to the kernel; the ragged ends are cleared by hand.
  [[gnu::noinline]] int zero(uint64_t off, uint64_t len) {
    uint64_t end = off + len;
    uint64_t a = (off + kPage - 1) & ~(kPage - 1);
    uint64_t b = end & ~(kPage - 1);
    if (a >= b) {
      std::memset(base_ + off, 0, len);
      return 0;
    }
    std::memset(base_ + off, 0, a - off);
    std::memset(base_ + b, 0, end - b);
    if (madvise(base_ + a, b - a, MADV_DONTNEED) != 0) {
      std::memset(base_ + a, 0, b - a);  // still correct, just not sparse
    }
    return 0;
  }

  uint8_t* base_;
  uint64_t size_;
  std::atomic<uint64_t> copied_{0};
  std::once_flag pagemap_once_;
  int pagemap_ = -1;  // /proc/self/pagemap, from the first extent_state()
};

}  // namespace

std::unique_ptr<Backend> make_ram(const RamOptions& o, int* err) {
  if (o.size_bytes == 0) {
    if (err) *err = -EINVAL;
    return nullptr;
  }
  void* p = mmap(nullptr, o.size_bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    if (err) *err = -errno;
    return nullptr;
  }
  if (err) *err = 0;
  return std::make_unique<RamBackend>(static_cast<uint8_t*>(p), o.size_bytes);
}

}  // namespace sgv::backend
