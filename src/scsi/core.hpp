// scsi/core.hpp - private state of the SCSI target core: LUNs, I_T nexus
// unit-attention queues, per-command scratch, sense builders and the command
// table every opcode is dispatched through. Not visible to the transport.
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/endian.hpp"
#include "scsi/target.hpp"
#include "scsi/task.hpp"

namespace sgv::scsi {

constexpr uint64_t kMaxLuns = 16384;       // flat space addressing limit
constexpr uint32_t kMaxUnmapBlocks = 1u << 20;   // VPD B0 MAXIMUM UNMAP LBA COUNT (initiators distrust more)
constexpr uint32_t kMaxUnmapDescs = 256;         // VPD B0 MAXIMUM UNMAP BLOCK DESCRIPTOR COUNT
// VPD B0 MAXIMUM WRITE SAME LENGTH. Kept under 65536: initiators (libiscsi's
// WriteSame16.Unmap) that see >= 65536 set up the range with one 32 MiB WRITE,
// beyond our transfer limit.
constexpr uint32_t kMaxWriteSameBlocks = 65535;
// VPD B0 MAXIMUM COMPARE AND WRITE LENGTH (a one-byte field); also kept so
// that both halves fit the transfer limit (max_compare_write_blocks()).
constexpr uint32_t kMaxCompareWriteBlocks = 255;

// Sense keys and the (asc, ascq) pairs the core reports.
namespace sk {
constexpr uint8_t no_sense = 0x0, not_ready = 0x2, medium_error = 0x3, hardware_error = 0x4,
                  illegal_request = 0x5, unit_attention = 0x6, data_protect = 0x7,
                  aborted_command = 0xb, miscompare = 0xe;
}
struct Asc {
  uint8_t asc, ascq;
};
namespace asc {
constexpr Asc no_info{0x00, 0x00};
constexpr Asc unrecovered_read{0x11, 0x00};
constexpr Asc write_error{0x0c, 0x00};
constexpr Asc miscompare_verify{0x1d, 0x00};
constexpr Asc invalid_opcode{0x20, 0x00};
constexpr Asc lba_out_of_range{0x21, 0x00};
constexpr Asc invalid_field_cdb{0x24, 0x00};
constexpr Asc lun_not_supported{0x25, 0x00};
constexpr Asc invalid_field_param{0x26, 0x00};
constexpr Asc param_list_length{0x1a, 0x00};
constexpr Asc saving_not_supported{0x39, 0x00};
constexpr Asc write_protected{0x27, 0x00};
constexpr Asc space_alloc_failed{0x27, 0x07};
constexpr Asc power_on_reset{0x29, 0x00};
constexpr Asc bus_reset{0x29, 0x02};
constexpr Asc target_reset{0x29, 0x02};  // SCSI BUS RESET OCCURRED: what a target reset reports
constexpr Asc lun_reset{0x29, 0x03};
constexpr Asc mode_params_changed{0x2a, 0x01};
constexpr Asc cmds_cleared_by_other{0x2f, 0x00};
constexpr Asc luns_changed{0x3f, 0x0e};
constexpr Asc internal_failure{0x44, 0x00};
}  // namespace asc

// Mode parameters of a LUN. Shared by every nexus (one set per LUN, as
// most targets do); writers hold Lun::mode_mu, the data path reads the
// atomic mirrors only.
struct ModeState {
  bool wce = false;      // caching page: write cache enabled
  bool rcd = false;      // caching page: read cache disabled
  bool d_sense = false;  // control page: descriptor sense format
  bool swp = false;      // control page: software write protect (not changeable)
  uint8_t qerr = 0;
  uint8_t mrie = 0;      // informational exceptions page
  bool dexcpt = true;
};

// COMPARE AND WRITE's exclusion (SBC-3 5.2: the read, compare and write are
// atomic against every other command that writes those blocks; VMware's
// ATS locking relies on it). Every command that changes the medium (WRITE,
// WRITE AND VERIFY, WRITE SAME, UNMAP) counts itself in flight from
// gate_enter() until finish(); a COMPARE AND WRITE closes the gate, waits
// for the count to drain, runs its synchronous read+compare+write alone,
// then opens the gate. Nothing ever blocks on another command: a write that
// finds the gate closed, a CAW that finds writes in flight or another CAW
// holding the gate, parks (intrusive link in its scratch) and is resumed
// through Task::post_resume on its own thread, because a file LUN completes
// writes on the submitting thread's ring and a blocked thread would never
// reap them.
//
// Fast path (gate open): one seq_cst increment of this thread's padded
// counter, one seq_cst load of `closed`; the same at finish(). That pair and
// the CAW's seq_cst store of `closed` followed by its loads of the counters
// form a Dekker handshake: either the write sees the gate closed, or the CAW
// sees the write counted.
//
// LUN-wide, not per LBA range: CAW is rare and short (ATS moves one block),
// so holding off every write of the LUN for its duration is cheap; gating
// only overlapping ranges would be the refinement if that ever shows.
struct WriteGate {
  static constexpr unsigned kSlots = 16;  // threads share slots modulo this
  struct alignas(64) Slot {
    std::atomic<int64_t> n{0};
  };
  Slot slots[kSlots];
  std::atomic<bool> closed{false};  // a CAW holds the gate or waits for it to drain
  std::mutex mu;                    // guards the fields below; never held across I/O or a resume
  Task* draining = nullptr;         // the CAW that closed the gate, waiting for the writes in flight
  Task* park_head = nullptr;        // tasks waiting for the gate to open, oldest first
  Task* park_tail = nullptr;
};

// Persistent reservation state of a LUN (pr.cpp). Registrations belong to
// an I_T nexus by name (initiator port "iqn...,i,0xISID" + relative target
// port), so they outlive a session and a new login with the same ISID is
// the same nexus, as SPC-4 wants. Everything is guarded by mu; the data
// path reads only Lun::pr_reserved and takes mu only while a reservation
// exists.
constexpr size_t kMaxPrRegistrations = 1024;  // per LUN: more gets INSUFFICIENT REGISTRATION RESOURCES
struct PrState {
  struct Reg {
    std::string port;
    uint32_t rel_port;
    uint64_t key;
  };
  std::mutex mu;
  uint32_t generation = 0;    // PRgeneration
  std::vector<Reg> regs;      // at most kMaxPrRegistrations
  uint8_t type = 0;           // 0: not reserved; else the PR type (LU scope)
  std::string holder;         // the holder's port, unless type is all-registrants
  uint32_t holder_rel_port = 0;
};

struct Lun {
  uint64_t id = 0;
  std::unique_ptr<backend::Backend> be;
  uint32_t bs = 512;
  unsigned bs_shift = 9;
  uint64_t nblocks = 0;
  std::string serial;
  std::string product;
  bool read_only = false;
  bool thin = false;           // backend supports unmap: LBPME
  uint64_t naa = 0;            // NAA-6 identifier, derived from target name + id
  std::mutex mode_mu;
  ModeState mode;              // guarded by mode_mu
  // Mirror of mode.d_sense for sense building on the data path; written under
  // mode_mu, read relaxed (a sense format switch needs no ordering).
  std::atomic<bool> d_sense{false};
  std::atomic<bool> swp{false};  // mirror of mode.swp, same rules as d_sense
  // volatile cache && !mode.wce: every write must be FUA. Same rules as d_sense.
  std::atomic<bool> force_fua{false};
  bool zero_copy_read = false;   // backend answers map_read(): READ uses its memory
  bool map_cpu_safe = false;     // ... and that memory is always safe to read in user space
  WriteGate gate;
  PrState pr;
  std::atomic<bool> pr_reserved{false};  // pr.type != 0; stored under pr.mu (release), read acquire
  // Bumped (release) under pr.mu by every PERSISTENT RESERVE OUT, before it
  // changes anything: a nexus's cached verdict (Nexus::pr_cache) for this
  // LUN holds while the epoch it was computed at is current.
  std::atomic<uint64_t> pr_epoch{0};
  // The nexus holding a RESERVE(6/10) reservation (SPC-2), or null. Set and
  // cleared under pr.mu (RESERVE, RELEASE); also cleared by nexus loss and
  // resets. Read acquire on the data path.
  std::atomic<Nexus*> spc2_holder{nullptr};
  Target::Impl* im = nullptr;  // the owner, for resuming parked tasks inline
  bool write_protected() const { return read_only || swp.load(std::memory_order_relaxed); }
};

struct UaEntry {
  uint64_t lun;
  Asc code;
};

}  // namespace sgv::scsi

