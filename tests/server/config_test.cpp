// tests/server/config_test.cpp - sgvd's configuration: every TOML error
// names file, line and key; flags parse (and refuse) as documented; the
// defaults sgvd runs with; validation; the TOML rendering reads back.
#include <gtest/gtest.h>

#include <fstream>
#include <string>
#include <vector>

#include "server/config_load.hpp"

using namespace sgv::server;

namespace {

// Loads `text` as "config.toml"; returns the error ("" on success).
std::string load(const std::string& text, Config* out = nullptr) {
  Config c;
  std::string err;
  int rc = load_config_text(text, "config.toml", c, err);
  if (rc == 0) {
    if (out) *out = c;
    return "";
  }
  EXPECT_FALSE(err.empty());
  return err;
}

// Runs sgvd's flag parser; `text` gets what sgvd would print.
ArgsResult args(std::vector<const char*> v, Config& c, std::string& text) {
  v.insert(v.begin(), "sgvd");
  return parse_args(static_cast<int>(v.size()), v.data(), c, text);
}

const char* kGood = R"(# a full example
reactors = 2
mem_limit = "2G"
lun_mem_limit = "512MiB"
session_mem_limit = 67108864
admin_socket = "/tmp/x.sock"
log_level = "debug"
portal = ["127.0.0.1:3260", "[::1]:3261"]

[iscsi]
max_recv_data_segment_length = "64K"
max_burst_length = 262144
first_burst_length = 65536
immediate_data = false
header_digest = false

[[target]]
name = "iqn.2026-11.io.sgv:disk1"
alias = "disk one"

[[target.lun]]
kind = "ram"
size = "4G"

[[target.lun]]
id = 5
kind = "file"
path = "/var/lib/sgv/disk.img"
direct = true
block_size = 4096

[[target]]
name = "eui.0123456789ABCDEF"
[[target.lun]]
kind = "null"
size = "1T"
)";

}  // namespace

TEST(ConfigSize, Units) {
  uint64_t v = 0;
  ASSERT_TRUE(parse_size("4096", v)); EXPECT_EQ(v, 4096u);
  ASSERT_TRUE(parse_size("512K", v)); EXPECT_EQ(v, 512u << 10);
  ASSERT_TRUE(parse_size("512M", v)); EXPECT_EQ(v, 512u << 20);
  ASSERT_TRUE(parse_size("4G", v)); EXPECT_EQ(v, 4ull << 30);
  ASSERT_TRUE(parse_size("4GiB", v)); EXPECT_EQ(v, 4ull << 30);
  ASSERT_TRUE(parse_size("4gb", v)); EXPECT_EQ(v, 4ull << 30);
  ASSERT_TRUE(parse_size("1T", v)); EXPECT_EQ(v, 1ull << 40);
  ASSERT_TRUE(parse_size("100B", v)); EXPECT_EQ(v, 100u);
  for (const char* bad : {"", "G", "4Q", "4 G", "-1", "4GiBs", "4iB", "99999999999999999999",
                          "16777216T", "1.5G"})
    EXPECT_FALSE(parse_size(bad, v)) << bad;
}

TEST(ConfigPortal, Forms) {
  PortalSpec p;
  ASSERT_TRUE(parse_portal("10.0.0.1:3261", p));
  EXPECT_EQ(p.host, "10.0.0.1");
  EXPECT_EQ(p.port, 3261);
  ASSERT_TRUE(parse_portal("[::1]:3260", p));
  EXPECT_EQ(p.host, "::1");
  EXPECT_EQ(p.port, 3260);
  ASSERT_TRUE(parse_portal("[fe80::1]", p));
  EXPECT_EQ(p.host, "fe80::1");
  EXPECT_EQ(p.port, 3260);
  ASSERT_TRUE(parse_portal("localhost", p));
  EXPECT_EQ(p.port, 3260);
  ASSERT_TRUE(parse_portal("127.0.0.1:0", p));  // any free port
  EXPECT_EQ(p.port, 0);
  for (const char* bad : {"", ":3260", "::1:3260", "[::1", "[]:1", "h:65536", "h:", "h:x1",
                          "[::1]3260", "h:1234567"})
    EXPECT_FALSE(parse_portal(bad, p)) << bad;
}

