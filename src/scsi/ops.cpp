// scsi/ops.cpp - the command set as a table: one row per (opcode, service
// action) with its name, data direction, CDB length, the CDB usage data that
// REPORT SUPPORTED OPERATION CODES returns, flags and handlers. prepare()
// dispatches through it; RSOC reports from it, so the two cannot disagree.
#include <array>

#include "scsi/core.hpp"

namespace sgv::scsi {

void exec_none(Target::Impl&, Task& t) { finish(t); }

namespace {

constexpr uint16_t kNoSa = 0xffff;
constexpr uint8_t kCtl = 0x07;  // control byte: NACA, obsolete LINK, FLAG bits examined

// Usage masks: byte 0 is the opcode itself, then the bits the decoder reads.
const OpRow kRows[] = {
    {0x00, kNoSa, "TEST UNIT READY", Dir::none, 6, kPrOk, {0x00, 0, 0, 0, 0, kCtl}, prep_tur, exec_none},
    {0x03, kNoSa, "REQUEST SENSE", Dir::in, 6, kNoLunOk | kNoUa | kPrOk | kResvOk, {0x03, 0x01, 0, 0, 0xff, kCtl}, prep_request_sense, exec_request_sense},
    {0x08, kNoSa, "READ(6)", Dir::in, 6, kPrRead, {0x08, 0x1f, 0xff, 0xff, 0xff, kCtl}, prep_read, exec_read},
    {0x0a, kNoSa, "WRITE(6)", Dir::out, 6, kWrites, {0x0a, 0x1f, 0xff, 0xff, 0xff, kCtl}, prep_write, exec_write},
    {0x12, kNoSa, "INQUIRY", Dir::in, 6, kNoLunOk | kNoUa | kPrOk | kResvOk, {0x12, 0x01, 0xff, 0xff, 0xff, kCtl}, prep_inquiry, exec_inquiry},
    {0x15, kNoSa, "MODE SELECT(6)", Dir::out, 6, 0, {0x15, 0x11, 0, 0, 0xff, kCtl}, prep_mode_select, exec_mode_select},
    {0x16, kNoSa, "RESERVE(6)", Dir::none, 6, kPrOk, {0x16, 0, 0, 0, 0, kCtl}, prep_reserve, exec_none},
    {0x17, kNoSa, "RELEASE(6)", Dir::none, 6, kPrOk | kResvOk, {0x17, 0, 0, 0, 0, kCtl}, prep_release, exec_none},
    {0x1a, kNoSa, "MODE SENSE(6)", Dir::in, 6, kPrRead, {0x1a, 0x08, 0xff, 0xff, 0xff, kCtl}, prep_mode_sense, exec_mode_sense},
    {0x1b, kNoSa, "START STOP UNIT", Dir::none, 6, 0, {0x1b, 0x01, 0, 0x0f, 0xf7, kCtl}, prep_start_stop, exec_none},
    {0x1e, kNoSa, "PREVENT ALLOW MEDIUM REMOVAL", Dir::none, 6, 0, {0x1e, 0, 0, 0, 0x03, kCtl}, prep_prevent_allow, exec_none},
    {0x25, kNoSa, "READ CAPACITY(10)", Dir::in, 10, kPrOk, {0x25, 0, 0xff, 0xff, 0xff, 0xff, 0, 0, 0x01, kCtl}, prep_read_capacity10, exec_read_capacity10},
    {0x28, kNoSa, "READ(10)", Dir::in, 10, kPrRead, {0x28, 0xfa, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_read, exec_read},
    {0x2a, kNoSa, "WRITE(10)", Dir::out, 10, kWrites, {0x2a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_write, exec_write},
    {0x2e, kNoSa, "WRITE AND VERIFY(10)", Dir::out, 10, kWrites, {0x2e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_write, exec_write},
    {0x2f, kNoSa, "VERIFY(10)", Dir::out, 10, kPrRead, {0x2f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_verify, exec_verify},
    {0x34, kNoSa, "PRE-FETCH(10)", Dir::none, 10, kPrRead, {0x34, 0x02, 0xff, 0xff, 0xff, 0xff, 0x3f, 0xff, 0xff, kCtl}, prep_prefetch, exec_none},
    {0x35, kNoSa, "SYNCHRONIZE CACHE(10)", Dir::none, 10, 0, {0x35, 0x02, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_sync_cache, exec_sync_cache},
    {0x37, kNoSa, "READ DEFECT DATA(10)", Dir::in, 10, kPrRead, {0x37, 0, 0x1f, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_read_defect, exec_read_defect},
    {0x41, kNoSa, "WRITE SAME(10)", Dir::out, 10, kWrites, {0x41, 0xf8, 0xff, 0xff, 0xff, 0xff, 0, 0xff, 0xff, kCtl}, prep_write_same, exec_write_same},
    {0x42, kNoSa, "UNMAP", Dir::out, 10, kWrites, {0x42, 0x01, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_unmap, exec_unmap},
    {0x55, kNoSa, "MODE SELECT(10)", Dir::out, 10, 0, {0x55, 0x11, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_mode_select, exec_mode_select},
    {0x56, kNoSa, "RESERVE(10)", Dir::none, 10, kPrOk, {0x56, 0, 0xff, 0, 0, 0, 0, 0, 0, kCtl}, prep_reserve, exec_none},
    {0x57, kNoSa, "RELEASE(10)", Dir::none, 10, kPrOk | kResvOk, {0x57, 0, 0xff, 0, 0, 0, 0, 0, 0, kCtl}, prep_release, exec_none},
    {0x5a, kNoSa, "MODE SENSE(10)", Dir::in, 10, kPrRead, {0x5a, 0x18, 0xff, 0xff, 0, 0, 0, 0xff, 0xff, kCtl}, prep_mode_sense, exec_mode_sense},
    {0x5e, 0x00, "PERSISTENT RESERVE IN", Dir::in, 10, kPrOk, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_pr_in, exec_pr_in},
    {0x5e, 0x01, "PERSISTENT RESERVE IN", Dir::in, 10, kPrOk, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_pr_in, exec_pr_in},
    {0x5e, 0x02, "PERSISTENT RESERVE IN", Dir::in, 10, kPrOk, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_pr_in, exec_pr_in},
    {0x5e, 0x03, "PERSISTENT RESERVE IN", Dir::in, 10, kPrOk, {0x5e, 0x1f, 0, 0, 0, 0, 0, 0xff, 0xff, kCtl}, prep_pr_in, exec_pr_in},
    {0x5f, 0x00, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x01, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x02, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x03, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x04, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x05, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x5f, 0x06, "PERSISTENT RESERVE OUT", Dir::out, 10, kPrOk, {0x5f, 0x1f, 0xff, 0, 0, 0xff, 0xff, 0xff, 0xff, kCtl}, prep_pr_out, exec_pr_out},
    {0x88, kNoSa, "READ(16)", Dir::in, 16, kPrRead, {0x88, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_read, exec_read},
    {0x89, kNoSa, "COMPARE AND WRITE", Dir::out, 16, kWrites, {0x89, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0xff, 0, kCtl}, prep_compare_write, exec_compare_write},
    {0x8a, kNoSa, "WRITE(16)", Dir::out, 16, kWrites, {0x8a, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_write, exec_write},
    {0x8b, kNoSa, "ORWRITE(16)", Dir::out, 16, kWrites, {0x8b, 0xf8, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, kCtl}, prep_orwrite, exec_orwrite},
    {0x8e, kNoSa, "WRITE AND VERIFY(16)", Dir::out, 16, kWrites, {0x8e, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_write, exec_write},
    {0x8f, kNoSa, "VERIFY(16)", Dir::out, 16, kPrRead, {0x8f, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_verify, exec_verify},
    {0x90, kNoSa, "PRE-FETCH(16)", Dir::none, 16, kPrRead, {0x90, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x3f, kCtl}, prep_prefetch, exec_none},
    {0x91, kNoSa, "SYNCHRONIZE CACHE(16)", Dir::none, 16, 0, {0x91, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_sync_cache, exec_sync_cache},
    {0x93, kNoSa, "WRITE SAME(16)", Dir::out, 16, kWrites, {0x93, 0xf9, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_write_same, exec_write_same},
    {0x9e, 0x10, "READ CAPACITY(16)", Dir::in, 16, kPrOk, {0x9e, 0x10, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_read_capacity16, exec_read_capacity16},
    {0x9e, 0x12, "GET LBA STATUS", Dir::in, 16, kPrRead, {0x9e, 0x12, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_get_lba_status, exec_get_lba_status},
    {0xa0, kNoSa, "REPORT LUNS", Dir::in, 12, kNoLunOk | kNoUa | kPrOk | kResvOk, {0xa0, 0, 0xff, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_report_luns, exec_report_luns},
    {0xa3, 0x0c, "REPORT SUPPORTED OPERATION CODES", Dir::in, 12, kPrOk | kResvOk, {0xa3, 0x0c, 0x87, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_rsoc, exec_rsoc},
    {0xa8, kNoSa, "READ(12)", Dir::in, 12, kPrRead, {0xa8, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_read, exec_read},
    {0xaa, kNoSa, "WRITE(12)", Dir::out, 12, kWrites, {0xaa, 0xfa, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_write, exec_write},
    {0xae, kNoSa, "WRITE AND VERIFY(12)", Dir::out, 12, kWrites, {0xae, 0xf2, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_write, exec_write},
    {0xaf, kNoSa, "VERIFY(12)", Dir::out, 12, kPrRead, {0xaf, 0xf6, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_verify, exec_verify},
    {0xb7, kNoSa, "READ DEFECT DATA(12)", Dir::in, 12, kPrRead, {0xb7, 0x1f, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0, kCtl}, prep_read_defect, exec_read_defect},
};
constexpr unsigned kNumRows = sizeof(kRows) / sizeof(kRows[0]);
static_assert(kNumRows < 255);

// opcode -> first row + 1 (0: unsupported). Rows of one opcode are adjacent.
struct Index {
  std::array<uint8_t, 256> first{};
  Index() {
    for (unsigned i = kNumRows; i-- > 0;) first[kRows[i].opcode] = uint8_t(i + 1);
  }
};
const Index kIndex;

}  // namespace

const OpRow* op_table(unsigned* n) {
  *n = kNumRows;
  return kRows;
}

// sa: the CDB's service action, 0xffff for opcodes without one, 0xfffe for
// "any row of this opcode".
int find_op(uint8_t opcode, uint16_t sa) {
  unsigned i = kIndex.first[opcode];
  if (!i) return -1;
  for (--i; i < kNumRows && kRows[i].opcode == opcode; ++i)
    if (sa == 0xfffe || kRows[i].sa == sa) return int(i);
  return -1;
}

}  // namespace sgv::scsi
