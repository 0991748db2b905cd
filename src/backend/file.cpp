// backend/file.cpp - file and block-device LUNs: reads and writes inline on
// the calling thread when they cannot block, else through a per-thread
// io_uring.
//
// Payload never passes through user space here: preadv2/pwritev2 and the
// ring's readv/writev go to the kernel with the command's own segments as the
// iovec array. Each reactor thread owns one ring (no locks between threads);
// its eventfd tells the reactor when to reap. Short transfers are resubmitted
// for the remainder, -EAGAIN/-EINTR are retried, and everything else is
// reported in Io.result for the SCSI core to turn into sense.
//
// Why inline first (measured 2026-11-30, kernel 6.18, this 2-core VM, 1 MiB
// WRITE at QD8 to a file on /dev/shm): tmpfs has no FMODE_NOWAIT, so io_uring
// cannot try a tmpfs read or write in the submitting task and punts every one
// to an io-wq worker (iou-wrk-*): per 1 MiB write the worker spent ~170 us of
// CPU (the kernel's per-4 KiB page-cache copy, ~120 us of it measured alone)
// on top of the reactor's ~280 us, plus a worker wakeup and a completion round
// trip through the eventfd. The page cache of tmpfs (and ramfs) *is* the
// medium, so there a plain preadv2/pwritev2 never waits for a device: such
// files are served inline, blocking calls, FUA as RWF_DSYNC (free there),
// except reads of kInlineReadMax and more (see try_inline), and reads are
// rarely submitted at all there (map_read, below).
// Files on filesystems with FMODE_NOWAIT (ext4, xfs, btrfs) try
// RWF_NOWAIT first: a page-cache hit costs one syscall and no ring round trip,
// a miss (-EAGAIN, possibly after a short transfer) goes to the ring for the
// rest. ext4 refuses RWF_NOWAIT on buffered writes (-EOPNOTSUPP): the first
// refusal sends that LUN's writes to the ring from then on. FUA writes there,
// O_DIRECT and block devices always use the ring.
//
// Reads of tmpfs/ramfs files (Path::memory: never O_DIRECT, never a block
// device) need no copy at all in sgvd: such a file is also mapped
// (MAP_SHARED, PROT_READ) and map_read hands the transport the file's own
// pages, which the kernel copies straight into the socket (measured
// 2026-11-30: the preadv2 copy was ~170 us of sgvd's ~390 us per 1 MiB READ).
// Writes still go through pwritev2 into the same page cache, so the mapping
// sees them at once. Two things keep a read off the mapping, and the caller
// then reads into its own buffer as before:
//  - holes: a read fault on a hole of a shared tmpfs mapping *allocates* a
//    page (checked on 6.18: st_blocks grows when the kernel reads a hole
//    through the mapping; MAP_POPULATE and MADV_POPULATE_READ allocate every
//    hole they cover too), so reading a never-written LUN that way would fill
//    tmpfs with zeros. The backend keeps a bitmap of the pages known to hold
//    data (SEEK_DATA/SEEK_HOLE at open, then every write of its own, cleared
//    before UNMAP/WRITE ZEROES): only ranges whose every page is known are
//    mapped. Asking the kernel per read instead costs a syscall each time
//    (mincore ~3 us; SEEK_HOLE walks to the next hole, 350 us in a full
//    64 MiB file). Writes by another process leave their pages unknown
//    (correct, just copied); a read racing its own UNMAP may fault in (and
//    so allocate) at most the read's pages.
//  - other filesystems: a page-cache miss there would block the reactor
//    inside sendmsg while the kernel reads the disk, so they are not mapped.
// The data pages are populated at open (no minor fault per command once
// warm; pages written later fault in once, 16 at a time by fault-around);
// mapped pages count in sgvd's RSS (RssShmem) though they are the file's.
// The mapping lives as long as the backend, and the LUN's size is fixed at
// open (sgvd has no resize), so map_read's segments never dangle.
// A file truncated under the LUN by another process is operator error: the
// kernel's copy in sendmsg then fails with EFAULT and the connection drops.
// A user-space reader of the segments would take SIGBUS, so transports that
// read Data-In themselves (the CRC when DataDigest is negotiated) never get
// the mapping (mapped_can_vanish, Task::cpu_reads_data): their READs copy,
// and past the new end of the file fail with MEDIUM ERROR.
#include <fcntl.h>
#include <linux/falloc.h>
#include <linux/fs.h>
#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <linux/magic.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/uio.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <memory>

