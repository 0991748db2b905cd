// scsi/target.hpp - the SCSI target core's face to the transport: a set of
// LUNs behind one target name, I_T nexus state, and the two calls of the
// command flow described in scsi/task.hpp.
//
// Concurrency: prepare()/execute() are called concurrently from several
// reactor threads (one session's commands always come from one thread).
// Task completion (task.done) runs on the thread that called execute().
// Management calls (add_lun, resets) may come from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/task.hpp"

namespace sgv::scsi {

struct LunConfig {
  uint64_t id = 0;                         // LUN number (0..16383, flat/peripheral addressing)
  std::unique_ptr<backend::Backend> backend;
  uint32_t block_size = 512;               // 512 or 4096
  std::string serial;                      // VPD 0x80; derived from target+id if empty
  std::string product = "sgv";             // INQUIRY product identification (<= 16 chars)
  bool read_only = false;
};

struct TargetLimits {
  uint32_t max_xfer_bytes = 4u << 20;      // VPD B0 MAXIMUM TRANSFER LENGTH, in bytes
  uint32_t opt_xfer_bytes = 1u << 20;      // VPD B0 OPTIMAL TRANSFER LENGTH, in bytes
};

class Target {
 public:
  Target(std::string name, TargetLimits limits = {});
  ~Target();
  Target(const Target&) = delete;
  Target& operator=(const Target&) = delete;

  const std::string& name() const;
  // 0, -EEXIST (id taken) or -EINVAL (bad block size, backend size not a multiple).
  int add_lun(LunConfig cfg);
  std::vector<uint64_t> lun_ids() const;
  // Whether the LUN as sent on the wire (8-byte SAM LUN) addresses one of ours.
  bool has_lun(uint64_t wire_lun) const;

  // One per I_T nexus (iSCSI session). A new nexus starts with a POWER ON
  // RESET unit attention on every LUN, as SAM requires.
  Nexus* open_nexus(std::string_view initiator_port_name);
  void close_nexus(Nexus* n);

  // Step 2 of the flow: returns true if the task is already complete
  // (status/sense set, done NOT called), false if the data phase described by
  // task.dir/task.data_len must happen and execute() be called.
  bool prepare(Task& task);
  // Step 4: runs the command; calls task.done exactly once.
  void execute(Task& task);
  // Continues a command the core parked, after it called task.post_resume;
  // on the thread that called execute() for it.
  void resume(Task& task);

  // Task management, after the transport has quiesced the affected tasks:
  // set the unit attentions SAM requires, for every nexus (the one that
  // asked included, SAM-5 6.3.3), and end RESERVE(6/10) reservations.
  void lun_reset(uint64_t lun);
  void target_reset();
  // Informs the core that tasks of this nexus were aborted by another nexus
  // (CLEAR TASK SET / ABORT TASK SET from elsewhere): COMMANDS CLEARED BY
  // ANOTHER INITIATOR unit attention when the control mode page asks for it.
  void tasks_cleared_by_other(Nexus* victim, uint64_t lun);

  // Shutdown: flush every LUN's backend; first error or 0.
  int flush_all();

  // Every LUN's reservations as text for the admin socket, any thread: one
  // "lun=N generation=G type=T holder=PORT reserve6=PORT registrations=K"
  // line per LUN (type none/WE/EA/WE_RO/EA_RO/WE_AR/EA_AR; holder and
  // reserve6 "-" when nobody), then "lun=N registrant=PORT key=0x..." per
  // registration.
  std::string reservations_dump() const;

  struct Impl;
 private:
  std::unique_ptr<Impl> impl_;
};

}  // namespace sgv::scsi
