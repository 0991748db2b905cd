// iscsi/text.cpp - key=value text parsing, accumulation and building.
#include "iscsi/text.hpp"

#include <cassert>
#include <charconv>
#include <cstring>

namespace sgv::iscsi {
namespace {

bool key_char_ok(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '-' ||
         c == '+' || c == '@' || c == '_' || c == '#';  // '#' only appears in X#... extension keys
}

TextStatus parse_pair(std::string_view s, KeyValue& kv) {
  size_t eq = s.find('=');
  if (eq == std::string_view::npos || eq == 0) return TextStatus::malformed;
  std::string_view key = s.substr(0, eq);
  std::string_view val = s.substr(eq + 1);
  if (key.size() > kMaxKeyLen) return TextStatus::key_too_long;
  for (char c : key)
    if (!key_char_ok(c)) return TextStatus::bad_key_char;
  if (val.size() > value_limit(key)) return TextStatus::value_too_long;
  kv = {key, val};
  return TextStatus::ok;
}

}  // namespace

const char* to_string(TextStatus s) {
  switch (s) {
    case TextStatus::ok: return "ok";
    case TextStatus::malformed: return "malformed";
    case TextStatus::bad_key_char: return "bad key character";
    case TextStatus::key_too_long: return "key too long";
    case TextStatus::value_too_long: return "value too long";
    case TextStatus::duplicate_key: return "duplicate key";
    case TextStatus::too_many_pairs: return "too many pairs";
    case TextStatus::too_long: return "text too long";
  }
  return "?";
}

bool list_has(std::string_view list, std::string_view item) {
  while (true) {
    size_t comma = list.find(',');
    if (list.substr(0, comma) == item) return true;
    if (comma == std::string_view::npos) return false;
    list.remove_prefix(comma + 1);
  }
}

size_t value_limit(std::string_view key) {
  // Binary CHAP values are hex/base64 encodings of up to 1024 bytes.
  if (key == "CHAP_C" || key == "CHAP_R" || key == "CHAP_N") return kMaxLongValueLen;
  return kMaxValueLen;
}

const KeyValue* TextPairs::find(std::string_view key) const {
  for (size_t i = 0; i < n; i++)
    if (kv[i].key == key) return &kv[i];
  return nullptr;
}

TextStatus parse_text(std::span<const uint8_t> data, TextPairs& out) {
  out.n = 0;
  std::string_view all(reinterpret_cast<const char*>(data.data()), data.size());
  size_t pos = 0;
  while (pos < all.size()) {
    size_t end = all.find('\0', pos);
    if (end == std::string_view::npos) end = all.size();
    std::string_view s = all.substr(pos, end - pos);
    pos = end + 1;
    if (s.empty()) continue;
    KeyValue kv;
    TextStatus st = parse_pair(s, kv);
    if (st != TextStatus::ok) return st;
    if (out.find(kv.key)) return TextStatus::duplicate_key;
    if (out.n == kMaxTextPairs) return TextStatus::too_many_pairs;
    out.kv[out.n++] = kv;
  }
  return TextStatus::ok;
}

TextAccumulator::Result TextAccumulator::add(std::span<const uint8_t> data, bool cont) {
  if (complete_) reset();  // a finished text was consumed: this starts the next one
  if (overflow_ || buf_.size() + data.size() > limit_) {
    overflow_ = true;
    return Result::overflow;
  }
  started_ = true;
  buf_.insert(buf_.end(), data.begin(), data.end());
  if (cont) return Result::more;
  complete_ = true;
  return Result::complete;
}

bool TextWriter::add(std::string_view key, std::string_view value) {
  size_t need = key.size() + 1 + value.size() + 1;
  if (buf_.size() + need > limit_) {
    overflow_ = true;
    return false;
  }
  buf_.insert(buf_.end(), key.begin(), key.end());
  buf_.push_back('=');
  buf_.insert(buf_.end(), value.begin(), value.end());
  buf_.push_back('\0');
  return true;
}

bool TextWriter::add(std::string_view key, uint64_t value) {
  char tmp[24];
  auto r = std::to_chars(tmp, tmp + sizeof tmp, value);
  return add(key, std::string_view(tmp, size_t(r.ptr - tmp)));
}

TextChunk next_chunk(size_t total, size_t sent, size_t max_seg) {
  assert(max_seg > 0 && sent <= total);
  size_t len = total - sent;
  if (len > max_seg) len = max_seg;
  return {sent, len, sent + len < total};
}

}  // namespace sgv::iscsi