#include "backend/backend.hpp"
#include "backend/file_testing.hpp"

namespace sgv::backend {
namespace {

constexpr unsigned kRingEntries = 256;
constexpr unsigned kIovMax = 1024;  // IOV_MAX: longer lists go out in pieces
constexpr uint64_t kInlineReadMax = 256 << 10;  // tmpfs reads this large use the ring
constexpr uint64_t kPage = 4096;  // the mapping's granularity (checked at open)

// One ring per thread; created lazily, torn down at thread exit.
struct ThreadRing {
  io_uring ring{};
  int efd = -1;
  int err = 0;         // setup failure, sticky
  bool ready = false;
  unsigned queued = 0;     // SQEs prepared, not yet submitted
  unsigned in_flight = 0;  // ops between submit() and done()

  int init() {
    if (ready) return 0;
    if (err) return err;
    int r = io_uring_queue_init(kRingEntries, &ring, 0);
    if (r < 0) return err = r;
    efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (efd < 0) {
      err = -errno;
      io_uring_queue_exit(&ring);
      return err;
    }
    r = io_uring_register_eventfd(&ring, efd);
    if (r < 0) {
      close(efd);
      io_uring_queue_exit(&ring);
      return err = r;
    }
    ready = true;
    return 0;
  }
  ~ThreadRing() {
    if (ready) {
      io_uring_queue_exit(&ring);
      close(efd);
    }
  }
  // Ring full: push what is queued to the kernel to make room.
  [[gnu::noinline]] io_uring_sqe* sqe_slow() {
    io_uring_submit(&ring);
    queued = 0;
    return io_uring_get_sqe(&ring);
  }
  io_uring_sqe* sqe() {
    io_uring_sqe* s = io_uring_get_sqe(&ring);
    return s ? s : sqe_slow();
  }
};

thread_local ThreadRing t_ring;

// Test hooks (file_testing.hpp): the next short_calls inline syscalls move at
// most short_cap bytes, then the next fail_calls ones fail with fail_err
// without moving anything.
struct InlineFaults {
  unsigned short_calls = 0;
  size_t short_cap = 0;
  unsigned fail_calls = 0;
  int fail_err = 0;
};
thread_local InlineFaults t_faults;

// How reads and writes of one file are done (decided once, at open).
enum class Path : uint8_t {
  ring,    // always io_uring (O_DIRECT, block devices, no RWF_NOWAIT support)
  nowait,  // preadv2/pwritev2(RWF_NOWAIT) inline, the ring on -EAGAIN
  memory,  // tmpfs/ramfs: blocking preadv2/pwritev2 inline (never waits on a device)
};

// The remainder of io (after be_done bytes) as an iovec array: whole segments
// that fit in what is left of io.len (the segments may describe more than
// io.len), at most IOV_MAX of them; a segment cut mid-way or past io.len goes
// alone through io.be_iov. Sets io.be_split accordingly.
unsigned window(Io& io, const struct iovec** out) {
  unsigned i = 0;
  uint64_t skip = io.be_done;
  while (i < io.nsegs && skip >= io.segs[i].len) skip -= io.segs[i++].len;
  uint64_t left = io.len - io.be_done;
  unsigned n = 0;
  uint64_t acc = 0;
  if (skip == 0)
    while (i + n < io.nsegs && n < kIovMax && acc + io.segs[i + n].len <= left) acc += io.segs[i + n++].len;
  *out = as_iovec(io.segs + i);
  io.be_split = n == 0;
  if (io.be_split) {
    uint64_t piece = io.segs[i].len - skip;
    io.be_iov = {static_cast<uint8_t*>(io.segs[i].addr) + skip, piece < left ? piece : left};
    *out = &io.be_iov;
    n = 1;
  }
  return n;
}

// Pages of a mapped file known to hold data: one bit per page, set after
// this backend's writes complete, cleared before it punches or zeroes them.
// Reactor threads share a LUN, so the words are atomic; a reader seeing a bit
// a moment late only takes the copying path once more.
class DataPages {
 public:
  explicit DataPages(uint64_t pages) : n_((pages + 63) / 64), w_(new std::atomic<uint64_t>[n_]()) {}
  // Every page of [first, end) known.
  bool all(uint64_t first, uint64_t end) const {
    return each(first, end, [](std::atomic<uint64_t>& w, uint64_t m) {
      return (w.load(std::memory_order_acquire) & m) == m;
    });
  }
  void set(uint64_t first, uint64_t end) {
    each(first, end, [](std::atomic<uint64_t>& w, uint64_t m) {
      w.fetch_or(m, std::memory_order_release);
      return true;
    });
  }
  void clear(uint64_t first, uint64_t end) {
    each(first, end, [](std::atomic<uint64_t>& w, uint64_t m) {
      w.fetch_and(~m, std::memory_order_relaxed);
      return true;
    });
  }

