// scsi/target.cpp - the Target: LUN registry, I_T nexuses and their unit
// attentions, and the two calls of the command flow (prepare, execute).
//
// prepare() is the per-command hot path. Budget: one LUN decode, one
// acquire load of the LUN slot, one table lookup, one acquire load of the
// nexus's "UA pending" flag, then the row's decoder. The unit-attention
// queue is only touched when that flag is set.
#include <algorithm>
#include <cerrno>
#include <cstdio>

#include "scsi/core.hpp"

namespace sgv::scsi {

uint64_t decode_lun(uint64_t wire) {
  // Only the first level is used; the other three must be zero.
  if ((wire & 0x0000ffffffffffffull) != 0) return kMaxLuns;
  unsigned level = unsigned(wire >> 48);
  switch (level >> 14) {
    case 0:  // peripheral device addressing, bus 0
      return (level & 0x3f00) ? kMaxLuns : (level & 0xff);
    case 1:  // flat space addressing
      return level & 0x3fff;
    default:
      return kMaxLuns;
  }
}

uint64_t encode_lun(uint64_t id) {
  uint64_t level = id < 256 ? id : (0x4000 | (id & 0x3fff));
  return level << 48;
}

namespace {

// FNV-1a: stable across runs and builds, so a LUN keeps its identity.
uint64_t fnv1a(std::string_view s, uint64_t h = 0xcbf29ce484222325ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 0x100000001b3ull;
  }
  return h;
}

}  // namespace

void Target::Impl::queue_ua(Nexus* n, uint64_t lun_id, Asc code) {
  std::lock_guard<std::mutex> g(n->ua_mu);
  bool reset = code.asc == 0x29;
  auto& q = n->ua;
  if (reset) {
    // A reset supersedes every older condition of that LUN.
    q.erase(std::remove_if(q.begin(), q.end(), [&](const UaEntry& e) { return e.lun == lun_id; }), q.end());
  } else {
    for (const UaEntry& e : q)
      if (e.lun == lun_id && e.code.asc == code.asc && e.code.ascq == code.ascq) return;
  }
  q.push_back({lun_id, code});
  n->ua_pending.store(true, std::memory_order_release);  // pairs with the acquire in prepare()
}

void Target::Impl::queue_ua_others(Nexus* from, uint64_t lun_id, Asc code) {
  std::lock_guard<std::mutex> g(mu);
  for (Nexus* n : nexuses)
    if (n != from) queue_ua(n, lun_id, code);
}

[[gnu::noinline]] bool Target::Impl::take_ua(Nexus* n, uint64_t lun_id, Asc* out) {
  std::lock_guard<std::mutex> g(n->ua_mu);
  auto& q = n->ua;
  for (auto it = q.begin(); it != q.end(); ++it) {
    if (it->lun == lun_id) {
      *out = it->code;
      q.erase(it);
      if (q.empty()) n->ua_pending.store(false, std::memory_order_relaxed);
      return true;
    }
  }
  return false;
}

void Target::Impl::clear_ua(Nexus* n, Asc code) {
  std::lock_guard<std::mutex> g(n->ua_mu);
  auto& q = n->ua;
  q.erase(std::remove_if(q.begin(), q.end(),
                         [&](const UaEntry& e) { return e.code.asc == code.asc && e.code.ascq == code.ascq; }),
          q.end());
  if (q.empty()) n->ua_pending.store(false, std::memory_order_relaxed);
}

void Target::Impl::lun_ids(std::vector<uint64_t>& out) const {
  std::lock_guard<std::mutex> g(mu);
  for (const auto& l : luns) out.push_back(l->id);
  std::sort(out.begin(), out.end());
}

Target::Target(std::string name, TargetLimits limits) : impl_(std::make_unique<Impl>()) {
  impl_->name = std::move(name);
  impl_->limits = limits;
  impl_->lun_map = std::make_unique<std::atomic<Lun*>[]>(kMaxLuns);  // value-initialized: all null
}

Target::~Target() {
  for (Nexus* n : impl_->nexuses) delete n;
}

const std::string& Target::name() const { return impl_->name; }

int Target::add_lun(LunConfig cfg) {
  if (cfg.id >= kMaxLuns || !cfg.backend) return -EINVAL;
  if (cfg.block_size != 512 && cfg.block_size != 4096) return -EINVAL;
  uint64_t size = cfg.backend->size_bytes();
  if (size == 0 || size % cfg.block_size) return -EINVAL;
  auto l = std::make_unique<Lun>();
  l->id = cfg.id;
  l->bs = cfg.block_size;
  l->bs_shift = cfg.block_size == 512 ? 9 : 12;
  l->nblocks = size >> l->bs_shift;
  l->read_only = cfg.read_only;
  l->thin = cfg.backend->supports_unmap();
  l->mode.wce = cfg.backend->volatile_cache();
  l->force_fua.store(false, std::memory_order_relaxed);  // WCE starts as the cache is
  l->naa = fnv1a(std::to_string(cfg.id), fnv1a(impl_->name + ":"));
  if (cfg.serial.empty()) {
    char buf[17];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(l->naa));
    l->serial = buf;
  } else {
    l->serial = cfg.serial.substr(0, 32);
  }
  l->product = cfg.product.substr(0, 16);
  l->zero_copy_read = cfg.backend->can_map_read();
  l->map_cpu_safe = !cfg.backend->mapped_can_vanish();
  l->be = std::move(cfg.backend);
  l->im = impl_.get();
  Lun* raw = l.get();
  std::lock_guard<std::mutex> g(impl_->mu);
  if (impl_->lun_map[cfg.id].load(std::memory_order_relaxed)) return -EEXIST;
  impl_->luns.push_back(std::move(l));
  for (Nexus* n : impl_->nexuses) {
    impl_->queue_ua(n, cfg.id, asc::power_on_reset);
    for (const auto& other : impl_->luns)
      if (other.get() != raw) impl_->queue_ua(n, other->id, asc::luns_changed);
  }
  impl_->lun_map[cfg.id].store(raw, std::memory_order_release);  // pairs with Impl::lun()
  return 0;
}

