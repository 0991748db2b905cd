// server/config.hpp - everything sgvd is told: portals, targets, LUNs,
// memory limits, iSCSI limits. Built from command-line flags or a TOML file
// (server/config.cpp); consumed by server::Server. Plain data, no behaviour.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace sgv::server {

struct PortalSpec {
  std::string host = "127.0.0.1";   // IPv4 or IPv6 literal ("::1"), or "0.0.0.0"/"::"
  uint16_t port = 3260;
};

struct LunSpec {
  enum class Kind { ram, file, null };
  uint64_t id = 0;
  Kind kind = Kind::ram;
  std::string path;                 // file: file or block device
  uint64_t size_bytes = 1ull << 30; // ram/null: size; file: 0 = file's size
  uint32_t block_size = 512;
  bool direct = false;              // file: O_DIRECT
  bool read_only = false;
  uint64_t mem_limit = 0;           // LUN budget (in-use data buffers), 0 = inherit default
  std::string serial;               // empty: derived
};

// CHAP secrets (RFC 7143 §12.1.3). user/secret: the initiator must prove
// it knows them (one-way CHAP; set = CHAP required). mutual_user /
// mutual_secret: the target's own name and secret when the initiator asks
// it to authenticate too (mutual CHAP; unset = such logins fail).
struct ChapSpec {
  std::string user, secret;
  std::string mutual_user, mutual_secret;
  bool enabled() const { return !user.empty(); }
};

struct TargetSpec {
  std::string name;                         // iqn.
  std::string alias;
  std::vector<LunSpec> luns;
  std::vector<std::string> allowed_initiators;  // empty: all
  ChapSpec chap;                            // empty: no authentication
};

struct IscsiLimits {
  uint32_t max_recv_data_segment_length = 262144;  // what the target declares
  uint32_t max_burst_length = 1u << 20;
  uint32_t first_burst_length = 65536;
  uint32_t max_outstanding_r2t = 4;
  bool immediate_data = true;
  bool initial_r2t = false;
  bool allow_header_digest = true;   // offer CRC32C
  bool allow_data_digest = true;
  uint32_t queue_depth = 128;        // commands per session (CmdSN window)
  uint32_t max_xfer_bytes = 4u << 20; // largest SCSI transfer accepted
  uint32_t nop_interval_s = 30;      // target pings idle initiators; 0 = never
  uint32_t nop_timeout_s = 30;       // drop the connection when a ping goes unanswered
};

struct Config {
  std::vector<PortalSpec> portals;  // empty: 127.0.0.1:3260
  std::vector<TargetSpec> targets;  // empty: iqn.2026-11.io.sgv:default with one 1 GiB RAM LUN
  unsigned reactors = 0;            // 0: one per online CPU
  uint64_t mem_limit = 0;           // global budget for data buffers; 0: RAM/4
  uint64_t lun_mem_limit = 0;       // default per-LUN budget; 0: 2/5 of mem_limit
  uint64_t session_mem_limit = 0;   // per-session budget; 0: max_xfer_bytes * queue_depth / 4
  IscsiLimits iscsi;
  ChapSpec discovery_chap;          // CHAP for discovery sessions; empty: none
  std::string admin_socket;         // unix socket for sgvctl; empty: none
  std::string log_level = "info";   // error, warn, info, debug
};

// Fills the defaults sgvd runs with when given no arguments.
void apply_defaults(Config& c);

}  // namespace sgv::server