 private:
  // f(word, mask of the range's bits in it) for each word; stops at false.
  template <class F>
  bool each(uint64_t a, uint64_t b, F f) const {
    while (a < b) {
      uint64_t wi = a / 64, lo = a % 64, hi = std::min<uint64_t>(b - wi * 64, 64);
      uint64_t m = (hi == 64 ? ~uint64_t(0) : (uint64_t(1) << hi) - 1) & (~uint64_t(0) << lo);
      if (!f(w_[wi], m)) return false;
      a = wi * 64 + hi;
    }
    return true;
  }
  uint64_t n_;
  std::unique_ptr<std::atomic<uint64_t>[]> w_;
};

class FileBackend;

// Prepares the SQE that moves the rest of io (after be_done bytes).
void prep(FileBackend* be, Io& io, io_uring_sqe* sqe);

class FileBackend final : public Backend {
 public:
  FileBackend(int fd, uint64_t size, bool blockdev, Path path)
      : fd_(fd), size_(size), blockdev_(blockdev), path_(path) {
    if (path_ == Path::memory) map_memory();
  }
  ~FileBackend() override {
    if (map_) munmap(map_, size_);
    close(fd_);
  }
  const char* kind() const override { return "file"; }
  uint64_t size_bytes() const override { return size_; }
  bool supports_unmap() const override { return true; }
  bool volatile_cache() const override { return true; }

  // Inline when the file allows it (see the top of this file), else one SQE
  // prepared, no syscall (the reactor batches submission).
  void submit(Io& io) override {
    io.be_done = 0;
    io.be_split = false;
    if (io.offset > size_ || io.len > size_ - io.offset) return finish(io, -EINVAL);
    if (blockdev_ && (io.op == Io::Op::unmap || io.op == Io::Op::write_zeroes)) return discard_blockdev(io);
    if (map_ && (io.op == Io::Op::unmap || io.op == Io::Op::write_zeroes)) {
      // Before the hole exists, so no later read maps it; the partial pages
      // at either end stay allocated (zeroed), so they stay known.
      data_->clear(io.offset / kPage + (io.offset % kPage != 0), (io.offset + io.len) / kPage);
    }
    if (path_ != Path::ring && try_inline(io)) return;
    int r = t_ring.init();
    if (r < 0) return finish(io, r);
    io_uring_sqe* sqe = t_ring.sqe();
    if (!sqe) return finish(io, -EBUSY);
    prep(this, io, sqe);
    ++t_ring.queued;
    ++t_ring.in_flight;
  }

