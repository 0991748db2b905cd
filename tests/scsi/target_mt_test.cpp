// tests/scsi/target_mt_test.cpp - Target under concurrent use as target.hpp
// allows it: two reactor-like threads run commands on their own nexuses
// while a management thread resets LUNs, adds LUNs and changes mode pages.
// Judged by the results (every command completes once with a valid status)
// and, in the TSan build, by the absence of data races.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
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

  uint32_t edtl = 64 * 1024;

  uint8_t run(const uint8_t* cdb, unsigned len, uint64_t lun = 0, uint32_t out_len = 0) {
    scsi::Task t;
    std::memcpy(t.cdb, cdb, len);
    t.lun = lun << 48;
    t.nexus = nx;
    t.sense = sense;
    t.edtl = edtl;
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
    if (t.backend_buffer) {
      // A zero-copy READ points at the backend's memory: bring it into buf.
      size_t at = 0;
      for (unsigned i = 0; i < t.nsegs && at + t.segs[i].len <= buf.size(); at += t.segs[i++].len)
        std::memcpy(buf.data() + at, t.segs[i].addr, t.segs[i].len);
    }
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

// COMPARE AND WRITE as VMware's ATS uses it: a counter in block 7 that two
// threads increment by compare-and-swap. A lost update (both compares seeing
// the same value) would leave the counter short. Each thread only guesses
// the value (it never decreases, so a miscompare means "higher"): the loop
// issues nothing but COMPARE AND WRITEs, which all hold the LUN's caw_mu,
// so under TSan any unguarded access between them is reported too.
TEST(TargetMt, CompareAndWriteIsAtomicAgainstItself) {
  scsi::Target tg("iqn.2026-11.io.sgv:caw");
  int err = 0;
  scsi::LunConfig cfg;
  cfg.backend = backend::make_ram({1u << 20}, &err);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  constexpr int kIncrements = 20000;
  std::atomic<int> ready{0};
  auto worker = [&](const char* name, int* retries, int* bad) {
    Runner r{tg, tg.open_nexus(name)};
    uint8_t tur[6] = {};
    r.run(tur, 6);  // consumes the POWER ON RESET unit attention
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();  // start together
    uint8_t caw[16] = {0x89, 0, 0, 0, 0, 0, 0, 0, 0, 7, 0, 0, 0, 1, 0, 0};
    r.edtl = 1024;
    uint64_t guess = 0;
    for (int done = 0; done < kIncrements;) {
      std::memset(r.buf.data(), 0, 1024);
      uint64_t next = guess + 1;
      std::memcpy(r.buf.data(), &guess, sizeof guess);
      std::memcpy(r.buf.data() + 512, &next, sizeof next);
      uint8_t st = r.run(caw, 16, 0, 1024);
      if (st == 0) {
        ++done;
      } else if (st == 2 && (r.sense[2] & 0x0f) == 0x0e && *retries < 100 * kIncrements) {
        ++*retries;  // MISCOMPARE: the counter is past the guess
      } else {
        ++*bad;
        return;
      }
      guess = next;
    }
    tg.close_nexus(r.nx);
  };
  int retries_a = 0, retries_b = 0, bad_a = 0, bad_b = 0;
  std::thread ta(worker, "iqn.caw-a", &retries_a, &bad_a);
  std::thread tb(worker, "iqn.caw-b", &retries_b, &bad_b);
  ta.join();
  tb.join();
  EXPECT_EQ(bad_a + bad_b, 0);
  std::printf("COMPARE AND WRITE retries after a miscompare: %d + %d\n", retries_a, retries_b);
  Runner check{tg, tg.open_nexus("iqn.check")};
  uint8_t tur[6] = {};
  check.run(tur, 6);
  check.edtl = 512;
  uint8_t rd[10] = {0x28, 0, 0, 0, 0, 7, 0, 0, 1, 0};
  ASSERT_EQ(check.run(rd, 10), 0);
  uint64_t v;
  std::memcpy(&v, check.buf.data(), sizeof v);
  EXPECT_EQ(v, uint64_t(2 * kIncrements));
  tg.close_nexus(check.nx);
}

}  // namespace
