// fuzz/login_fuzz.cpp - drives the login state machine and, once in full
// feature phase, the Text exchange with a sequence of fuzzed requests.
// Input: records of [48-byte BHS][2-byte big-endian data length][data].
// Odd-sized inputs log in with the real ChapAuthenticator: fixed
// credentials and a fixed challenge source (CHAP_I 160, CHAP_C a1..b0), so
// the seeds fuzz/gen_login_seeds.py writes carry right answers and reach
// CHAP_N/CHAP_R checking, hex and base64 values and the mutual exchange.
#include <cstdlib>
#include <cstring>

#include "iscsi/chap.hpp"
#include "iscsi/discovery.hpp"
#include "iscsi/login.hpp"

using namespace sgv::iscsi;

static void check(bool ok) {
  if (!ok) abort();
}

namespace {

const Portal kPortals[] = {{"192.0.2.1:3260", 1}};

struct Dir : TargetDirectory {
  bool exists(std::string_view t) const override { return t == "iqn.t:a" || t == "iqn.t:b"; }
  bool allowed(std::string_view t, std::string_view i) const override { return t != "iqn.t:b" || i == "iqn.i:ok"; }
  size_t count() const override { return 2; }
  TargetEntry entry(size_t i) const override { return {i ? "iqn.t:b" : "iqn.t:a", kPortals}; }
  bool session_exists(uint64_t, uint16_t tsih) const override { return tsih == 1; }
  uint16_t create_session(const SessionParams&) override { return 5; }
  // Target a: one-way or mutual; target b: one-way only (no mutual secret).
  bool chap(std::string_view t, ChapCredentials& out) const override {
    if (t == "iqn.t:a") out = {"user-a", "secret-a-0123", "target-a", "mutual-a-4567"};
    else if (t == "iqn.t:b") out = {"user-b", "secret-b-0123", {}, {}};
    else return false;
    return true;
  }
};

// The same bytes every run: 0xa0, 0xa1, ... from the start of each input.
uint8_t g_next_random;
bool fixed_random(std::span<uint8_t> out) {
  for (uint8_t& b : out) b = g_next_random++;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const TargetLimits lim = [] {
    TargetLimits l;
    l.immediate_data = false;  // exercises target offers
    return l;
  }();
  Dir dir;
  g_next_random = 0xa0;
  ChapAuthenticator auth(dir, &fixed_random);
  Login login(lim, dir, size % 2 ? &auth : nullptr, 16384);
  TextExchange* text = nullptr;
  alignas(TextExchange) static unsigned char text_mem[sizeof(TextExchange)];

  size_t pos = 0;
  for (int n = 0; n < 64 && pos + 50 <= size; n++) {
    Bhs h;
    std::memcpy(h.b, data + pos, 48);
    size_t len = size_t(data[pos + 48]) << 8 | data[pos + 49];
    pos += 50;
    if (len > size - pos) len = size - pos;
    std::span<const uint8_t> d(data + pos, len);
    pos += len;

    if (!login.in_full_feature()) {
      Login::Output out;
      login.on_request(h, d, out);
      check(out.rsp.opcode() == Op::login_rsp);
      check(out.data.size() <= Login::kLoginSegmentMax && out.rsp.data_len() == out.data.size());
      check(!(out.rsp.transit() && out.rsp.cont()));
      if (out.action == Login::Action::send_and_close) {
        check(out.rsp.status_class() != 0 && login.failed());
        break;
      }
      check(out.rsp.status_class() == 0);
      if (out.action == Login::Action::send_and_enter_ffp) {
        check(login.in_full_feature() && out.rsp.tsih() == 5);
        check(login.session().first_burst_length <= login.session().max_burst_length);
        check(login.session().type == SessionType::discovery || !login.session().immediate_data);
        text = new (text_mem) TextExchange(dir, login.session(), 16384);
      }
    } else {
      TextExchange::Output out;
      uint32_t max_seg = 1 + (h.b[47] << 4);
      text->on_request(h, d, SeqNums{1, 2, 3}, max_seg, out);
      if (!out.reject) {
        check(out.rsp.opcode() == Op::text_rsp && out.data.size() <= max_seg);
        check(!(out.rsp.final() && out.rsp.cont()));
        check(out.rsp.final() == (out.rsp.ttt() == kReservedTag) || (!out.rsp.final() && !out.rsp.cont()));
      }
    }
  }
  if (text) text->~TextExchange();
  return 0;
}