TEST(ConfigNames, Rfc7143) {
  for (const char* ok : {"iqn.2026-11.io.sgv:default", "iqn.2001-04.com.example",
                         "iqn.2001-04.com.example:storage:diskarrays-sn-a8675309",
                         "iqn.1992-01.com.example.storage:disk.1", "eui.02004567A425678D",
                         "naa.52004567BA64678D", "naa.52004567BA64678D52004567BA64678D"})
    EXPECT_TRUE(valid_iscsi_name(ok)) << ok;
  for (const char* bad : {"", "iqn", "iqn.2026-13.io.sgv", "iqn.2026-00.io.sgv", "iqn.26-11.io.sgv",
                          "iqn.2026-11.", "iqn.2026-11.IO.sgv", "iqn.2026-11.io.sgv:", "iqn.2026-11.io..sgv",
                          "iqn.2026-11.io.sgv:Disk", "iqn.2026-11.io sgv", "eui.0123", "eui.0123456789ABCDEG",
                          "naa.0123456789ABCDE", "foo.bar"})
    EXPECT_FALSE(valid_iscsi_name(bad)) << bad;
  EXPECT_FALSE(valid_iscsi_name("iqn.2026-11.io.sgv:" + std::string(210, 'a')));  // > 223 bytes
}

TEST(ConfigToml, FullExampleLoads) {
  Config c;
  ASSERT_EQ(load(kGood, &c), "");
  EXPECT_EQ(c.reactors, 2u);
  EXPECT_EQ(c.mem_limit, 2ull << 30);
  EXPECT_EQ(c.lun_mem_limit, 512ull << 20);
  EXPECT_EQ(c.session_mem_limit, 64ull << 20);
  EXPECT_EQ(c.admin_socket, "/tmp/x.sock");
  EXPECT_EQ(c.log_level, "debug");
  ASSERT_EQ(c.portals.size(), 2u);
  EXPECT_EQ(c.portals[1].host, "::1");
  EXPECT_EQ(c.portals[1].port, 3261);
  EXPECT_EQ(c.iscsi.max_recv_data_segment_length, 65536u);
  EXPECT_FALSE(c.iscsi.immediate_data);
  EXPECT_FALSE(c.iscsi.allow_header_digest);
  EXPECT_TRUE(c.iscsi.allow_data_digest);
  ASSERT_EQ(c.targets.size(), 2u);
  const auto& t = c.targets[0];
  EXPECT_EQ(t.name, "iqn.2026-11.io.sgv:disk1");
  EXPECT_EQ(t.alias, "disk one");
  ASSERT_EQ(t.luns.size(), 2u);
  EXPECT_EQ(t.luns[0].id, 0u);
  EXPECT_EQ(t.luns[0].size_bytes, 4ull << 30);
  EXPECT_EQ(t.luns[1].id, 5u);
  EXPECT_EQ(t.luns[1].kind, LunSpec::Kind::file);
  EXPECT_EQ(t.luns[1].path, "/var/lib/sgv/disk.img");
  EXPECT_EQ(t.luns[1].size_bytes, 0u);  // the file's own size
  EXPECT_TRUE(t.luns[1].direct);
  EXPECT_EQ(t.luns[1].block_size, 4096u);
  EXPECT_EQ(c.targets[1].luns[0].kind, LunSpec::Kind::null);
  std::string err;
  apply_defaults(c);
  EXPECT_EQ(validate_config(c, err), 0) << err;
}

TEST(ConfigToml, PortalTables) {
  Config c;
  ASSERT_EQ(load("[[portal]]\nhost = \"0.0.0.0\"\nport = 3262\n[[portal]]\nhost = \"::\"\n", &c), "");
  ASSERT_EQ(c.portals.size(), 2u);
  EXPECT_EQ(c.portals[0].host, "0.0.0.0");
  EXPECT_EQ(c.portals[0].port, 3262);
  EXPECT_EQ(c.portals[1].host, "::");
  EXPECT_EQ(c.portals[1].port, 3260);
}