  int flush_sync() override { return fdatasync(fd_) == 0 ? 0 : -errno; }

  int read_sync(uint64_t off, const Seg* segs, unsigned n) override { return sync_rw(false, off, segs, n, false); }
  int write_sync(uint64_t off, const Seg* segs, unsigned n, bool fua) override {
    int r = sync_rw(true, off, segs, n, fua);
    if (r == 0) wrote(off, total_len(SegSpan(segs, n)));
    return r;
  }

  // The file's own pages when every one of them holds data (see the top of
  // this file); 0 sends the caller to a buffer of its own and submit().
  unsigned map_read(uint64_t off, uint64_t len, Seg* out, unsigned cap) override {
    if (!map_ || cap == 0 || off > size_ || len > size_ - off) return 0;
    if (len && !data_->all(off / kPage, (off + len + kPage - 1) / kPage)) return 0;
    out[0].addr = map_ + off;
    out[0].len = len;
    return 1;
  }
  bool can_map_read() const override { return map_ != nullptr; }
  bool mapped_can_vanish() const override { return map_ != nullptr; }

  // A write of [off, off+len) completed: its pages hold data now.
  void wrote(uint64_t off, uint64_t len) {
    if (map_ && len) data_->set(off / kPage, (off + len + kPage - 1) / kPage);
  }

  // Holes of a regular file (SEEK_DATA / SEEK_HOLE; ext4, xfs, tmpfs, ...)
  // read as zeros and hold no space. A block device, or a file system that
  // does not answer, is reported mapped.
  int extent_state(uint64_t off, uint64_t max, uint64_t* run) override {
    *run = max;
    if (blockdev_ || off >= size_) return kMapped;
    uint64_t end = off + std::min(max, size_ - off);
    off_t data = lseek(fd_, off_t(off), SEEK_DATA);
    if (data < 0) {
      if (errno == ENXIO) return kDeallocated;  // a hole up to the end of the file
      return kMapped;
    }
    if (uint64_t(data) > off) {
      *run = std::min(uint64_t(data), end) - off;
      return kDeallocated;
    }
    off_t hole = lseek(fd_, off_t(off), SEEK_HOLE);
    if (hole > off_t(off)) *run = std::min(uint64_t(hole), end) - off;
    return kMapped;
  }

  int fd() const { return fd_; }
  Path path() const { return path_; }

  static void finish(Io& io, int result) {
    io.result = result;
    io.done(&io);
  }

 private:
  // Moves io on this thread; true when io.done has run, false when the ring
  // must take the rest (from io.be_done on: bytes moved so far stay moved).
  bool try_inline(Io& io) {
    bool rw = io.op == Io::Op::read || io.op == Io::Op::write;
    if (path_ == Path::memory && io.op == Io::Op::flush) {
      // Nothing to make durable below the page cache of tmpfs.
      finish(io, fdatasync(fd_) == 0 ? 0 : -errno);
      return true;
    }
    if (!rw || (io.fua && path_ != Path::memory)) return false;
    // A large tmpfs read that map_read could not map (a hole in its range)
    // stays on the ring: its io-wq worker copies out of the page cache while
    // the reactor sends the previous command's data (1 MiB at QD8, two A/Bs
    // on the loaded box: more MB/s than inline in 6 of 7 alternations, by up
    // to 13 %, for 40-110 us more CPU per I/O).
    if (path_ == Path::memory && io.op == Io::Op::read && io.len >= kInlineReadMax) return false;
    if (io.op == Io::Op::write && !nowait_writes_.load(std::memory_order_relaxed)) return false;
    int flags = (path_ == Path::nowait ? RWF_NOWAIT : 0) | (io.fua ? RWF_DSYNC : 0);
    while (io.be_done < io.len) {
      const struct iovec* iov;
      int n = int(window(io, &iov));
      ssize_t r;
      if (t_faults.short_calls || t_faults.fail_calls) {
        r = faulty_call(io, iov, flags);
      } else {
        off_t off = off_t(io.offset + io.be_done);
        r = io.op == Io::Op::read ? preadv2(fd_, iov, n, off, flags) : pwritev2(fd_, iov, n, off, flags);
      }
      if (r < 0) {
        if (errno == EINTR) continue;
        if (errno == EAGAIN) return false;
        if (errno == EOPNOTSUPP && path_ == Path::nowait && io.op == Io::Op::write) {
          // ext4 takes RWF_NOWAIT on buffered reads only: writes use the ring.
          nowait_writes_.store(false, std::memory_order_relaxed);
          return false;
        }
        finish(io, -errno);
        return true;
      }
      if (r == 0) {
        // Past the end of a file that shrank under the LUN (see complete()).
        finish(io, -EIO);
        return true;
      }
      io.be_done += uint64_t(r);
    }
    if (io.op == Io::Op::write) wrote(io.offset, io.len);
    finish(io, 0);
    return true;
  }

