// scsi/task.hpp - a SCSI command as the target core sees it, and the seam
// between the transport (iscsi/, server/) and the core (scsi/).
//
// The transport owns the memory: a Task lives in the private area of a
// command slot, its sense buffer is the slot's. The flow for every command:
//
//   1. transport fills the "transport" fields and calls Target::prepare().
//   2. prepare() decodes the CDB by table. Either the task is complete
//      (status/sense set: bad CDB, bad LUN, reservation, ...) or it names
//      the data phase: dir and data_len (the length the CDB asks for).
//   3. transport provides the data buffer in segs/nsegs: for Dir::out it has
//      received min(edtl, data_len) bytes into it; for Dir::in it allocated
//      min(edtl, data_len) bytes, unless prepare set backend_buffer, in which
//      case prepare pointed segs at the backend's own memory (inline_segs).
//   4. transport calls Target::execute(); on completion the core sets status,
//      sense, xfer_len and calls task.done (inline or later, same thread).
//      A command may have to wait for another one (a write while a COMPARE
//      AND WRITE holds its LUN): the core parks it without blocking and,
//      when it may go on, calls task.post_resume from whatever thread it is
//      on; the transport then calls Target::resume() on the execute() thread.
//   5. the transport computes residuals from edtl vs the command's length:
//      data_len, or xfer_len when a Dir::in command produced less (MODE
//      SENSE shorter than its allocation length). It sends
//      min(edtl, xfer_len) bytes.
//   Data-out segs must describe exactly the bytes received; data-in segs
//   exactly min(edtl, data_len) bytes.
#pragma once

#include <cstdint>

#include "sgv/seg.hpp"

namespace sgv::scsi {

enum class Dir : uint8_t { none, in /* to initiator */, out /* from initiator */ };

namespace status {
constexpr uint8_t good = 0x00;
constexpr uint8_t check_condition = 0x02;
constexpr uint8_t condition_met = 0x04;
constexpr uint8_t busy = 0x08;
constexpr uint8_t reservation_conflict = 0x18;
constexpr uint8_t task_set_full = 0x28;
constexpr uint8_t aca_active = 0x30;
constexpr uint8_t task_aborted = 0x40;
}  // namespace status

enum class TaskAttr : uint8_t { simple = 0, ordered = 1, head_of_queue = 2, aca = 3, untagged = 4 };

constexpr unsigned kSenseMax = 252;
constexpr unsigned kTaskInlineSegs = 4;

// Task::lun holds the 8 LUN bytes of the wire as a big-endian number: wire
// byte 0 is bits 63..56. These convert between the two.
inline uint64_t lun_from_wire(const uint8_t b[8]) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}
inline void lun_to_wire(uint64_t v, uint8_t b[8]) {
  for (int i = 7; i >= 0; --i, v >>= 8) b[i] = uint8_t(v);
}

class Nexus;  // I_T nexus state in the core (unit attentions, reservations)

struct Task {
  // --- filled by the transport before prepare()
  uint8_t cdb[16] = {};
  uint8_t cdb_len = 16;
  uint64_t lun = 0;              // the 8-byte SAM LUN as sent on the wire
  uint32_t edtl = 0;             // expected data transfer length
  bool xport_read = false;       // transport's R bit
  bool xport_write = false;      // transport's W bit
  TaskAttr attr = TaskAttr::simple;
  Nexus* nexus = nullptr;        // from Target::open_nexus()
  // The transport reads Data-In in user space (a data digest): prepare()
  // then hands out backend memory only if reading it can never fault
  // (a file mapping can: truncated under the LUN, it raises SIGBUS).
  bool cpu_reads_data = false;
  uint8_t* sense = nullptr;      // kSenseMax bytes owned by the slot

  // --- set by prepare()
  Dir dir = Dir::none;
  uint32_t data_len = 0;         // bytes the CDB transfers
  bool backend_buffer = false;   // Dir::in: prepare() set segs to the backend's memory
  void* lun_obj = nullptr;       // core-private: the resolved LUN
  uint8_t op_index = 0;          // core-private: the command table row

  // --- data buffer (see step 3)
  const Seg* segs = nullptr;
  unsigned nsegs = 0;
  Seg inline_segs[kTaskInlineSegs] = {};

  // --- result, set before done()
  uint8_t status = status::good;
  uint8_t sense_len = 0;
  // Dir::in: bytes the command produced (<= data_len). The first
  // min(xfer_len, buffer) of them are in segs; xfer_len < data_len means
  // the command returned less than the CDB allowed (underflow).
  uint32_t xfer_len = 0;
  void (*done)(Task*) = nullptr;
  void* ctx = nullptr;           // the transport's
  // Any thread: have Target::resume(*task) called later on the thread that
  // called execute() for it; the waker may be another thread, or inside
  // another command's completion. A parked task is in flight like one in
  // the backend: its memory must live until done. nullptr: the core resumes
  // inline on the waking thread, which only a transport that runs every
  // command on one thread may rely on.
  void (*post_resume)(Task*) = nullptr;
  // core-private per-command state: the backend Io, the decoded LBA range and
  // the WRITE SAME segment ring live here so the core never allocates.
  alignas(16) uint64_t core_scratch[48] = {};
};

}  // namespace sgv::scsi