TEST(ConfigToml, TheShippedExampleLoadsAndValidates) {
  Config c;
  std::string err;
  ASSERT_EQ(load_config_file(std::string(SGV_SOURCE_DIR) + "/apps/sgvd.example.toml", c, err), 0) << err;
  apply_defaults(c);
  EXPECT_EQ(validate_config(c, err), 0) << err;
  EXPECT_FALSE(c.targets.empty());
}

// Each error names the file, the line of the offending key, and the key.
struct ErrorCase {
  const char* toml;
  const char* expect;  // the message must start with this
};

class ConfigTomlError : public ::testing::TestWithParam<ErrorCase> {};

TEST_P(ConfigTomlError, NamesLineAndKey) {
  const auto& e = GetParam();
  std::string err = load(e.toml);
  EXPECT_EQ(err.rfind(e.expect, 0), 0u) << "got: " << err << "\nwanted prefix: " << e.expect;
}

#define T1 "[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n[[target.lun]]\n"  // lines 1-3

INSTANTIATE_TEST_SUITE_P(
    Errors, ConfigTomlError,
    ::testing::Values(
        ErrorCase{"reactors = 2\nmem_limt = \"1G\"\n", "config.toml:2: mem_limt: unknown key"},
        ErrorCase{"mem_limit = \"4Q\"\n", "config.toml:1: mem_limit: expected a size like \"4G\", got \"4Q\""},
        ErrorCase{"mem_limit = true\n", "config.toml:1: mem_limit: expected a size like \"4G\", got true"},
        ErrorCase{"reactors = -1\n", "config.toml:1: reactors: must be between"},
        ErrorCase{"reactors = 5000\n", "config.toml:1: reactors: at most 1024"},
        ErrorCase{"reactors = \"two\"\n", "config.toml:1: reactors: expected an integer"},
        ErrorCase{"\nlog_level = \"loud\"\n", "config.toml:2: log_level: expected error, warn"},
        ErrorCase{"portal = [\"127.0.0.1:3260\",\n  \"[::1:3260\"]\n", "config.toml:2: portal: expected \"HOST:PORT\""},
        ErrorCase{"[[portal]]\nhost = \"h\"\nport = 70000\n", "config.toml:3: portal.port: must be between 0 and 65535"},
        ErrorCase{"[[portal]]\nhots = \"h\"\n", "config.toml:2: portal.hots: unknown key"},
        ErrorCase{"reactors = 1\nreactors = 2\n", "config.toml:2: "},  // toml11: duplicate key
        ErrorCase{"a = = 1\n", "config.toml:1: "},                        // syntax
        ErrorCase{"[iscsi]\nmax_burst_length = 100\n", "config.toml:2: iscsi.max_burst_length: must be between 512 and 16777215, got 100"},
        ErrorCase{"[iscsi]\nmax_burst_length = \"16M\"\n", "config.toml:2: iscsi.max_burst_length: must be between 512 and 16777215"},
        ErrorCase{"[iscsi]\nmax_burst_length = 65536\nfirst_burst_length = 131072\n",
                  "config.toml:3: iscsi.first_burst_length: 131072 is larger than max_burst_length 65536"},
        ErrorCase{"[iscsi]\nimmediate_data = 1\n", "config.toml:2: iscsi.immediate_data: expected true or false"},
        ErrorCase{"[iscsi]\nmax_outstanding_r2t = 0\n", "config.toml:2: iscsi.max_outstanding_r2t: must be between 1"},
        ErrorCase{"[iscsi]\nqueue_depth = 0\n", "config.toml:2: iscsi.queue_depth: must be between 1"},
        ErrorCase{"[iscsi]\nmax_xfer_bytes = 1000\n", "config.toml:2: iscsi.max_xfer_bytes: must be a multiple of 512"},
        ErrorCase{"[iscsi]\ndigest = true\n", "config.toml:2: iscsi.digest: unknown key"},
        ErrorCase{"[[target]]\nname = \"iqn.2026-11.IO.sgv\"\n", "config.toml:2: target.name: \"iqn.2026-11.IO.sgv\" is not an iSCSI name"},
        ErrorCase{"[[target]]\nname = \"disk1\"\n", "config.toml:2: target.name: \"disk1\" is not an iSCSI name"},
        ErrorCase{"[[target]]\nalias = \"x\"\n", "config.toml:1: target: a [[target]] needs a name"},
        ErrorCase{"[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n", "config.toml:1: target: target \"iqn.2026-11.io.sgv:a\" has no [[target.lun]]"},
        ErrorCase{"[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\nlunz = 1\n", "config.toml:3: target.lunz: unknown key"},
        ErrorCase{T1 "size = \"4Q\"\n", "config.toml:4: lun.size: expected a size like \"4G\", got \"4Q\""},
        ErrorCase{T1 "kind = \"tape\"\n", "config.toml:4: lun.kind: expected \"ram\", \"file\" or \"null\", got \"tape\""},
        ErrorCase{T1 "block_size = 1024\n", "config.toml:4: lun.block_size: must be 512 or 4096, got 1024"},
        ErrorCase{T1 "kind = \"file\"\nsize = \"1G\"\n", "config.toml:3: lun.path: a file LUN needs a path"},
        ErrorCase{T1 "kind = \"ram\"\npath = \"/x\"\n", "config.toml:5: lun.path: only file LUNs take a path"},
        ErrorCase{T1 "size = 1000\n", "config.toml:4: lun.size: 1000 is not a multiple of block_size 512"},
        ErrorCase{T1 "size = 0\n", "config.toml:4: lun.size: a ram LUN needs a size"},
        ErrorCase{T1 "id = 20000\n", "config.toml:4: lun.id: LUN ids go up to 16383"},
        ErrorCase{T1 "colour = \"red\"\n", "config.toml:4: lun.colour: unknown key"},
        ErrorCase{T1 "direct = \"yes\"\n", "config.toml:4: lun.direct: expected true or false"},
        ErrorCase{T1 "id = 1\n[[target.lun]]\nid = 1\n", "config.toml:6: lun.id: duplicate LUN 1 in target \"iqn.2026-11.io.sgv:a\""},
        ErrorCase{T1 "id = 3\n[[target.lun]]\nid = 3\n", "config.toml:6: lun.id: duplicate LUN 3"},
        ErrorCase{T1 "size = \"1G\"\n[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n[[target.lun]]\n",
                  "config.toml:6: target.name: duplicate target \"iqn.2026-11.io.sgv:a\""}));

