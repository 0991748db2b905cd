// bench/scsi_reservation_bench.cpp - what reservations cost the SCSI core's
// command path: Target::prepare + execute of a 4 KiB READ(10) (zero-copy on
// a RAM LUN, so the backend does almost nothing) on 1 and 2 threads, each
// thread its own nexus, in three states of the LUN:
//   none     no reservation (the acquire load of the flag only);
//   we_ar    a WRITE EXCLUSIVE - ALL REGISTRANTS reservation that every
//            nexus is registered under, as a cluster keeps permanently:
//            every command takes the LUN's PR mutex to find its nexus;
//   reserve6 a RESERVE(6) held by the benchmark's first nexus (one atomic
//            load and a pointer compare).
// Reported as CPU ns per command (process CPU time / commands).
#include <benchmark/benchmark.h>

#include <atomic>
#include <cstring>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "backend/backend.hpp"
#include "scsi/target.hpp"

using namespace sgv;

namespace {

struct Env {
  std::unique_ptr<scsi::Target> tg;
  std::vector<scsi::Nexus*> nx;
};

uint8_t run(scsi::Target& tg, scsi::Nexus* n, const uint8_t* cdb, unsigned len, const std::vector<uint8_t>& out = {}) {
  scsi::Task t;
  uint8_t sense[scsi::kSenseMax];
  std::memcpy(t.cdb, cdb, len);
  t.nexus = n;
  t.sense = sense;
  t.edtl = out.empty() ? 4096 : uint32_t(out.size());
  bool done = false;
  t.ctx = &done;
  t.done = [](scsi::Task* k) { *static_cast<bool*>(k->ctx) = true; };
  if (tg.prepare(t)) return t.status;
  std::vector<uint8_t> buf = out;
  if (t.dir != scsi::Dir::none && !t.backend_buffer) {
    buf.resize(t.data_len);
    t.inline_segs[0] = {buf.data(), buf.size()};
    t.segs = t.inline_segs;
    t.nsegs = 1;
  }
  tg.execute(t);
  return done ? t.status : 0xff;
}

Env& env(int state) {
  static Env e[3];
  static std::once_flag once[3];
  std::call_once(once[state], [state] {
    Env& v = e[state];
    v.tg = std::make_unique<scsi::Target>("iqn.2026-11.io.sgv:bench");
    int err = 0;
    scsi::LunConfig c;
    c.backend = backend::make_ram({64u << 20}, &err);
    v.tg->add_lun(std::move(c));
    for (int i = 0; i < 2; ++i) {
      scsi::Nexus* n = v.tg->open_nexus("iqn.bench-" + std::to_string(i) + ",i,0x000000000001");
      const uint8_t tur[6] = {};
      while (run(*v.tg, n, tur, 6) != 0) {
      }
      v.nx.push_back(n);
    }
    if (state == 1) {
      for (int i = 0; i < 2; ++i) {
        std::vector<uint8_t> p(24, 0);
        p[15] = uint8_t(0x10 + i);  // service action reservation key
        const uint8_t reg[10] = {0x5f, 0x06, 0, 0, 0, 0, 0, 0, 24, 0};
        run(*v.tg, v.nx[i], reg, 10, p);
      }
      std::vector<uint8_t> p(24, 0);
      p[7] = 0x10;  // reservation key of nexus 0
      const uint8_t res[10] = {0x5f, 0x01, 0x07, 0, 0, 0, 0, 0, 24, 0};
      run(*v.tg, v.nx[0], res, 10, p);
    } else if (state == 2) {
      const uint8_t res6[6] = {0x16, 0, 0, 0, 0, 0};
      run(*v.tg, v.nx[0], res6, 6);
    }
  });
  return e[state];
}

void read4k(benchmark::State& st, int state) {
  Env& e = env(state);
  scsi::Nexus* n = e.nx[size_t(st.thread_index()) % e.nx.size()];
  // RESERVE(6) is held by nexus 0; the other thread would only measure
  // RESERVATION CONFLICT, so both threads use nexus 0 there.
  if (state == 2) n = e.nx[0];
  uint32_t lba = uint32_t(st.thread_index()) * 4096;
  int bad = 0;
  for (auto _ : st) {
    uint8_t cdb[10] = {0x28, 0, uint8_t(lba >> 24), uint8_t(lba >> 16), uint8_t(lba >> 8), uint8_t(lba), 0, 0, 8, 0};
    if (run(*e.tg, n, cdb, 10) != 0) ++bad;
    lba = (lba + 8) & 0x1ffff;
  }
  if (bad) st.SkipWithError("a READ failed");
}

}  // namespace

BENCHMARK_CAPTURE(read4k, none, 0)->Threads(1)->Threads(2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_CAPTURE(read4k, we_ar, 1)->Threads(1)->Threads(2)->MeasureProcessCPUTime()->UseRealTime();
BENCHMARK_CAPTURE(read4k, reserve6, 2)->Threads(1)->Threads(2)->MeasureProcessCPUTime()->UseRealTime();

BENCHMARK_MAIN();
