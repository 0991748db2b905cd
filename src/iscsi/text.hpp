// iscsi/text.hpp - iSCSI text key=value\0 data (RFC 7143 §6, §11.10, §11.12):
// parsing with the RFC's limits, building into a bounded buffer, the
// Continue (C) bit accumulation of multi-PDU text, and cutting a long
// response into PDUs of at most the peer's MaxRecvDataSegmentLength.
//
// Sans-I/O, used by login, discovery and full-feature Text exchanges (slow
// path: none of this is per command). Buffers are sized once at
// construction; parsing yields string_views into the caller's bytes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

namespace sgv::iscsi {

constexpr size_t kMaxKeyLen = 63;     // §6.1: key names up to 63 bytes
constexpr size_t kMaxValueLen = 255;  // §6.1: values up to 255 bytes ...
constexpr size_t kMaxLongValueLen = 8192;  // ... except CHAP_C/CHAP_R/CHAP_N style values
constexpr size_t kMaxTextPairs = 128;
constexpr size_t kDefaultTextLimit = 65536;  // a whole exchange, all PDUs together

enum class TextStatus : uint8_t {
  ok,
  malformed,       // no '=' or an empty key
  bad_key_char,    // outside [A-Za-z0-9.-+@_]
  key_too_long,
  value_too_long,
  duplicate_key,   // §6.2: a key offered twice in one exchange is a protocol error
  too_many_pairs,
  too_long,        // exchange exceeds the accumulator's bound
};
const char* to_string(TextStatus s);

struct KeyValue {
  std::string_view key;
  std::string_view value;
};

// Parsed pairs: views into the parsed bytes (which must outlive it).
struct TextPairs {
  KeyValue kv[kMaxTextPairs];
  size_t n = 0;
  const KeyValue* find(std::string_view key) const;
  const KeyValue* begin() const { return kv; }
  const KeyValue* end() const { return kv + n; }
};

// The longest value the key may carry.
size_t value_limit(std::string_view key);

// Whether `item` is one of the values of a list-valued key ("CHAP,None").
bool list_has(std::string_view list, std::string_view item);

// Parses a complete text (all continuation PDUs joined). Empty strings
// between NULs (padding some initiators send) are skipped; a last pair
// without its NUL is accepted. On error `out` holds the pairs before it.
TextStatus parse_text(std::span<const uint8_t> data, TextPairs& out);
inline TextStatus parse_text(std::string_view s, TextPairs& out) {
  return parse_text({reinterpret_cast<const uint8_t*>(s.data()), s.size()}, out);
}

// Joins the data segments of a multi-PDU text (C=1 ... C=0) into one
// bounded buffer. Keys and values may be split anywhere between PDUs.
class TextAccumulator {
 public:
  explicit TextAccumulator(size_t limit = kDefaultTextLimit) : limit_(limit) { buf_.reserve(limit); }
  enum class Result : uint8_t { more, complete, overflow };
  // Adds one PDU's data segment; cont is its C bit. After `complete`, data()
  // holds the whole text until reset(). After `overflow` the exchange is
  // dead: reset() before the next one.
  Result add(std::span<const uint8_t> data, bool cont);
  std::span<const uint8_t> data() const { return {buf_.data(), buf_.size()}; }
  bool in_progress() const { return started_ && !complete_; }
  void reset() {
    buf_.clear();
    started_ = false;
    complete_ = false;
    overflow_ = false;
  }

 private:
  size_t limit_;
  bool started_ = false;
  std::vector<uint8_t> buf_;  // capacity reserved once: never reallocates
  bool complete_ = false;
  bool overflow_ = false;
};

// Builds key=value\0 text into a bounded buffer.
class TextWriter {
 public:
  explicit TextWriter(size_t limit = kDefaultTextLimit) : limit_(limit) { buf_.reserve(limit); }
  // False (and nothing written) when the pair would not fit.
  bool add(std::string_view key, std::string_view value);
  bool add(std::string_view key, uint64_t value);
  std::span<const uint8_t> data() const { return {buf_.data(), buf_.size()}; }
  std::string_view str() const { return {reinterpret_cast<const char*>(buf_.data()), buf_.size()}; }
  size_t size() const { return buf_.size(); }
  bool overflowed() const { return overflow_; }
  void clear() {
    buf_.clear();
    overflow_ = false;
  }

 private:
  size_t limit_;
  std::vector<uint8_t> buf_;
  bool overflow_ = false;
};

// One PDU's share of a text response of `total` bytes of which `sent` have
// gone out, for a peer accepting `max_seg` bytes per data segment. `more`
// is the C bit (the target then waits for an empty request before sending
// the next piece, §11.10.2).
struct TextChunk {
  size_t offset;
  size_t len;
  bool more;
};
TextChunk next_chunk(size_t total, size_t sent, size_t max_seg);

}  // namespace sgv::iscsi