  // Maps a tmpfs/ramfs file for map_read and learns (and populates) the pages
  // that hold data. Any failure leaves map_ null: reads then copy as before.
  void map_memory() {
    if (sysconf(_SC_PAGESIZE) != long(kPage)) return;
    void* m = mmap(nullptr, size_, PROT_READ, MAP_SHARED, fd_, 0);
    if (m == MAP_FAILED) return;
    map_ = static_cast<uint8_t*>(m);
    data_ = std::make_unique<DataPages>((size_ + kPage - 1) / kPage);
    off_t at = 0;
    for (;;) {
      off_t d = lseek(fd_, at, SEEK_DATA);
      if (d < 0 || uint64_t(d) >= size_) break;  // ENXIO: no data after at
      off_t h = lseek(fd_, d, SEEK_HOLE);
      uint64_t end = h < 0 ? size_ : std::min<uint64_t>(uint64_t(h), size_);
      uint64_t first = uint64_t(d) / kPage, last = (end + kPage - 1) / kPage;
      data_->set(first, last);
      // Only the data: populating a hole would allocate it. Failure (older
      // kernels) just leaves the first reads to fault the pages in.
      madvise(map_ + first * kPage, (last - first) * kPage, MADV_POPULATE_READ);
      if (end >= size_) break;
      at = off_t(end);
    }
  }

  [[gnu::noinline]] ssize_t faulty_call(Io& io, const struct iovec* iov, int flags) {
    if (t_faults.short_calls) {
      --t_faults.short_calls;
      struct iovec one = {iov[0].iov_base, std::min(iov[0].iov_len, t_faults.short_cap)};
      off_t off = off_t(io.offset + io.be_done);
      return io.op == Io::Op::read ? preadv2(fd_, &one, 1, off, flags) : pwritev2(fd_, &one, 1, off, flags);
    }
    --t_faults.fail_calls;
    errno = -t_faults.fail_err;
    return -1;
  }

  // preadv/pwritev2 until every byte moved, resuming after short transfers.
  int sync_rw(bool write, uint64_t off, const Seg* segs, unsigned n, bool fua) {
    uint64_t want = total_len(SegSpan(segs, n));
    if (off > size_ || want > size_ - off) return -EINVAL;
    uint64_t done = 0;
    while (done < want) {
      // Skip whole segments already moved; the first partial one is windowed.
      unsigned i = 0;
      uint64_t skip = done;
      while (skip >= segs[i].len) skip -= segs[i++].len;
      struct iovec first = {static_cast<uint8_t*>(segs[i].addr) + skip, segs[i].len - skip};
      const struct iovec* v = skip ? &first : as_iovec(segs + i);
      int cnt = skip ? 1 : int(n - i);
      ssize_t r = write ? pwritev2(fd_, v, cnt, off_t(off + done), fua ? RWF_DSYNC : 0)
                        : preadv(fd_, v, cnt, off_t(off + done));
      if (r < 0) {
        if (errno == EINTR || errno == EAGAIN) continue;
        return -errno;
      }
      if (r == 0) return -EIO;
      done += uint64_t(r);
    }
    return 0;
  }