#define TC "[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n"  // line 1-2, then CHAP keys

// CHAP: pairs complete, secrets 12+ bytes (RFC 7143 §9.2.1) and different
// per direction; the message names the line and never quotes a secret.
INSTANTIATE_TEST_SUITE_P(
    Chap, ConfigTomlError,
    ::testing::Values(
        ErrorCase{TC "chap_user = \"u\"\nchap_secret = \"short-sec\"\n[[target.lun]]\n",
                  "config.toml:4: target.chap_secret: at least 12 bytes (RFC 7143 §9.2.1: shorter CHAP secrets need IPsec), got 9"},
        ErrorCase{TC "chap_user = \"u\"\n[[target.lun]]\n", "config.toml:3: target.chap_secret: chap_user needs a chap_secret"},
        ErrorCase{TC "chap_secret = \"0123456789abc\"\n[[target.lun]]\n", "config.toml:3: target.chap_user: chap_secret needs a chap_user"},
        ErrorCase{TC "chap_user = 5\n[[target.lun]]\n", "config.toml:3: target.chap_user: expected a string"},
        ErrorCase{TC "mutual_user = \"t\"\nmutual_secret = \"0123456789abc\"\n[[target.lun]]\n",
                  "config.toml:3: target.mutual_user: mutual CHAP needs chap_user and chap_secret too"},
        ErrorCase{TC "chap_user = \"u\"\nchap_secret = \"0123456789abc\"\nmutual_user = \"t\"\nmutual_secret = \"0123456789abc\"\n[[target.lun]]\n",
                  "config.toml:6: target.mutual_secret: must differ from chap_secret"},
        ErrorCase{TC "chap_user = \"u\"\nchap_secret = \"0123456789abc\"\nmutual_user = \"t\"\nmutual_secret = \"tiny\"\n[[target.lun]]\n",
                  "config.toml:6: target.mutual_secret: at least 12 bytes"},
        ErrorCase{"[discovery]\nchap_user = \"d\"\nchap_secret = \"abc\"\n", "config.toml:3: discovery.chap_secret: at least 12 bytes"},
        ErrorCase{"[discovery]\nchap_usr = \"d\"\n", "config.toml:2: discovery.chap_usr: unknown key"},
        ErrorCase{"discovery = 1\n", "config.toml:1: discovery: expected a table [discovery]"}));

