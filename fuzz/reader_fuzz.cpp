// fuzz/reader_fuzz.cpp - the PDU reader on arbitrary byte streams: the first
// input byte picks the digest settings and the chunking, the rest is the
// stream. Data segments go to caller segments, the bounded buffer or the
// discard sink depending on their length, as the connection would send
// them. The reader must never write outside what it was given, and must
// frame the stream identically however it is chunked.
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "iscsi/reader.hpp"

namespace {

using sgv::iscsi::Reader;

struct Frame {
  uint8_t op;
  uint32_t len;
};

std::vector<Frame> run(const uint8_t* s, size_t n, bool hd, bool dd, size_t chunk) {
  Reader r(8192);
  r.set_digests(hd, dd);
  std::vector<Frame> out;
  static uint8_t store[3 * 65536];
  sgv::Seg segs[3] = {{store, 65536}, {store + 65536, 65536}, {store + 131072, 65536}};
  size_t pos = 0;
  while (pos < n) {
    struct iovec iov[8];
    unsigned k = r.want(iov, 8);
    size_t end = std::min(n, pos + chunk), take = 0;
    for (unsigned i = 0; i < k && pos + take < end; ++i) {
      size_t l = std::min(iov[i].iov_len, end - pos - take);
      std::memcpy(iov[i].iov_base, s + pos + take, l);
      take += l;
    }
    pos += take;
    Reader::Ev ev = r.advance(take);
    if (ev == Reader::Ev::header) {
      uint32_t dl = r.data_len();
      if (dl <= 8192 && (r.bhs()[0] & 1)) {
        r.data_to_buffer();
      } else if (dl <= 65536 * 2) {
        r.data_to(segs, 3, 65536 - (dl & 0xfff));
      } else {
        r.data_discard();
      }
      ev = r.advance(0);
    }
    if (ev == Reader::Ev::pdu) out.push_back({r.bhs()[0], r.data_len()});
  }
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  bool hd = data[0] & 1, dd = data[0] & 2;
  size_t chunk = (data[0] >> 2) + 1;
  auto a = run(data + 1, size - 1, hd, dd, chunk);
  auto b = run(data + 1, size - 1, hd, dd, size);  // all at once
  if (a.size() != b.size()) abort();
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].op != b[i].op || a[i].len != b[i].len) abort();
  return 0;
}
