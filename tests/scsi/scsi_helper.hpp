// tests/scsi/scsi_helper.hpp - drives Target the way a transport does:
// builds a Task from a CDB, runs prepare/execute with a buffer, and exposes
// status, sense key/ASC/ASCQ and the data for assertions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

#include "scsi/target.hpp"

namespace sgv::test {

struct Result {
  uint8_t status = 0;
  uint8_t key = 0, asc = 0, ascq = 0;
  std::vector<uint8_t> sense;
  std::vector<uint8_t> data;  // data-in, xfer_len bytes
  uint32_t data_len = 0;      // what prepare() asked for
  uint32_t xfer_len = 0;      // what the command produced (Dir::in)
  scsi::Dir dir = scsi::Dir::none;
  bool completed_in_prepare = false;
  bool good() const { return status == 0; }
};

class Harness {
 public:
  // A target with one LUN 0 on a RAM backend of the given size.
  explicit Harness(uint64_t size = 8u << 20, uint32_t bs = 512, bool read_only = false);
  Harness(std::unique_ptr<backend::Backend> be, uint32_t bs, bool read_only = false);
  ~Harness();

  scsi::Target& target() { return *target_; }
  scsi::Nexus* nexus() { return nexus_; }
  // Runs one command. out: data-out bytes; edtl defaults to the CDB's need.
  Result run(std::initializer_list<uint8_t> cdb, const std::vector<uint8_t>& out = {}, int64_t edtl = -1,
             uint64_t lun = 0, scsi::Nexus* nexus = nullptr);
  Result run_cdb(const uint8_t* cdb, unsigned len, const std::vector<uint8_t>& out, int64_t edtl, uint64_t lun,
                 scsi::Nexus* nexus);
  // Clears the POWER ON RESET unit attention so tests start clean.
  void clear_ua(scsi::Nexus* n = nullptr);

 private:
  std::unique_ptr<scsi::Target> target_;
  scsi::Nexus* nexus_ = nullptr;
};

uint64_t wire_lun(uint64_t id);
std::vector<uint8_t> cdb10(uint8_t op, uint64_t lba, uint32_t n, uint8_t flags = 0);
std::vector<uint8_t> cdb16(uint8_t op, uint64_t lba, uint32_t n, uint8_t flags = 0);

}  // namespace sgv::test
