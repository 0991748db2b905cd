// tests/server/conn_initiator.hpp - a minimal in-test iSCSI initiator over a
// blocking loopback socket, for driving a real Server and asserting the
// exact PDUs it answers with. Header-only so it links into no other test.
#pragma once

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "iscsi/crc32c.hpp"
#include "iscsi/pdu.hpp"
#include "server/config.hpp"
#include "server/server.hpp"

namespace sgv::testing {

using iscsi::Bhs;
using iscsi::Op;

struct Pdu {
  Bhs h{};
  std::vector<uint8_t> data;
  Op op() const { return h.opcode(); }
};

inline const char* kTarget = "iqn.2026-11.io.sgv:test";

inline server::Config small_config(uint64_t lun_bytes = 16u << 20) {
  server::Config c;
  c.portals.push_back({"127.0.0.1", 0});
  server::TargetSpec t;
  t.name = kTarget;
  server::LunSpec l;
  l.size_bytes = lun_bytes;
  t.luns.push_back(l);
  c.targets.push_back(t);
  c.reactors = 1;
  c.mem_limit = 256u << 20;
  c.iscsi.nop_interval_s = 0;
  return c;
}

class Initiator {
 public:
  explicit Initiator(uint16_t port) {
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    int one = 1;
    setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  ~Initiator() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool connected() const { return ok_; }
  int fd() const { return fd_; }

  bool send_raw(const void* p, size_t n) {
    const uint8_t* b = static_cast<const uint8_t*>(p);
    while (n) {
      ssize_t r = ::send(fd_, b, n, MSG_NOSIGNAL);
      if (r <= 0) return false;
      b += r;
      n -= size_t(r);
    }
    return true;
  }
  // bad_data_digest: corrupt the data digest (tests the target's check).
  bool send(const Bhs& h, const void* data = nullptr, uint32_t len = 0, bool bad_data_digest = false) {
    Bhs x = h;
    x.set_data_len(len);
    if (!send_raw(x.b, 48)) return false;
    uint8_t d[4];
    if (hd_) {
      iscsi::put_digest(d, iscsi::crc32c(x.b, 48));
      if (!send_raw(d, 4)) return false;
    }
    if (len) {
      if (!send_raw(data, len)) return false;
      static const uint8_t pad[4] = {};
      if (iscsi::pad_len(len) && !send_raw(pad, iscsi::pad_len(len))) return false;
      if (dd_) {
        uint32_t c = iscsi::crc32c_update(iscsi::kCrc32cInit, data, len);
        c = iscsi::crc32c_update(c, pad, iscsi::pad_len(len));
        iscsi::put_digest(d, iscsi::crc32c_final(c) ^ (bad_data_digest ? 1u : 0u));
        if (!send_raw(d, 4)) return false;
      }
    }
    return true;
  }
  bool hd_ = false, dd_ = false;  // digests in force (after login)
  bool digest_error_ = false;     // a received digest did not match
  bool recv_raw(void* p, size_t n, int timeout_ms) {
    uint8_t* b = static_cast<uint8_t*>(p);
    while (n) {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, timeout_ms) <= 0) return false;
      ssize_t r = ::recv(fd_, b, n, 0);
      if (r <= 0) return false;
      b += r;
      n -= size_t(r);
    }
    return true;
  }
  // false on timeout or close.
  bool recv(Pdu& p, int timeout_ms = 5000) {
    if (!recv_raw(p.h.b, 48, timeout_ms)) return false;
    uint8_t d[4];
    if (hd_) {
      if (!recv_raw(d, 4, timeout_ms)) return false;
      if (iscsi::get_digest(d) != iscsi::crc32c(p.h.b, 48)) digest_error_ = true;
    }
    uint32_t n = p.h.data_len();
    p.data.resize(n);
    if (n && !recv_raw(p.data.data(), n, timeout_ms)) return false;
    uint8_t pad[4] = {};
    if (iscsi::pad_len(n) && !recv_raw(pad, iscsi::pad_len(n), timeout_ms)) return false;
    if (dd_ && n) {
      if (!recv_raw(d, 4, timeout_ms)) return false;
      uint32_t c = iscsi::crc32c_update(iscsi::kCrc32cInit, p.data.data(), n);
      c = iscsi::crc32c_update(c, pad, iscsi::pad_len(n));
      if (iscsi::get_digest(d) != iscsi::crc32c_final(c)) digest_error_ = true;
    }
    stat_sn_ = p.h.stat_sn() + 1;
    if (p.op() != Op::r2t && p.op() != Op::data_in) {
      exp_cmd_sn_seen_ = p.h.exp_cmd_sn();
      max_cmd_sn_ = p.h.max_cmd_sn();
    } else {
      max_cmd_sn_ = p.h.max_cmd_sn();
    }
    return true;
  }
  // True when the server closed the connection (EOF) within the timeout.
  bool closed_by_peer(int timeout_ms = 5000) {
    for (;;) {
      pollfd pf{fd_, POLLIN, 0};
      if (poll(&pf, 1, timeout_ms) <= 0) return false;
      uint8_t b[4096];
      ssize_t r = ::recv(fd_, b, sizeof b, 0);
      if (r <= 0) return true;
    }
  }