TEST(ConfigToml, ChapLoads) {
  Config c;
  ASSERT_EQ(load("[discovery]\nchap_user = \"d\"\nchap_secret = \"discovery-secret\"\n" TC
                 "chap_user = \"u\"\nchap_secret = \"initiator-secret\"\nmutual_user = \"t\"\n"
                 "mutual_secret = \"target-secret-x\"\n[[target.lun]]\n",
                 &c),
            "");
  EXPECT_EQ(c.discovery_chap.user, "d");
  EXPECT_EQ(c.discovery_chap.secret, "discovery-secret");
  EXPECT_TRUE(c.discovery_chap.mutual_user.empty());
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].chap.user, "u");
  EXPECT_EQ(c.targets[0].chap.secret, "initiator-secret");
  EXPECT_EQ(c.targets[0].chap.mutual_user, "t");
  EXPECT_EQ(c.targets[0].chap.mutual_secret, "target-secret-x");
  apply_defaults(c);
  std::string err;
  EXPECT_EQ(validate_config(c, err), 0) << err;
  // Rendering (what sgvctl shows) keeps the names, never the secrets.
  std::string text = config_to_toml(c);
  EXPECT_NE(text.find("chap_user = \"u\""), std::string::npos) << text;
  EXPECT_NE(text.find("mutual_user = \"t\""), std::string::npos) << text;
  EXPECT_EQ(text.find("secret-"), std::string::npos) << text;
  EXPECT_EQ(text.find("discovery-secret"), std::string::npos) << text;
}

TEST(ConfigValidate, ChapChecked) {
  Config c;
  apply_defaults(c);
  std::string err;
  c.targets[0].chap = {"u", "too-short", "", ""};
  EXPECT_NE(validate_config(c, err), 0);
  EXPECT_EQ(err.rfind("target \"iqn.2026-11.io.sgv:default\": chap_secret: at least 12 bytes", 0), 0u) << err;
  EXPECT_EQ(err.find("too-short"), std::string::npos) << err;
  c.targets[0].chap = {};
  c.discovery_chap = {"", "", "t", "0123456789abc"};
  EXPECT_NE(validate_config(c, err), 0);
  EXPECT_EQ(err.rfind("discovery.mutual_user: mutual CHAP needs", 0), 0u) << err;
}

TEST(ConfigToml, FailureLeavesConfigAlone) {
  Config c;
  c.reactors = 7;
  std::string err;
  EXPECT_NE(load_config_text("reactors = 3\nbogus = 1\n", "x.toml", c, err), 0);
  EXPECT_EQ(c.reactors, 7u);
}

TEST(ConfigToml, MissingFileNamesPath) {
  Config c;
  std::string err;
  EXPECT_NE(load_config_file("/nonexistent/sgvd.toml", c, err), 0);
  EXPECT_EQ(err, "/nonexistent/sgvd.toml: No such file or directory");
}

