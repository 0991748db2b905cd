// backend/null.cpp - the null backend: reads return zeros, writes vanish.
//
// For measuring the transport and the SCSI core without storage cost. Reads
// are served zero-copy from one read-only anonymous mapping (every page is the
// kernel's shared zero page), so even zero-filling costs nothing.
#include <sys/mman.h>

#include <cerrno>
#include <cstring>

#include "backend/backend.hpp"

namespace sgv::backend {
namespace {

constexpr uint64_t kZeroWindow = 16u << 20;  // larger than any sane transfer limit

class NullBackend final : public Backend {
 public:
  explicit NullBackend(uint64_t size) : size_(size) {
    void* p = mmap(nullptr, kZeroWindow, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    zeros_ = p == MAP_FAILED ? nullptr : static_cast<uint8_t*>(p);
  }
  ~NullBackend() override {
    if (zeros_) munmap(zeros_, kZeroWindow);
  }
  const char* kind() const override { return "null"; }
  uint64_t size_bytes() const override { return size_; }
  bool supports_unmap() const override { return true; }
  bool volatile_cache() const override { return false; }

  void submit(Io& io) override {
    io.result = 0;
    if (io.offset > size_ || io.len > size_ - io.offset) {
      io.result = -EINVAL;
    } else if (io.op == Io::Op::read) {
      uint64_t left = io.len;
      for (unsigned i = 0; i < io.nsegs && left; ++i) {
        size_t n = io.segs[i].len < left ? io.segs[i].len : left;
        std::memset(io.segs[i].addr, 0, n);
        left -= n;
      }
    }
    io.done(&io);
  }
  unsigned map_read(uint64_t off, uint64_t len, Seg* out, unsigned cap) override {
    if (!zeros_ || cap == 0 || len > kZeroWindow || off > size_ || len > size_ - off) return 0;
    out[0].addr = zeros_;
    out[0].len = len;
    return 1;
  }
  int flush_sync() override { return 0; }
  int read_sync(uint64_t, const Seg* segs, unsigned n) override {
    for (unsigned i = 0; i < n; ++i) std::memset(segs[i].addr, 0, segs[i].len);
    return 0;
  }
  int write_sync(uint64_t off, const Seg* segs, unsigned n, bool) override {
    uint64_t len = total_len(SegSpan(segs, n));
    return off > size_ || len > size_ - off ? -EINVAL : 0;
  }

 private:
  uint64_t size_;
  uint8_t* zeros_;
};

}  // namespace

std::unique_ptr<Backend> make_null(uint64_t size_bytes) { return std::make_unique<NullBackend>(size_bytes); }

}  // namespace sgv::backend
