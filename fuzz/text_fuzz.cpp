// fuzz/text_fuzz.cpp - key=value text: parsing arbitrary bytes, Continue-bit
// accumulation at a fuzzer-chosen split (must equal the unsplit parse), and
// build/parse round trips of whatever parsed.
#include <cstdlib>
#include <string>

#include "iscsi/text.hpp"

using namespace sgv::iscsi;

static void check(bool ok) {
  if (!ok) abort();
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const size_t cut = size > 1 ? data[0] % size : 0;
  std::span<const uint8_t> text(data + 1, size - 1);

  static TextPairs whole, joined, again;
  TextStatus st = parse_text(text, whole);

  TextAccumulator acc(4096);
  const size_t c = cut < text.size() ? cut : text.size();
  TextAccumulator::Result r = acc.add(text.subspan(0, c), true);
  if (r == TextAccumulator::Result::more) r = acc.add(text.subspan(c), false);
  if (text.size() <= 4096) {
    check(r == TextAccumulator::Result::complete);
    check(acc.data().size() == text.size());
    check(parse_text(acc.data(), joined) == st);
    check(joined.n == whole.n);
  } else {
    check(r == TextAccumulator::Result::overflow);
  }

  if (st == TextStatus::ok) {
    TextWriter w(text.size() + 2);
    for (const KeyValue& kv : whole) check(w.add(kv.key, kv.value));
    check(parse_text(w.data(), again) == TextStatus::ok);
    check(again.n == whole.n);
    for (size_t i = 0; i < whole.n; i++) {
      check(again.kv[i].key == whole.kv[i].key);
      check(again.kv[i].value == whole.kv[i].value);
      check(whole.kv[i].key.size() <= kMaxKeyLen);
      check(whole.kv[i].value.size() <= value_limit(whole.kv[i].key));
    }
  }
  // Chunking covers the text exactly.
  size_t sent = 0, max_seg = (cut % 97) + 1;
  while (true) {
    TextChunk ch = next_chunk(text.size(), sent, max_seg);
    check(ch.offset == sent && ch.len <= max_seg);
    sent += ch.len;
    if (!ch.more) break;
  }
  check(sent == text.size());
  return 0;
}
