// backend/backend.hpp - the one small interface behind every LUN.
//
// A backend stores bytes; it knows nothing of CDBs or sense. The SCSI core
// (scsi/) turns a command into an Io, the backend completes it by calling
// io.done, possibly inline (ram, null) or later from the thread's completion
// reaping (file, io_uring). Data always travels in the caller's segments:
// the backend reads into them or writes from them, never through a bounce
// buffer of its own.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "sgv/seg.hpp"

namespace sgv::backend {

struct Io {
  enum class Op : uint8_t { read, write, flush, unmap, write_zeroes };
  Op op = Op::read;
  bool fua = false;            // write: durable before completion (RWF_DSYNC)
  uint64_t offset = 0;         // bytes
  uint64_t len = 0;            // bytes (read/write: equals total of segs)
  const Seg* segs = nullptr;   // read: destination; write: source
  unsigned nsegs = 0;
  int result = 0;              // 0 or -errno, set before done is called
  void (*done)(Io*) = nullptr; // called exactly once, on the submitting thread
  void* ctx = nullptr;         // the submitter's
  // --- backend-private progress (file backend: short-transfer resubmission)
  uint64_t be_done = 0;        // bytes already transferred
  struct iovec be_iov = {};    // remainder of a partially transferred segment
  bool be_split = false;       // be_iov in flight instead of segs
  void* be_owner = nullptr;    // the backend that resubmits the remainder
};

class Backend {
 public:
  virtual ~Backend() = default;
  virtual const char* kind() const = 0;         // "ram", "file", "null"
  virtual uint64_t size_bytes() const = 0;
  virtual bool supports_unmap() const = 0;      // thin provisioning
  virtual bool volatile_cache() const = 0;      // true: SYNCHRONIZE CACHE does work
  // Starts io; io.done runs exactly once, possibly before submit returns.
  virtual void submit(Io& io) = 0;
  // Zero-copy read: describe [offset, offset+len) as segments of the backend's
  // own memory that stay valid while the LUN exists. Returns the number of
  // segments written to out (<= cap), or 0 if the backend cannot for this
  // range (then the caller supplies a buffer and submits a read): a file LUN
  // on tmpfs maps only ranges without holes.
  virtual unsigned map_read(uint64_t /*offset*/, uint64_t /*len*/, Seg* /*out*/, unsigned /*cap*/) { return 0; }
  // Whether map_read may ever succeed (the SCSI core asks once per LUN).
  virtual bool can_map_read() const { return false; }
  // Whether the memory map_read hands out can become unreadable while the
  // LUN lives: a mapped file truncated by another process (the kernel's
  // copy into a socket then fails with EFAULT, but a user-space read takes
  // SIGBUS). Then only transports that do not read Data-In themselves get
  // the mapping (Task::cpu_reads_data).
  virtual bool mapped_can_vanish() const { return false; }
  // Blocking flush used at shutdown; 0 or -errno.
  virtual int flush_sync() = 0;
  // Blocking read for rare slow-path commands (VERIFY, compare); 0 or -errno.
  virtual int read_sync(uint64_t offset, const Seg* segs, unsigned nsegs) = 0;
  // Blocking write for the same slow paths (COMPARE AND WRITE, whose read,
  // compare and write must not be split by a completion); fua: durable on
  // return. 0 or -errno.
  virtual int write_sync(uint64_t offset, const Seg* segs, unsigned nsegs, bool fua) = 0;
  // Payload bytes this backend copied in user space (debug counter; file and
  // null must stay at 0, ram copies writes into its store by design; reads
  // through map_read are copied by the kernel, into the socket).
  virtual uint64_t bytes_copied() const { return 0; }
  // Provisioning of the store at offset, for GET LBA STATUS: returns
  // kMapped or kDeallocated (reads as zeros and holds no space) and sets *run
  // to how many bytes from offset (1..max) share that state; or -errno.
  // Blocking, for that rare slow-path command; a backend may stop a run early
  // to bound its work. The default reports everything mapped, which is
  // always safe: an initiator may skip reading deallocated blocks.
  static constexpr int kMapped = 0, kDeallocated = 1;
  virtual int extent_state(uint64_t /*offset*/, uint64_t max, uint64_t* run) {
    *run = max;
    return kMapped;
  }
};

// Per-thread io_uring used by file LUNs. A reactor thread that may run file
// I/O registers thread_completion_fd() (an eventfd) in its poller, calls
// reap_thread_completions() when it is readable, and calls
// submit_thread_batch() once per loop turn so submissions go out in batches.
int thread_completion_fd();            // creates the ring lazily; fd or -errno
unsigned reap_thread_completions();    // runs io.done of finished ops; count
void submit_thread_batch();            // io_uring_submit of anything queued
// Submits, then blocks until at least one queued op completes and reaps;
// returns the count reaped (0 if nothing was in flight). For tests and tools
// that have no poller.
unsigned wait_thread_completions();
unsigned thread_ops_in_flight();       // ops submitted by this thread, not yet done

struct RamOptions { uint64_t size_bytes; };
struct FileOptions {
  std::string path;
  uint64_t size_bytes = 0;   // 0: the file's (or device's) current size
  bool direct = false;       // O_DIRECT
  bool create = true;        // create/extend a regular file to size_bytes
};

// Factories return nullptr and set *err (errno-style, negative) on failure.
std::unique_ptr<Backend> make_ram(const RamOptions& o, int* err);
std::unique_ptr<Backend> make_file(const FileOptions& o, int* err);
std::unique_ptr<Backend> make_null(uint64_t size_bytes);

}  // namespace sgv::backend
