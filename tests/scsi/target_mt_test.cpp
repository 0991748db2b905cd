// tests/scsi/target_mt_test.cpp - Target under concurrent use as target.hpp
// allows it: two reactor-like threads run commands on their own nexuses
// while a management thread resets LUNs, adds LUNs and changes mode pages,
// or takes and drops reservations.
// Judged by the results (every command completes once with a valid status)
// and, in the TSan build, by the absence of data races.
#include <gtest/gtest.h>

#include <unistd.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/target.hpp"

using namespace sgv;

namespace {

// A reactor-like thread: runs one command at a time, reaps its own backend
// ring, and resumes tasks the core parked when another thread posts them.
struct Runner {
  scsi::Target& tg;
  scsi::Nexus* nx;
  uint8_t sense[scsi::kSenseMax];
  std::vector<uint8_t> buf = std::vector<uint8_t>(64 * 1024);
  int bad = 0;
  int ua = 0;
  int calls = 0;
  int parked = 0;  // resumes received

  uint32_t edtl = 64 * 1024;

  std::mutex mu;  // guards resumes
  std::condition_variable cv;
  std::vector<scsi::Task*> resumes;

  Runner(scsi::Target& target, scsi::Nexus* nexus) : tg(target), nx(nexus) {}

  static void post_resume(scsi::Task* k) {
    Runner* r = static_cast<Runner*>(k->ctx);
    std::lock_guard<std::mutex> g(r->mu);
    r->resumes.push_back(k);
    r->cv.notify_one();
  }

  // The loop a reactor runs until this runner's command is done. Blocking is
  // fine here only because the runner has nothing else to do: its own ring
  // is empty and its command is parked on another thread's progress.
  void wait_done() {
    while (calls == 0) {
      std::vector<scsi::Task*> ready;
      {
        std::unique_lock<std::mutex> g(mu);
        if (resumes.empty() && !backend::thread_ops_in_flight()) cv.wait(g, [&] { return !resumes.empty(); });
        ready.swap(resumes);
      }
      for (scsi::Task* k : ready) {
        ++parked;
        tg.resume(*k);
      }
      if (ready.empty() && backend::thread_ops_in_flight()) backend::wait_thread_completions();
    }
  }