TEST(ConfigDefaults, NoArgumentsServesOneGibRamLun) {
  Config c;
  std::string text;
  ASSERT_EQ(args({}, c, text), ArgsResult::run);
  apply_defaults(c);
  ASSERT_EQ(c.portals.size(), 1u);
  EXPECT_EQ(c.portals[0].host, "127.0.0.1");
  EXPECT_EQ(c.portals[0].port, 3260);
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].name, "iqn.2026-11.io.sgv:default");
  ASSERT_EQ(c.targets[0].luns.size(), 1u);
  EXPECT_EQ(c.targets[0].luns[0].id, 0u);
  EXPECT_EQ(c.targets[0].luns[0].kind, LunSpec::Kind::ram);
  EXPECT_EQ(c.targets[0].luns[0].size_bytes, 1ull << 30);
  EXPECT_GT(c.mem_limit, 0u);
  EXPECT_EQ(c.lun_mem_limit, c.mem_limit / 5 * 2);
  EXPECT_EQ(c.session_mem_limit, uint64_t{c.iscsi.max_xfer_bytes} * c.iscsi.queue_depth / 4);
  EXPECT_EQ(c.targets[0].luns[0].mem_limit, c.lun_mem_limit);
  std::string err;
  EXPECT_EQ(validate_config(c, err), 0) << err;
}

TEST(ConfigDefaults, ExplicitValuesKept) {
  Config c;
  c.mem_limit = 1ull << 30;
  c.lun_mem_limit = 100 << 20;
  c.session_mem_limit = 8 << 20;
  apply_defaults(c);
  EXPECT_EQ(c.mem_limit, 1ull << 30);
  EXPECT_EQ(c.lun_mem_limit, 100u << 20);
  EXPECT_EQ(c.session_mem_limit, 8u << 20);
}

TEST(ConfigArgs, CommonFlags) {
  Config c;
  std::string text;
  ASSERT_EQ(args({"--portal", "127.0.0.1:3261", "--portal=[::1]:3262", "--target",
                  "iqn.2026-11.com.example:t1", "--lun", "ram:64M", "--lun",
                  "file:/tmp/d.img,size=1G,direct", "--lun", "null:1T,block_size=4096,ro",
                  "--mem-limit", "2G", "--reactors", "3", "--admin-socket", "/tmp/a.sock",
                  "--log-level", "warn"},
                 c, text),
            ArgsResult::run)
      << text;
  ASSERT_EQ(c.portals.size(), 2u);
  EXPECT_EQ(c.portals[0].port, 3261);
  EXPECT_EQ(c.portals[1].host, "::1");
  ASSERT_EQ(c.targets.size(), 1u);
  const auto& t = c.targets[0];
  EXPECT_EQ(t.name, "iqn.2026-11.com.example:t1");
  ASSERT_EQ(t.luns.size(), 3u);
  EXPECT_EQ(t.luns[0].id, 0u);
  EXPECT_EQ(t.luns[0].size_bytes, 64u << 20);
  EXPECT_EQ(t.luns[1].id, 1u);
  EXPECT_EQ(t.luns[1].kind, LunSpec::Kind::file);
  EXPECT_EQ(t.luns[1].path, "/tmp/d.img");
  EXPECT_EQ(t.luns[1].size_bytes, 1ull << 30);
  EXPECT_TRUE(t.luns[1].direct);
  EXPECT_EQ(t.luns[2].kind, LunSpec::Kind::null);
  EXPECT_EQ(t.luns[2].block_size, 4096u);
  EXPECT_TRUE(t.luns[2].read_only);
  EXPECT_EQ(c.mem_limit, 2ull << 30);
  EXPECT_EQ(c.reactors, 3u);
  EXPECT_EQ(c.admin_socket, "/tmp/a.sock");
  EXPECT_EQ(c.log_level, "warn");
  apply_defaults(c);
  std::string err;
  EXPECT_EQ(validate_config(c, err), 0) << err;
}

TEST(ConfigArgs, FileLunWithoutSizeUsesTheFile) {
  Config c;
  std::string text;
  ASSERT_EQ(args({"--lun", "file:/tmp/x"}, c, text), ArgsResult::run) << text;
  ASSERT_EQ(c.targets.size(), 1u);
  EXPECT_EQ(c.targets[0].name, "iqn.2026-11.io.sgv:default");
  EXPECT_EQ(c.targets[0].luns[0].size_bytes, 0u);
}