// Nexus lives in sgv::scsi (declared in task.hpp), defined here.
namespace sgv::scsi {
class Nexus {
 public:
  std::string initiator;
  uint32_t rel_port = 1;
  // True while ua may be non-empty. Set (release) after pushing under ua_mu;
  // read (acquire) on every command's fast path; cleared under ua_mu when the
  // queue drains. A stale "true" only costs a lock; a stale "false" cannot
  // happen for a UA queued before the command arrived because queueing
  // happens-before the management call returns.
  std::atomic<bool> ua_pending{false};
  std::mutex ua_mu;
  std::vector<UaEntry> ua;  // guarded by ua_mu; oldest first
  // What this nexus is under each reserved LUN's persistent reservation,
  // so a cluster's permanent reservation costs the data path no lock
  // (pr.cpp, pr_conflicts): direct-mapped by LUN id, one word each:
  // epoch << 20 | lun id << 6 | holder << 5 | registered << 4 | type.
  // Relaxed: a word is read and written whole, and only compared with the
  // LUN's epoch.
  static constexpr unsigned kPrCache = 4;
  std::atomic<uint64_t> pr_cache[kPrCache] = {};
};
}  // namespace sgv::scsi

namespace sgv::scsi {

// Per-command private state, laid over Task::core_scratch.
struct Scratch {
  backend::Io io;
  uint64_t lba;
  uint64_t nblocks;        // blocks the command covers
  uint64_t ws_next;        // WRITE SAME: next LBA to write
  uint64_t ws_left;        // WRITE SAME: blocks left
  uint8_t flags;
  uint8_t ws_per_block;    // WRITE SAME: segments describing one block
  uint8_t ws_busy;         // WRITE SAME: inside the submit loop
  uint8_t ws_again;        // WRITE SAME: completion arrived inline
  uint8_t kind;            // which multi-step command drives the Io chain
  uint32_t step;           // UNMAP: next descriptor
  uint32_t nsteps;         // UNMAP: descriptors
  uint8_t gate;            // GateState: where the task stands with its LUN's WriteGate
  uint8_t gate_slot;       // WriteGate::slots index it counted itself in
  Task* gate_next;         // WriteGate park list link
};
enum GateState : uint8_t {
  kGateNone = 0,
  kGateCounted = 1,  // a write in flight: finish() uncounts it
  kGateParked = 2,   // a write on the park list; resume re-runs its exec
  kGateOwner = 3,    // a CAW that holds the gate, writes drained
  kGateParkedCaw = 4,  // a CAW on the park list, resumed in its turn holding the gate
};
// The rest of core_scratch after Scratch: WRITE SAME's ring of segments that
// repeat the one data-out block, so a chunk of blocks goes out in one Io.
constexpr size_t kRingOff = (sizeof(Scratch) + 15) & ~size_t(15);
constexpr unsigned kScratchRing = unsigned((sizeof(Task::core_scratch) - kRingOff) / sizeof(Seg));
static_assert(kScratchRing >= 8);
inline Scratch& scratch(Task& t) { return *reinterpret_cast<Scratch*>(t.core_scratch); }
inline Seg* scratch_ring(Task& t) { return reinterpret_cast<Seg*>(reinterpret_cast<char*>(t.core_scratch) + kRingOff); }

enum Flag : uint8_t {
  kNoLunOk = 1,    // runs on a LUN that does not exist (INQUIRY, REPORT LUNS, REQUEST SENSE)
  kNoUa = 2,       // neither reports nor consumes a unit attention
  kWrites = 4,     // modifies the medium: refused on read-only LUNs
  kPrOk = 8,       // allowed whatever persistent reservation another nexus holds
  kPrRead = 16,    // reads only: allowed under a write-exclusive reservation
  kResvOk = 32,    // allowed while another nexus holds a RESERVE(6/10) reservation
};

using PrepFn = bool (*)(Target::Impl&, Task&);
using ExecFn = void (*)(Target::Impl&, Task&);

struct OpRow {
  uint8_t opcode;
  uint16_t sa;           // service action, or 0xffff when the opcode has none
  const char* name;
  Dir dir;
  uint8_t cdb_len;
  uint8_t flags;
  uint8_t usage[16];     // REPORT SUPPORTED OPERATION CODES CDB usage data
  PrepFn prep;
  ExecFn exec;
};

// The table (ops.cpp) and its lookup: row index or -1.
const OpRow* op_table(unsigned* n);
int find_op(uint8_t opcode, uint16_t sa);
inline bool op_has_sa(uint8_t opcode) {
  return opcode == 0x9e || opcode == 0xa3 || opcode == 0x9f || opcode == 0xa4 || opcode == 0x5e || opcode == 0x5f;
}

struct Target::Impl {
  std::string name;
  TargetLimits limits;
  std::unique_ptr<std::atomic<Lun*>[]> lun_map;  // index = LUN id; store release / load acquire
  mutable std::mutex mu;                         // guards luns, nexuses
  std::vector<std::unique_ptr<Lun>> luns;        // guarded by mu; never shrinks
  std::vector<Nexus*> nexuses;                   // guarded by mu

