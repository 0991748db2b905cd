// sgvbench/options.hpp - what one sgvbench run is asked to do, and the
// command-line parser that fills it (kept apart from main so it is testable).
#pragma once

#include <cstdint>
#include <string>

namespace sgvbench {

enum class Pattern { seq, rand };

struct Options {
  std::string url;                 // iscsi://127.0.0.1:3260/<iqn>/<lun>
  unsigned sessions = 1;
  unsigned threads = 1;            // poll loops; sessions are spread over them
  unsigned qd = 32;                // commands in flight per session
  uint32_t bs = 4096;              // bytes per I/O
  Pattern pattern = Pattern::rand;
  unsigned read_pct = 100;         // share of reads, 0..100
  double time_s = 10;              // 0: no time bound (then ios must be set)
  uint64_t ios = 0;                // 0: no count bound
  uint64_t size = 0;               // bytes of the LUN to use; 0: all
  bool verify = false;
  bool header_digest = false;      // negotiate CRC32C header digests
  bool json = false;
  bool cork = true;                 // TCP_CORK around each batch of sends
  int progress = -1;               // -1: on when the run is longer than 3 s
  std::string initiator = "iqn.2026-11.io.sgv:sgvbench";
  std::string rw = "randread";     // as given, for the report
};

// Parses "4k", "1m", "512", "1g" (binary units). Returns false on junk.
bool parse_size(const std::string& s, uint64_t* out);

// Fills o from argv. On error or --help returns false with a message in *err
// (empty for --help, which prints usage).
bool parse_args(int argc, char** argv, Options* o, std::string* err);

// True for the portals sgvbench will connect to: 127.0.0.1 and ::1 only.
bool loopback_portal(const std::string& portal);

const char* usage();

}  // namespace sgvbench