  // Block devices discard through an ioctl (no io_uring opcode for it in 2.3).
  [[gnu::noinline]] void discard_blockdev(Io& io) {
    uint64_t range[2] = {io.offset, io.len};
    int r = ioctl(fd_, io.op == Io::Op::unmap ? BLKDISCARD : BLKZEROOUT, range);
    finish(io, r == 0 ? 0 : -errno);
  }

  int fd_;
  uint64_t size_;
  bool blockdev_;
  Path path_;
  uint8_t* map_ = nullptr;           // Path::memory: the file, PROT_READ
  std::unique_ptr<DataPages> data_;  // with map_: the pages known to hold data
  // Cleared when the filesystem refuses RWF_NOWAIT writes (any thread may).
  std::atomic<bool> nowait_writes_{true};
};

// Which Path a regular file opened with these flags takes: RWF_NOWAIT is
// probed with a one-byte read (-EOPNOTSUPP: the filesystem cannot say "would
// block"), then memory-backed filesystems are recognised by their magic.
Path choose_path(int fd, bool direct, bool blockdev) {
  if (direct || blockdev) return Path::ring;
  uint8_t b;
  struct iovec v = {&b, 1};
  if (preadv2(fd, &v, 1, 0, RWF_NOWAIT) >= 0 || errno == EAGAIN) return Path::nowait;
  struct statfs sf;
  if (fstatfs(fd, &sf) == 0 && (sf.f_type == TMPFS_MAGIC || sf.f_type == RAMFS_MAGIC)) return Path::memory;
  return Path::ring;
}

void prep(FileBackend* be, Io& io, io_uring_sqe* sqe) {
  uint64_t off = io.offset + io.be_done;
  switch (io.op) {
    case Io::Op::read:
    case Io::Op::write: {
      const struct iovec* iov;
      unsigned n = window(io, &iov);
      if (io.op == Io::Op::read) {
        io_uring_prep_readv(sqe, be->fd(), iov, n, off);
      } else {
        io_uring_prep_writev(sqe, be->fd(), iov, n, off);
        if (io.fua) sqe->rw_flags = RWF_DSYNC;
      }
      break;
    }
    case Io::Op::flush:
      io_uring_prep_fsync(sqe, be->fd(), IORING_FSYNC_DATASYNC);
      break;
    case Io::Op::unmap:
      io_uring_prep_fallocate(sqe, be->fd(), FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, off, io.len);
      break;
    case Io::Op::write_zeroes: {
      // tmpfs has no FALLOC_FL_ZERO_RANGE (-EOPNOTSUPP, so WRITE SAME of
      // zeros failed there); a punched hole reads zeros too (LBPRZ), and the
      // LUN reports no provisioning state that could tell the two apart.
      int mode = be->path() == Path::memory ? FALLOC_FL_PUNCH_HOLE : FALLOC_FL_ZERO_RANGE;
      io_uring_prep_fallocate(sqe, be->fd(), mode | FALLOC_FL_KEEP_SIZE, off, io.len);
      break;
    }
  }
  io.be_owner = be;
  io_uring_sqe_set_data(sqe, &io);
}

// One CQE: finish the Io, or resubmit what is left of it.
void complete(Io& io, int res) {
  auto* be = static_cast<FileBackend*>(io.be_owner);
  if (res == -EAGAIN || res == -EINTR) {
    res = 0;  // nothing moved; resubmit as is
  } else if (res < 0) {
    return FileBackend::finish(io, res);
  } else if (io.op != Io::Op::read && io.op != Io::Op::write) {
    return FileBackend::finish(io, 0);
  } else if (res == 0) {
    // Reading past the end of a shrunken file or a device that stops early:
    // the medium cannot deliver what the LUN promised.
    return FileBackend::finish(io, -EIO);
  }
  io.be_done += uint64_t(res);
  if (io.be_done >= io.len) {
    if (io.op == Io::Op::write) be->wrote(io.offset, io.len);
    return FileBackend::finish(io, 0);
  }
  io_uring_sqe* sqe = t_ring.sqe();
  if (!sqe) return FileBackend::finish(io, -EBUSY);
  prep(be, io, sqe);
  ++t_ring.queued;
  ++t_ring.in_flight;
}

}  // namespace

int thread_completion_fd() {
  int r = t_ring.init();
  return r < 0 ? r : t_ring.efd;
}

unsigned reap_thread_completions() {
  if (!t_ring.ready) return 0;
  uint64_t v;
  while (read(t_ring.efd, &v, sizeof v) > 0) {
  }
  unsigned n = 0;
  io_uring_cqe* cqe;
  while (io_uring_peek_cqe(&t_ring.ring, &cqe) == 0) {
    Io* io = static_cast<Io*>(io_uring_cqe_get_data(cqe));
    int res = cqe->res;
    io_uring_cqe_seen(&t_ring.ring, cqe);
    --t_ring.in_flight;
    complete(*io, res);  // may queue a resubmission or new ops from done()
    ++n;
  }
  return n;
}

void submit_thread_batch() {
  if (!t_ring.ready || t_ring.queued == 0) return;
  io_uring_submit(&t_ring.ring);
  t_ring.queued = 0;
}

unsigned wait_thread_completions() {
  if (!t_ring.ready || t_ring.in_flight == 0) return 0;
  submit_thread_batch();
  io_uring_cqe* cqe;
  int r;
  do {
    r = io_uring_wait_cqe(&t_ring.ring, &cqe);
  } while (r == -EINTR);
  return reap_thread_completions();
}

unsigned thread_ops_in_flight() { return t_ring.in_flight; }

std::unique_ptr<Backend> make_file(const FileOptions& o, int* err) {
  auto fail = [&](int e) -> std::unique_ptr<Backend> {
    if (err) *err = e;
    return nullptr;
  };
  int flags = O_RDWR | O_CLOEXEC | (o.direct ? O_DIRECT : 0);
  int fd = open(o.path.c_str(), flags | (o.create ? O_CREAT : 0), 0644);
  if (fd < 0) return fail(-errno);
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = -errno;
    close(fd);
    return fail(e);
  }
  bool blockdev = S_ISBLK(st.st_mode);
  uint64_t size = uint64_t(st.st_size);
  if (blockdev) {
    uint64_t bytes = 0;
    if (ioctl(fd, BLKGETSIZE64, &bytes) != 0) {
      int e = -errno;
      close(fd);
      return fail(e);
    }
    size = bytes;
    if (o.size_bytes && o.size_bytes <= size) size = o.size_bytes;
  } else if (o.size_bytes) {
    if (size < o.size_bytes) {
      if (!o.create || ftruncate(fd, off_t(o.size_bytes)) != 0) {
        int e = o.create ? -errno : -EINVAL;
        close(fd);
        return fail(e);
      }
    }
    size = o.size_bytes;
  }
  if (size == 0) {
    close(fd);
    return fail(-EINVAL);
  }
  if (err) *err = 0;
  return std::make_unique<FileBackend>(fd, size, blockdev, choose_path(fd, o.direct, blockdev));
}

namespace testing {

void file_inline_short(unsigned calls, size_t max_bytes) {
  t_faults.short_calls = calls;
  t_faults.short_cap = max_bytes;
}

void file_inline_fail(unsigned calls, int err) {
  t_faults.fail_calls = calls;
  t_faults.fail_err = err;
}

const char* file_io_path(const Backend& be) {
  auto* f = dynamic_cast<const FileBackend*>(&be);
  if (!f) return nullptr;
  switch (f->path()) {
    case Path::ring: return "ring";
    case Path::nowait: return "nowait";
    case Path::memory: return "memory";
  }
  return nullptr;
}

}  // namespace testing

}  // namespace sgv::backend
