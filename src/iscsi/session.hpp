// iscsi/session.hpp - what one iSCSI session (one I_T nexus) agreed on at
// login and the state it keeps in full feature phase: the operational
// parameters, the CmdSN window, the SCSI nexus and the session's memory
// budget. sgvd runs one connection per session (MaxConnections=1), so the
// session lives inside its connection; the server keeps the registry that
// finds an old session by ISID + InitiatorName for reinstatement.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "iscsi/login.hpp"
#include "sgv/budget.hpp"

namespace sgv::scsi {
class Target;
class Nexus;
}  // namespace sgv::scsi
namespace sgv {
class Pool;
}

namespace sgv::iscsi {

// The target's side of negotiation: what sgvd offers and accepts.
struct Limits {
  uint32_t max_recv_data_segment_length = 262144;
  uint32_t max_burst_length = 1u << 20;
  uint32_t first_burst_length = 65536;
  uint32_t max_outstanding_r2t = 4;
  bool immediate_data = true;
  bool initial_r2t = false;
  bool allow_header_digest = true;
  bool allow_data_digest = true;
  uint32_t queue_depth = 128;
  uint32_t max_xfer_bytes = 4u << 20;
  uint32_t nop_interval_s = 30;
  uint32_t nop_timeout_s = 30;
  uint64_t session_mem_limit = 0;  // 0: unlimited below the LUN budget
};

// The data path's compact copy of what login negotiated (SessionParams and
// ConnParams of params.hpp, RFC 7143 section 13), fixed in full feature phase.
struct Params {
  uint32_t max_recv_dsl_target = 8192;     // what we accept (declared by us)
  uint32_t max_recv_dsl_initiator = 8192;  // what we may send (declared by the initiator)
  uint32_t max_burst = 262144;
  uint32_t first_burst = 65536;
  uint32_t max_outstanding_r2t = 1;
  bool initial_r2t = true;
  bool immediate_data = true;
  bool header_digest = false;
  bool data_digest = false;
  bool discovery = false;
};

// The server's side of a connection: target lookup, discovery, reinstatement.
// Called on the connection's reactor thread; what the target_* calls return
// must stay valid while the server runs.
class Host {
 public:
  virtual ~Host() = default;
  // Login and discovery (the connection serves them as login.hpp's
  // TargetDirectory): does the target exist, may this initiator see it,
  // its alias, and the listing SendTargets reports (targets with portals).
  virtual bool target_exists(std::string_view name) = 0;
  virtual bool target_allowed(std::string_view name, std::string_view initiator) = 0;
  virtual std::string_view target_alias(std::string_view name) = 0;
  virtual size_t target_count() = 0;
  virtual TargetEntry target_entry(size_t i) = 0;
  // CHAP credentials of a target ("" = discovery); false: none configured.
  virtual bool target_chap(std::string_view /*name*/, ChapCredentials& /*out*/) { return false; }
  // nullptr if no such target or the initiator is not allowed.
  virtual scsi::Target* find_target(std::string_view name, std::string_view initiator) = 0;
  // The budget of the LUN a command addresses (wire LUN), for the session's
  // per-LUN child budget; nullptr: none (the session budget alone is charged).
  virtual Budget* lun_budget(const scsi::Target* /*t*/, uint64_t /*lun*/) { return nullptr; }
  virtual Pool* pool() = 0;
  virtual const Limits& limits() = 0;
  // Session registry: a new session with the same ISID+InitiatorName
  // replaces the old one (whose connection is closed). Returns the TSIH.
  virtual uint16_t session_up(const void* conn, std::string_view initiator, uint64_t isid, std::string_view target) = 0;
  virtual void session_down(const void* conn) = 0;
};

// Per-reactor counters: written by that reactor only (relaxed), read by
// stats_dump() from any thread (relaxed; a snapshot, not a transaction).
struct Counters {
  std::atomic<uint64_t> pdus_in{0}, pdus_out{0}, cmds{0}, reads{0}, writes{0};
  std::atomic<uint64_t> bytes_in{0}, bytes_out{0}, r2ts{0}, rejects{0}, nops{0};
  std::atomic<uint64_t> logins{0}, logouts{0}, tmfs{0}, aborted{0}, dropped_cmdsn{0};
  std::atomic<uint64_t> mem_waits{0}, conns_open{0}, conns_total{0}, digest_errors{0};
  void add(std::atomic<uint64_t>& c, uint64_t n = 1) { c.store(c.load(std::memory_order_relaxed) + n, std::memory_order_relaxed); }
};

}  // namespace sgv::iscsi