  Lun* lun(uint64_t id) const { return id < kMaxLuns ? lun_map[id].load(std::memory_order_acquire) : nullptr; }
  void queue_ua(Nexus* n, uint64_t lun, Asc code);  // takes n->ua_mu
  void queue_ua_others(Nexus* from, uint64_t lun, Asc code);  // every nexus but from; takes mu
  bool take_ua(Nexus* n, uint64_t lun, Asc* out);    // slow path of prepare
  void clear_ua(Nexus* n, Asc code);                 // every LUN's `code` on n
  void lun_ids(std::vector<uint64_t>& out) const;
};

// WriteGate (gate.cpp). A write calls gate_enter() right before it changes
// the medium: true, go on (finish() uncounts it); false, parked, the task's
// exec runs again on resume (counted in flight already: gate_enter() then
// returns true). A CAW calls caw_acquire(): true, it holds the gate; false,
// parked (resumed holding the gate). It calls caw_release() when done,
// before finish(); the release hands the gate on in arrival order.
bool gate_enter(Task& t);
void gate_exit(Task& t);
bool caw_acquire(Task& t);
void caw_release(Task& t);
void resume_task(Target::Impl& im, Task& t);  // Target::resume

// Largest COMPARE AND WRITE in blocks: the VPD B0 limit, and both halves of
// the data-out within the transfer limit.
inline uint32_t max_compare_write_blocks(const Target::Impl& im, const Lun& l) {
  uint32_t by_xfer = (im.limits.max_xfer_bytes >> l.bs_shift) / 2;
  return by_xfer < kMaxCompareWriteBlocks ? by_xfer : kMaxCompareWriteBlocks;
}

// --- helpers shared by the command handlers (sense.cpp)
bool check(Task& t, uint8_t key, Asc a);                       // CHECK CONDITION; returns true
bool check_info(Task& t, uint8_t key, Asc a, uint64_t info);   // with INFORMATION field
bool invalid_cdb(Task& t, uint16_t byte, int bit = -1);        // 5/24/00 with field pointer
bool invalid_param(Task& t, uint16_t byte, int bit = -1);      // 5/26/00 with field pointer
unsigned build_sense(uint8_t* out, bool desc, uint8_t key, Asc a);  // for REQUEST SENSE data
void complete_io_error(Task& t, int err, bool is_write);       // backend -errno to sense
void finish(Task& t);                                          // calls t.done
// Copies a response into the task's data-in segments, truncated to both the
// buffer and data_len; sets xfer_len.
void put_data(Task& t, const void* src, uint32_t len);
// Copies [off, off+n) of the data-out buffer to dst; returns bytes copied.
uint32_t get_data(const Task& t, uint32_t off, void* dst, uint32_t n);
// Sets a data phase (or none when len is 0); returns false ("not complete").
inline bool need_data(Task& t, Dir d, uint32_t len) {
  t.dir = len ? d : Dir::none;
  t.data_len = len;
  return false;
}
inline bool good(Task& t) {
  t.status = status::good;
  return true;
}
// Handlers of spc.cpp and sbc.cpp the table refers to.
#define SGV_OP(n) bool prep_##n(Target::Impl&, Task&); void exec_##n(Target::Impl&, Task&);
SGV_OP(tur) SGV_OP(request_sense) SGV_OP(inquiry) SGV_OP(report_luns) SGV_OP(mode_sense)
SGV_OP(mode_select) SGV_OP(start_stop) SGV_OP(prevent_allow) SGV_OP(rsoc)
SGV_OP(read_capacity10) SGV_OP(read_capacity16) SGV_OP(read) SGV_OP(write) SGV_OP(verify)
SGV_OP(sync_cache) SGV_OP(write_same) SGV_OP(unmap) SGV_OP(compare_write) SGV_OP(pr_in) SGV_OP(pr_out)
SGV_OP(reserve) SGV_OP(release) SGV_OP(get_lba_status) SGV_OP(read_defect) SGV_OP(orwrite)
#undef SGV_OP
bool prep_prefetch(Target::Impl&, Task&);
void exec_none(Target::Impl&, Task&);  // for commands prepare() always completes
// Whether a persistent reservation held elsewhere stops this command (pr.cpp;
// called only while Lun::pr_reserved is set). flags: the command's row.
bool pr_conflicts(Lun& l, const Task& t, uint8_t flags);
// Whether any reservation (RESERVE(6/10) of another nexus, or a persistent
// one) stops this command; prepare() and execute() both ask. Without a
// reservation: two acquire loads, which pair with the release stores of
// RESERVE/RELEASE and pr.cpp's set_reservation().
inline bool reservation_conflict(Lun& l, const Task& t, uint8_t flags) {
  Nexus* h = l.spc2_holder.load(std::memory_order_acquire);
  if (h && h != t.nexus && !(flags & kResvOk)) return true;
  return l.pr_reserved.load(std::memory_order_acquire) && pr_conflicts(l, t, flags);
}
// Ends the RESERVE(6/10) reservation of nexus n (nullptr: whoever holds it).
void spc2_release_nexus(Lun& l, Nexus* n);

inline Lun* lun_of(Task& t) { return static_cast<Lun*>(t.lun_obj); }

// SAM LUN (wire value) to the LUN id we store, or kMaxLuns if not addressable.
uint64_t decode_lun(uint64_t wire);
uint64_t encode_lun(uint64_t id);

}  // namespace sgv::scsi
