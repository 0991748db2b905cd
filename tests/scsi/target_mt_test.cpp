// tests/scsi/target_mt_test.cpp - Target under concurrent use as target.hpp
// allows it: two reactor-like threads run commands on their own nexuses
// while a management thread resets LUNs, adds LUNs and changes mode pages.
// Judged by the results (every command completes once with a valid status)
// and, in the TSan build, by the absence of data races.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/target.hpp"

using namespace sgv;

namespace {

struct Runner {
  scsi::Target& tg;
  scsi::Nexus* nx;
  uint8_t sense[scsi::kSenseMax];
  std::vector<uint8_t> buf = std::vector<uint8_t>(64 * 1024);
  int bad = 0;
  int ua = 0;

  uint8_t run(const uint8_t* cdb, unsigned len, uint64_t lun = 0, uint32_t out_len = 0) {
    scsi::Task t;
    std::memcpy(t.cdb, cdb, len);
    t.lun = lun << 48;
    t.nexus = nx;
    t.sense = sense;
    t.edtl = 64 * 1024;
    int calls = 0;
    t.ctx = &calls;
    t.done = [](scsi::Task* k) { ++*static_cast<int*>(k->ctx); };
    if (tg.prepare(t)) return t.status;
    if (t.dir != scsi::Dir::none && !t.backend_buffer) {
      uint32_t n = t.dir == scsi::Dir::out ? std::min(out_len, t.data_len) : std::min<uint32_t>(t.data_len, 65536);
      t.inline_segs[0] = {buf.data(), n};
      t.segs = t.inline_segs;
      t.nsegs = 1;
    }
    tg.execute(t);
    while (calls == 0 && backend::thread_ops_in_flight()) backend::wait_thread_completions();
    if (calls != 1) ++bad;
    return t.status;
  }

  void loop(uint64_t base, int iters) {
    for (int i = 0; i < iters; ++i) {
      uint64_t lba = base + uint64_t(i % 64) * 8;
      uint8_t w[10] = {0x2a, 0, 0, 0, uint8_t(lba >> 8), uint8_t(lba), 0, 0, 8, 0};
      std::memset(buf.data(), i & 0xff, 4096);
      uint8_t st = run(w, 10, 0, 4096);
      if (st == 2 && (sense[2] & 0x0f) == 6) ++ua;
      else if (st != 0) ++bad;
      uint8_t r[10] = {0x28, 0, 0, 0, uint8_t(lba >> 8), uint8_t(lba), 0, 0, 8, 0};
      st = run(r, 10);
      if (st == 2 && (sense[2] & 0x0f) == 6) ++ua;
      else if (st != 0) ++bad;
      uint8_t ms[6] = {0x1a, 0, 0x3f, 0, 255, 0};
      st = run(ms, 6);
      if (st == 2 && (sense[2] & 0x0f) == 6) ++ua;
      else if (st != 0) ++bad;
    }
  }
};

TEST(TargetMt, CommandsRacingManagement) {
  scsi::Target tg("iqn.2026-11.io.sgv:mt");
  int err = 0;
  scsi::LunConfig cfg;
  cfg.backend = backend::make_ram({8u << 20}, &err);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  Runner a{tg, tg.open_nexus("iqn.a")};
  Runner b{tg, tg.open_nexus("iqn.b")};
  std::atomic<bool> stop{false};
  std::thread mgmt([&] {
    Runner m{tg, tg.open_nexus("iqn.m")};
    uint64_t next = 1;
    while (!stop.load()) {
      tg.lun_reset(0, m.nx);
      tg.target_reset(m.nx);
      if (next < 20) {
        scsi::LunConfig c;
        c.id = next++;
        c.backend = backend::make_null(1 << 20);
        tg.add_lun(std::move(c));
      }
      // Toggle D_SENSE through MODE SELECT: other nexuses get 2A/01.
      std::vector<uint8_t> p(16, 0);
      p[4] = 0x0a;
      p[5] = 0x0a;
      p[6] = (next & 1) ? 0x04 : 0;
      p[7] = 0x10;
      p[12] = 0xff;
      p[13] = 0xff;
      std::memcpy(m.buf.data(), p.data(), p.size());
      uint8_t sel[6] = {0x15, 0x10, 0, 0, 16, 0};
      m.run(sel, 6, 0, 16);
      (void)tg.lun_ids();
      std::this_thread::yield();
    }
    tg.close_nexus(m.nx);
  });
  std::thread ta([&] { a.loop(0, 2000); });
  std::thread tb([&] { b.loop(4096, 2000); });
  ta.join();
  tb.join();
  stop = true;
  mgmt.join();
  EXPECT_EQ(a.bad, 0);
  EXPECT_EQ(b.bad, 0);
  EXPECT_GT(a.ua + b.ua, 0);  // the resets were seen
  tg.close_nexus(a.nx);
  tg.close_nexus(b.nx);
}

}  // namespace