TEST(ConfigArgs, BareTargetGetsDefaultLun) {
  Config c;
  std::string text;
  ASSERT_EQ(args({"--target", "iqn.2026-11.com.example:x"}, c, text), ArgsResult::run);
  ASSERT_EQ(c.targets.size(), 1u);
  ASSERT_EQ(c.targets[0].luns.size(), 1u);
  EXPECT_EQ(c.targets[0].luns[0].size_bytes, 1ull << 30);
}

TEST(ConfigArgs, HelpAndVersionExitZero) {
  Config c;
  std::string text;
  EXPECT_EQ(args({"--help"}, c, text), ArgsResult::exit_ok);
  EXPECT_NE(text.find("--portal HOST:PORT"), std::string::npos);
  EXPECT_EQ(args({"--lun", "ram:1G", "--version"}, c, text), ArgsResult::exit_ok);
  EXPECT_EQ(text.rfind("sgv ", 0), 0u);
}

TEST(ConfigArgs, BadFlagsAreUsageErrors) {
  struct Bad {
    std::vector<const char*> argv;
    const char* msg;
  };
  const Bad cases[] = {
      {{"--bogus"}, "sgvd: unknown option '--bogus'"},
      {{"stray"}, "sgvd: unexpected argument 'stray'"},
      {{"--portal"}, "sgvd: --portal: needs a value"},
      {{"--portal", "::1:3260"}, "sgvd: --portal: expected HOST:PORT"},
      {{"--portal", "h:99999"}, "sgvd: --portal: expected HOST:PORT"},
      {{"--lun", "ram:4Q"}, "sgvd: --lun ram:4Q: expected a size like \"4G\", got \"4Q\""},
      {{"--lun", "tape:1G"}, "sgvd: --lun tape:1G: unknown LUN kind \"tape\""},
      {{"--lun", "1G"}, "sgvd: --lun 1G: expected ram:SIZE"},
      {{"--lun", "file:"}, "sgvd: --lun file:: file: needs a path"},
      {{"--lun", "ram:1G,direct"}, "sgvd: --lun ram:1G,direct: direct: only file LUNs"},
      {{"--lun", "ram:1G,block_size=1024"}, "sgvd: --lun ram:1G,block_size=1024: block_size: must be 512 or 4096"},
      {{"--lun", "file:/x,sparkly"}, "sgvd: --lun file:/x,sparkly: unknown option \"sparkly\""},
      {{"--target", "Disk1"}, "sgvd: --target: 'Disk1' is not an iSCSI name"},
      {{"--mem-limit", "lots"}, "sgvd: --mem-limit: expected a size"},
      {{"--mem-limit", "0"}, "sgvd: --mem-limit: expected a size"},
      {{"--reactors", "-2"}, "sgvd: --reactors: expected 0..1024"},
      {{"--reactors", "2000"}, "sgvd: --reactors: expected 0..1024"},
      {{"--log-level", "loud"}, "sgvd: --log-level: expected error, warn, info or debug"},
      {{"--config", "/nonexistent.toml"}, "sgvd: /nonexistent.toml: No such file or directory"},
  };
  for (const auto& b : cases) {
    Config c;
    std::string text;
    EXPECT_EQ(args(b.argv, c, text), ArgsResult::exit_usage) << b.msg;
    EXPECT_EQ(text.rfind(b.msg, 0), 0u) << "got: " << text;
    EXPECT_NE(text.find("Try 'sgvd --help'"), std::string::npos);
  }
}