std::vector<uint64_t> Target::lun_ids() const {
  std::vector<uint64_t> v;
  impl_->lun_ids(v);
  return v;
}

bool Target::has_lun(uint64_t wire_lun) const { return impl_->lun(decode_lun(wire_lun)) != nullptr; }

Nexus* Target::open_nexus(std::string_view initiator_port_name) {
  auto* n = new Nexus();
  n->initiator = std::string(initiator_port_name);
  std::lock_guard<std::mutex> g(impl_->mu);
  n->ua.reserve(impl_->luns.size() + 4);
  for (const auto& l : impl_->luns) impl_->queue_ua(n, l->id, asc::power_on_reset);
  impl_->nexuses.push_back(n);
  return n;
}

void Target::close_nexus(Nexus* n) {
  if (!n) return;
  {
    std::lock_guard<std::mutex> g(impl_->mu);
    auto& v = impl_->nexuses;
    v.erase(std::remove(v.begin(), v.end(), n), v.end());
  }
  // Nexus loss ends its RESERVE(6/10) reservations (persistent ones stay).
  // luns never shrinks; a LUN added meanwhile cannot be held by n.
  for (uint64_t id : lun_ids())
    if (Lun* l = impl_->lun(id)) spc2_release_nexus(*l, n);
  delete n;
}

bool Target::prepare(Task& t) {
  Impl& im = *impl_;
  t.status = status::good;
  t.sense_len = 0;
  t.xfer_len = 0;
  t.dir = Dir::none;
  t.data_len = 0;
  t.backend_buffer = false;
  scratch(t).gate = kGateNone;  // finish() reads it for every command
  uint64_t id = decode_lun(t.lun);
  Lun* l = im.lun(id);
  t.lun_obj = l;
  uint8_t opc = t.cdb[0];
  int row = find_op(opc, op_has_sa(opc) ? uint16_t(t.cdb[1] & 0x1f) : uint16_t(0xffff));
  unsigned nrows;
  const OpRow* r = row >= 0 ? &op_table(&nrows)[row] : nullptr;
  if (!l && !(r && (r->flags & kNoLunOk))) return check(t, sk::illegal_request, asc::lun_not_supported);
  // Pairs with the release in queue_ua().
  if (l && t.nexus && !(r && (r->flags & kNoUa)) && t.nexus->ua_pending.load(std::memory_order_acquire)) {
    Asc a;
    if (im.take_ua(t.nexus, id, &a)) return check(t, sk::unit_attention, a);
  }
  if (!r) {
    if (op_has_sa(opc) && find_op(opc, 0xfffe) >= 0) return invalid_cdb(t, 1, 4);
    return check(t, sk::illegal_request, asc::invalid_opcode);
  }
  // NACA: we do not support ACA, so SPC-4 wants INVALID FIELD IN CDB.
  if (t.cdb[r->cdb_len - 1] & 0x04) return invalid_cdb(t, uint16_t(r->cdb_len - 1), 2);
  if (l && reservation_conflict(*l, t, r->flags)) {
    t.status = status::reservation_conflict;
    return true;
  }
  t.op_index = uint8_t(row);
  return r->prep(im, t);
}

void Target::execute(Task& t) {
  unsigned n;
  const OpRow& r = op_table(&n)[t.op_index];
  // A reservation taken since prepare() (while this command waited for its
  // Data-Out, say) still stops it: PREEMPT (AND ABORT) is how a cluster
  // fences a node, and a write of the fenced node must not land after the
  // preempt completed. What already reached the backend cannot be recalled.
  if (Lun* l = lun_of(t); l && reservation_conflict(*l, t, r.flags)) {
    t.status = status::reservation_conflict;
    t.sense_len = 0;
    t.xfer_len = 0;
    return finish(t);
  }
  r.exec(*impl_, t);
}

void Target::resume(Task& t) { resume_task(*impl_, t); }

void Target::lun_reset(uint64_t lun) {
  uint64_t id = decode_lun(lun);
  if (!impl_->lun(id)) id = lun;  // accept a plain id too
  if (Lun* l = impl_->lun(id)) spc2_release_nexus(*l, nullptr);  // persistent reservations stay
  // SAM-5 6.3.3: every I_T nexus, the one that asked included (its task
  // set was cleared too; multipath initiators count on seeing it per path).
  impl_->queue_ua_others(nullptr, id, asc::lun_reset);
}

void Target::target_reset() {
  std::vector<uint64_t> ids;
  impl_->lun_ids(ids);
  for (uint64_t id : ids) {
    if (Lun* l = impl_->lun(id)) spc2_release_nexus(*l, nullptr);
    impl_->queue_ua_others(nullptr, id, asc::target_reset);  // every nexus, as for a LUN reset
  }
}

void Target::tasks_cleared_by_other(Nexus* victim, uint64_t lun) {
  if (!victim) return;
  uint64_t id = decode_lun(lun);
  if (!impl_->lun(id)) id = lun;
  impl_->queue_ua(victim, id, asc::cmds_cleared_by_other);
}

int Target::flush_all() {
  std::lock_guard<std::mutex> g(impl_->mu);
  int first = 0;
  for (const auto& l : impl_->luns) {
    int r = l->be->flush_sync();
    if (r && !first) first = r;
  }
  return first;
}

}  // namespace sgv::scsi