  uint8_t run(const uint8_t* cdb, unsigned len, uint64_t lun = 0, uint32_t out_len = 0) {
    scsi::Task t;
    std::memcpy(t.cdb, cdb, len);
    t.lun = lun << 48;
    t.nexus = nx;
    t.sense = sense;
    t.edtl = edtl;
    calls = 0;
    t.ctx = this;
    t.done = [](scsi::Task* k) { ++static_cast<Runner*>(k->ctx)->calls; };
    t.post_resume = &Runner::post_resume;
    if (tg.prepare(t)) return t.status;
    if (t.dir != scsi::Dir::none && !t.backend_buffer) {
      uint32_t n = t.dir == scsi::Dir::out ? std::min(out_len, t.data_len) : std::min<uint32_t>(t.data_len, 65536);
      t.inline_segs[0] = {buf.data(), n};
      t.segs = t.inline_segs;
      t.nsegs = 1;
    }
    tg.execute(t);
    wait_done();
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
      tg.lun_reset(0);
      tg.target_reset();
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

// Reservations taken and dropped on one thread while another nexus does
// I/O: every command of the other nexus completes with GOOD, a unit
// attention or RESERVATION CONFLICT, never anything else, and the
// conflicts are seen. Under TSan: the reservation state is read by the data
// path (two atomics, then the LUN's PR mutex) while PR OUT, RESERVE and
// RELEASE change it.
TEST(TargetMt, ReservationsRacingIo) {
  scsi::Target tg("iqn.2026-11.io.sgv:mt");
  int err = 0;
  scsi::LunConfig cfg;
  cfg.backend = backend::make_ram({8u << 20}, &err);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  Runner io{tg, tg.open_nexus("iqn.io,i,0x000000000001")};
  std::atomic<bool> stop{false};
  std::atomic<int> mgmt_bad{0};
  std::atomic<int> cycles{0};
  std::thread mgmt([&] {
    Runner m{tg, tg.open_nexus("iqn.m,i,0x000000000001")};
    uint8_t tur[6] = {0, 0, 0, 0, 0, 0};
    while (m.run(tur, 6) != 0) {
    }
    auto prout = [&](uint8_t sa, uint8_t type, uint64_t key, uint64_t sark) {
      std::memset(m.buf.data(), 0, 24);
      for (int i = 0; i < 8; ++i) {
        m.buf[i] = uint8_t(key >> (56 - 8 * i));
        m.buf[8 + i] = uint8_t(sark >> (56 - 8 * i));
      }
      uint8_t c[10] = {0x5f, sa, type, 0, 0, 0, 0, 0, 24, 0};
      return m.run(c, 10, 0, 24);
    };
    for (int i = 0; !stop.load(); ++i) {
      uint8_t k = uint8_t(1 + i % 2 * 2);  // EA and WE by turns
      if (prout(0, 0, 0, 0xabc) || prout(1, k, 0xabc, 0) || prout(2, k, 0xabc, 0) || prout(0, 0, 0xabc, 0))
        ++mgmt_bad;
      uint8_t res6[6] = {0x16, 0, 0, 0, 0, 0}, rel6[6] = {0x17, 0, 0, 0, 0, 0};
      if (m.run(res6, 6) || m.run(rel6, 6)) ++mgmt_bad;
      ++cycles;
    }
    tg.close_nexus(m.nx);
  });
  int good = 0, conflicts = 0, other = 0;
  // At least 3000 rounds and 300 cycles of the other thread, and until both
  // outcomes were seen (on a loaded 2-core box the threads may take turns in
  // whole time slices); 20 s at most.
  auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; (i < 3000 || cycles.load() < 300 || !good || !conflicts) &&
                  std::chrono::steady_clock::now() - t0 < std::chrono::seconds(20);
       ++i) {
    uint64_t lba = uint64_t(i % 64) * 8;
    uint8_t w[10] = {0x2a, 0, 0, 0, uint8_t(lba >> 8), uint8_t(lba), 0, 0, 8, 0};
    uint8_t r[10] = {0x28, 0, 0, 0, uint8_t(lba >> 8), uint8_t(lba), 0, 0, 8, 0};
    for (uint8_t st : {io.run(w, 10, 0, 4096), io.run(r, 10)}) {
      if (st == scsi::status::good) ++good;
      else if (st == scsi::status::reservation_conflict) ++conflicts;
      else if (!(st == 2 && (io.sense[2] & 0x0f) == 6)) ++other;
    }
  }
  stop = true;
  mgmt.join();
  EXPECT_EQ(other, 0);
  EXPECT_EQ(io.bad, 0);
  EXPECT_EQ(mgmt_bad.load(), 0);
  EXPECT_GT(good, 0);
  EXPECT_GT(conflicts, 0);
  uint8_t w[10] = {0x2a, 0, 0, 0, 0, 0, 0, 0, 8, 0};
  EXPECT_EQ(io.run(w, 10, 0, 4096), scsi::status::good);  // nothing left reserved
  tg.close_nexus(io.nx);
}

// COMPARE AND WRITE as VMware's ATS uses it: a counter in block 7 that two
// threads increment by compare-and-swap. A lost update (both compares seeing
// the same value) would leave the counter short. Each thread only guesses
// the value (it never decreases, so a miscompare means "higher"): the loop
// issues nothing but COMPARE AND WRITEs, which all hold the LUN's write
// gate, so under TSan any unguarded access between them is reported too.
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

namespace {

// ORWRITE is a read-OR-write step that no other writer may split (SBC-3
// 5.8). Two threads each set, one ORWRITE at a time, their own 2048 bits of
// each of 16 blocks (thread A the even bits, B the odd ones); a lost update
// (both reading a block before either wrote it) would leave bits clear. Under TSan it also covers the gate shared with COMPARE AND WRITE.
TEST(TargetMt, OrWriteSetsEveryBitOfTwoRacingWriters) {
  scsi::Target tg("iqn.2026-11.io.sgv:orw");
  int err = 0;
  scsi::LunConfig cfg;
  cfg.backend = backend::make_ram({1u << 20}, &err);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  constexpr unsigned kBlocks = 16;  // 2 x 32768 ORWRITEs
  std::atomic<int> ready{0};
  auto worker = [&](const char* name, unsigned parity, int* bad) {
    Runner r{tg, tg.open_nexus(name)};
    uint8_t tur[6] = {};
    r.run(tur, 6);
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
    r.edtl = 512;
    for (unsigned block = 0; block < kBlocks; ++block) {
      uint8_t orw[16] = {0x8b, 0, 0, 0, 0, 0, 0, 0, uint8_t(block >> 8), uint8_t(block), 0, 0, 0, 1, 0, 0};
      for (unsigned bit = parity; bit < 4096; bit += 2) {
        std::memset(r.buf.data(), 0, 512);
        r.buf[bit / 8] = uint8_t(1u << (bit % 8));
        if (r.run(orw, 16, 0, 512) != 0) ++*bad;
      }
    }
    tg.close_nexus(r.nx);
  };
  int bad_a = 0, bad_b = 0;
  std::thread ta(worker, "iqn.orw-a", 0u, &bad_a);
  std::thread tb(worker, "iqn.orw-b", 1u, &bad_b);
  ta.join();
  tb.join();
  EXPECT_EQ(bad_a + bad_b, 0);
  Runner check{tg, tg.open_nexus("iqn.check")};
  uint8_t tur[6] = {};
  check.run(tur, 6);
  check.edtl = kBlocks * 512;
  uint8_t rd[10] = {0x28, 0, 0, 0, 0, 0, 0, 0, kBlocks, 0};
  ASSERT_EQ(check.run(rd, 10), 0);
  size_t clear = 0;
  for (size_t i = 0; i < kBlocks * 512; ++i) clear += 8 - size_t(__builtin_popcount(check.buf[i]));
  EXPECT_EQ(clear, 0u) << "bits lost to racing ORWRITEs";
  tg.close_nexus(check.nx);
}

}  // namespace

namespace {

// COMPARE AND WRITE against plain writes of the same block (SBC-3 5.2: its
// read, compare and write are atomic against every command). Thread B writes
// markers M1, M2, ... to block 7 with WRITE (odd) or WRITE SAME (even); after
// each completes it publishes `written` and waits until A has taken it over.
// Thread A increments a counter in block 7 by COMPARE AND WRITE, guessing
// either its own last value or B's latest marker (a miscompare flips the
// guess); a success against a marker "adopts" it. The check: a CAW issued
// after A saw marker i written and not yet adopted must miscompare unless
// it compares against M_i, since nothing else may have changed the block.
// Before the write gate, a WRITE could land between a CAW's compare and its
// write and be silently overwritten; A's next CAW against its own value then
// succeeded, which this reports as a lost marker.
struct Block {
  uint64_t tag;  // 'C' counter written by A, 'M' marker written by B
  uint64_t n;
};

void caw_against_writes(std::unique_ptr<backend::Backend> be, int markers) {
  scsi::Target tg("iqn.2026-11.io.sgv:caw-w");
  scsi::LunConfig cfg;
  cfg.backend = std::move(be);
  ASSERT_EQ(tg.add_lun(std::move(cfg)), 0);
  constexpr uint64_t kLba = 7;
  std::atomic<int> issuing{0}, written{0}, adopted{0};
  std::atomic<bool> stop{false};
  std::atomic<int> lost{0}, bad{0};
  std::atomic<int> ready{0};
  int64_t increments = 0, parked_a = 0, parked_b = 0;

  Runner init{tg, tg.open_nexus("iqn.init")};
  uint8_t tur[6] = {};
  init.run(tur, 6);
  std::memset(init.buf.data(), 0, 512);
  Block c0{'C', 0};
  std::memcpy(init.buf.data(), &c0, sizeof c0);
  init.edtl = 512;
  uint8_t w0[10] = {0x2a, 0, 0, 0, 0, uint8_t(kLba), 0, 0, 1, 0};
  ASSERT_EQ(init.run(w0, 10, 0, 512), 0);
  tg.close_nexus(init.nx);

  // Takes the nexus' POWER ON RESET unit attention, then waits for the other.
  auto start_together = [&](Runner& r, uint32_t edtl) {
    r.run(tur, 6);
    r.edtl = edtl;
    ready.fetch_add(1);
    while (ready.load() < 2) std::this_thread::yield();
  };
  std::thread ta([&] {
    Runner r{tg, tg.open_nexus("iqn.caw")};
    start_together(r, 1024);
    uint8_t caw[16] = {0x89, 0, 0, 0, 0, 0, 0, 0, 0, uint8_t(kLba), 0, 0, 0, 1, 0, 0};
    Block own{'C', 0}, guess = own;
    int mine = 0;  // markers adopted
    int misses = 0;  // in a row: a guess that can never match again would spin
    while (!stop.load()) {
      int w = written.load();
      int iss = issuing.load();
      Block next{'C', own.n + 1};
      std::memset(r.buf.data(), 0, 1024);
      std::memcpy(r.buf.data(), &guess, sizeof guess);
      std::memcpy(r.buf.data() + 512, &next, sizeof next);
      uint8_t st = r.run(caw, 16, 0, 1024);
      if (st == 0) {
        ++increments;
        // Marker w is on the medium unless we adopted it: only a CAW
        // against M_w may have succeeded.
        if (w > mine && !(guess.tag == 'M' && guess.n == uint64_t(w))) {
          lost.fetch_add(1);
          stop.store(true);
        }
        if (guess.tag == 'M') {
          mine = int(guess.n);
          adopted.store(mine);
        }
        own = next;
        guess = own;
        misses = 0;
      } else if (st == 2 && (r.sense[2] & 0x0f) == 0x0e && ++misses < 1000000) {
        guess = guess.tag == 'C' && iss > mine ? Block{'M', uint64_t(iss)} : own;
      } else {
        bad.fetch_add(1);
        stop.store(true);
      }
    }
    parked_a = r.parked;
    tg.close_nexus(r.nx);
  });
  std::thread tb([&] {
    Runner r{tg, tg.open_nexus("iqn.writer")};
    start_together(r, 512);
    for (int i = 1; i <= markers && !stop.load(); ++i) {
      Block m{'M', uint64_t(i)};
      std::memset(r.buf.data(), 0, 512);
      std::memcpy(r.buf.data(), &m, sizeof m);
      issuing.store(i);
      uint8_t wr[10] = {0x2a, 0, 0, 0, 0, uint8_t(kLba), 0, 0, 1, 0};
      uint8_t ws[10] = {0x41, 0, 0, 0, 0, uint8_t(kLba), 0, 0, 1, 0};
      if (r.run(i & 1 ? wr : ws, 10, 0, 512) != 0) {
        bad.fetch_add(1);
        break;
      }
      written.store(i);
      while (adopted.load() < i && !stop.load()) std::this_thread::yield();
    }
    stop.store(true);
    parked_b = r.parked;
    tg.close_nexus(r.nx);
  });
  ta.join();
  tb.join();
  std::printf("markers adopted %d of %d, increments %lld, resumes: caw thread %lld, writer %lld\n", adopted.load(),
              markers, static_cast<long long>(increments), static_cast<long long>(parked_a),
              static_cast<long long>(parked_b));
  EXPECT_EQ(lost.load(), 0) << "a WRITE landed inside a COMPARE AND WRITE";
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(adopted.load(), markers);
}

TEST(TargetMt, CompareAndWriteIsAtomicAgainstWritesRam) {
  int err = 0;
  caw_against_writes(backend::make_ram({1u << 20}, &err), 400);
}

TEST(TargetMt, CompareAndWriteIsAtomicAgainstWritesFile) {
  char path[] = "/tmp/sgv_caw_mt_XXXXXX";
  int fd = mkstemp(path);
  ASSERT_GE(fd, 0);
  ::close(fd);
  int err = 0;
  auto be = backend::make_file({path, 1u << 20}, &err);
  ASSERT_TRUE(be) << err;
  caw_against_writes(std::move(be), 400);
  ::unlink(path);
}

}  // namespace