TEST(ConfigArgs, FlagsOverrideConfigFile) {
  std::string path = std::string(SGV_BINARY_DIR) + "/config_test_override.toml";
  {
    std::ofstream f(path);
    f << "reactors = 4\nportal = [\"127.0.0.1:4000\"]\n"
         "[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n[[target.lun]]\nsize = \"1G\"\n"
         "[[target]]\nname = \"iqn.2026-11.io.sgv:b\"\n[[target.lun]]\nsize = \"1G\"\n";
  }
  Config c;
  std::string text;
  // --config comes after the flag it is overridden by: order must not matter.
  ASSERT_EQ(args({"--portal", "127.0.0.1:4001", "--config", path.c_str(), "--target",
                  "iqn.2026-11.io.sgv:b", "--lun", "ram:2G"},
                 c, text),
            ArgsResult::run)
      << text;
  EXPECT_EQ(c.reactors, 4u);
  ASSERT_EQ(c.portals.size(), 1u);
  EXPECT_EQ(c.portals[0].port, 4001);
  ASSERT_EQ(c.targets.size(), 2u);
  EXPECT_EQ(c.targets[1].luns[0].size_bytes, 2ull << 30);
  EXPECT_EQ(c.targets[0].luns[0].size_bytes, 1ull << 30);
}

TEST(ConfigArgs, ConfigFileErrorsKeepTheirLine) {
  std::string path = std::string(SGV_BINARY_DIR) + "/config_test_bad.toml";
  {
    std::ofstream f(path);
    f << "# comment\n\n[[target]]\nname = \"iqn.2026-11.io.sgv:a\"\n[[target.lun]]\nsize = \"4Q\"\n";
  }
  Config c;
  std::string text;
  ASSERT_EQ(args({"--config", path.c_str()}, c, text), ArgsResult::exit_usage);
  EXPECT_EQ(text.rfind("sgvd: " + path + ":6: lun.size: expected a size like \"4G\", got \"4Q\"", 0), 0u)
      << text;
}

TEST(ConfigValidate, CatchesWhatFlagsCanBuild) {
  Config base;
  apply_defaults(base);
  std::string err;
  {
    Config c = base;
    c.targets.push_back(c.targets[0]);
    EXPECT_NE(validate_config(c, err), 0);
    EXPECT_NE(err.find("duplicate target"), std::string::npos) << err;
  }
  {
    Config c = base;
    c.targets[0].luns.push_back(c.targets[0].luns[0]);
    EXPECT_NE(validate_config(c, err), 0);
    EXPECT_NE(err.find("duplicate LUN id"), std::string::npos) << err;
  }
  {
    Config c = base;
    c.targets[0].luns[0].block_size = 2048;
    EXPECT_NE(validate_config(c, err), 0);
    EXPECT_NE(err.find("block_size: must be 512 or 4096"), std::string::npos) << err;
  }
  {
    Config c = base;
    c.iscsi.first_burst_length = c.iscsi.max_burst_length + 512;
    EXPECT_NE(validate_config(c, err), 0);
    EXPECT_EQ(err.rfind("iscsi.first_burst_length", 0), 0u) << err;
  }
  {
    Config c = base;
    c.iscsi.max_recv_data_segment_length = 16777216;
    EXPECT_NE(validate_config(c, err), 0);
  }
  {
    Config c = base;
    c.targets[0].luns.clear();
    EXPECT_NE(validate_config(c, err), 0);
  }
  {
    Config c = base;
    c.targets[0].luns[0].kind = LunSpec::Kind::file;
    EXPECT_NE(validate_config(c, err), 0);
    EXPECT_NE(err.find("path"), std::string::npos) << err;
  }
}

TEST(ConfigRender, RoundTrips) {
  Config c;
  ASSERT_EQ(load(kGood, &c), "");
  apply_defaults(c);
  c.targets[0].allowed_initiators = {"iqn.1993-08.org.debian:01:abc"};
  c.targets[0].luns[0].serial = ".dotted \"quoted\"";
  std::string text = config_to_toml(c);
  Config back;
  std::string err;
  ASSERT_EQ(load_config_text(text, "rendered", back, err), 0) << err << "\n" << text;
  EXPECT_EQ(config_to_toml(back), text);
  EXPECT_EQ(back.targets[0].luns[1].path, "/var/lib/sgv/disk.img");
  EXPECT_EQ(back.targets[0].luns[0].serial, ".dotted \"quoted\"");
  EXPECT_EQ(back.portals[1].host, "::1");
  EXPECT_EQ(back.iscsi.first_burst_length, c.iscsi.first_burst_length);
}