  static std::string kv(const std::map<std::string, std::string>& m) {
    std::string s;
    for (auto& [k, v] : m) {
      s += k + "=" + v;
      s.push_back('\0');
    }
    return s;
  }
  static std::map<std::string, std::string> parse(const std::vector<uint8_t>& d) {
    std::map<std::string, std::string> m;
    std::string s(d.begin(), d.end());
    size_t pos = 0;
    while (pos < s.size()) {
      size_t z = s.find('\0', pos);
      if (z == std::string::npos) z = s.size();
      std::string item = s.substr(pos, z - pos);
      size_t eq = item.find('=');
      if (eq != std::string::npos) m[item.substr(0, eq)] = item.substr(eq + 1);
      pos = z + 1;
    }
    return m;
  }

  // One-step login straight to full feature phase. Returns the response.
  bool login(std::map<std::string, std::string> extra = {}, Pdu* rsp_out = nullptr, bool discovery = false) {
    std::map<std::string, std::string> keys = {
        {"InitiatorName", "iqn.2026-11.io.sgv:test-initiator"},
        {"SessionType", discovery ? "Discovery" : "Normal"},
        {"HeaderDigest", "None"},
        {"DataDigest", "None"},
        {"MaxRecvDataSegmentLength", "65536"},
        {"InitialR2T", "No"},
        {"ImmediateData", "Yes"},
        {"FirstBurstLength", "65536"},
        {"MaxBurstLength", "262144"},
        {"MaxOutstandingR2T", "1"},
        {"ErrorRecoveryLevel", "0"},
    };
    if (!discovery) keys["TargetName"] = kTarget;
    for (auto& [k, v] : extra) keys[k] = v;
    std::string text = kv(keys);
    Bhs h{};
    h.set_opcode(Op::login_req, true);
    h.set_flags(0x80 | (1 << 2) | 3);  // T, CSG=operational, NSG=full feature
    h.set16(8, 0x8000);
    h.set32(10, isid_);
    h.set_itt(itt_++);
    h.set32(24, cmd_sn_);
    h.set32(28, stat_sn_);
    if (!send(h, text.data(), uint32_t(text.size()))) return false;
    Pdu r;
    if (!recv(r)) return false;
    if (rsp_out) *rsp_out = r;
    if (r.op() != Op::login_rsp || r.h.status_class() != 0 || !r.h.transit()) return false;
    auto got = parse(r.data);
    if (got.count("MaxRecvDataSegmentLength")) target_mrdsl_ = std::stoul(got["MaxRecvDataSegmentLength"]);
    negotiated_ = got;
    hd_ = got["HeaderDigest"] == "CRC32C";
    dd_ = got["DataDigest"] == "CRC32C";
    return true;
  }

  // SCSI Command. data: immediate data (already cut to what the caller wants).
  bool scsi(const uint8_t* cdb, uint32_t edtl, bool r, bool w, uint32_t* itt_out, const void* imm = nullptr,
            uint32_t imm_len = 0, bool final = true, bool immediate = false, uint64_t lun = 0,
            bool bad_digest = false) {
    Bhs h{};
    h.set_opcode(Op::scsi_cmd, immediate);
    h.set_flags(uint8_t((final ? 0x80 : 0) | (r ? 0x40 : 0) | (w ? 0x20 : 0) | 1));
    h.set_lun(lun);
    uint32_t itt = itt_++;
    h.set_itt(itt);
    h.set32(20, edtl);
    h.set32(24, cmd_sn_);
    if (!immediate) ++cmd_sn_;
    h.set32(28, stat_sn_);
    std::memcpy(h.b + 32, cdb, 16);
    if (itt_out) *itt_out = itt;
    return send(h, imm, imm_len, bad_digest);
  }
  bool data_out(uint32_t itt, uint32_t ttt, uint32_t data_sn, uint32_t offset, const void* d, uint32_t len,
                bool final) {
    Bhs h{};
    h.set_opcode(Op::data_out);
    h.set_flags(final ? 0x80 : 0);
    h.set_itt(itt);
    h.set_ttt(ttt);
    h.set32(28, stat_sn_);
    h.set32(36, data_sn);
    h.set32(40, offset);
    return send(h, d, len);
  }
  bool nop(uint32_t* itt_out, const void* d = nullptr, uint32_t len = 0) {
    Bhs h{};
    h.set_opcode(Op::nop_out, true);
    h.set_flags(0x80);
    uint32_t itt = itt_++;
    h.set_itt(itt);
    h.set_ttt(iscsi::kReservedTag);
    h.set32(24, cmd_sn_);
    h.set32(28, stat_sn_);
    if (itt_out) *itt_out = itt;
    return send(h, d, len);
  }
  bool logout() {
    Bhs h{};
    h.set_opcode(Op::logout_req, true);
    h.set_flags(0x80);
    h.set_itt(itt_++);
    h.set32(24, cmd_sn_);
    h.set32(28, stat_sn_);
    return send(h);
  }

  // Runs a command to completion: immediate data as allowed, answers R2Ts,
  // collects Data-In. Returns the status (-1 on a protocol surprise).
  int run(const uint8_t* cdb, uint32_t edtl, bool r, bool w, const uint8_t* out, uint8_t* in, uint32_t* in_len,
          uint32_t imm_max, Pdu* rsp = nullptr, uint32_t* r2ts = nullptr) {
    uint32_t itt;
    uint32_t imm = w ? std::min(edtl, imm_max) : 0;
    if (!scsi(cdb, edtl, r, w, &itt, out, imm, true)) return -1;
    uint32_t got = 0;
    for (;;) {
      Pdu p;
      if (!recv(p)) return -1;
      if (p.op() == Op::r2t) {
        if (r2ts) ++*r2ts;
        uint32_t off = p.h.buffer_offset(), len = p.h.desired_len(), sn = 0;
        for (uint32_t done = 0; done < len;) {
          uint32_t n = std::min(len - done, target_mrdsl_);
          if (!data_out(itt, p.h.ttt(), sn++, off + done, out + off + done, n, done + n == len)) return -1;
          done += n;
        }
      } else if (p.op() == Op::data_in) {
        if (in) std::memcpy(in + p.h.buffer_offset(), p.data.data(), p.data.size());
        got += uint32_t(p.data.size());
        if (p.h.flags() & Bhs::kS) {
          if (in_len) *in_len = got;
          if (rsp) *rsp = p;
          return p.h.status();
        }
      } else if (p.op() == Op::scsi_rsp) {
        if (in_len) *in_len = got;
        if (rsp) *rsp = p;
        return p.h.status();
      } else {
        return -1;
      }
    }
  }

  uint32_t cmd_sn_ = 1, stat_sn_ = 0, itt_ = 0x100, isid_ = 0x1234;
  uint32_t exp_cmd_sn_seen_ = 0, max_cmd_sn_ = 0;
  uint32_t target_mrdsl_ = 8192;
  std::map<std::string, std::string> negotiated_;

 private:
  int fd_ = -1;
  bool ok_ = false;
};

inline void cdb_rw10(uint8_t* c, uint8_t op, uint32_t lba, uint16_t blocks) {
  std::memset(c, 0, 16);
  c[0] = op;
  c[2] = uint8_t(lba >> 24);
  c[3] = uint8_t(lba >> 16);
  c[4] = uint8_t(lba >> 8);
  c[5] = uint8_t(lba);
  c[7] = uint8_t(blocks >> 8);
  c[8] = uint8_t(blocks);
}

}  // namespace sgv::testing
