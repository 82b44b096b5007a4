// The systemd files: `make install` (cmake --install into a scratch DESTDIR) puts the binary, the
// unit, the sysusers file and the default config in place, the installed unit passes
// `systemd-analyze verify` without a single warning, and the default config (a commented
// example) passes `pgfanout check` once uncommented.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "support/TestSupport.hpp"

namespace pgfanout {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

std::pair<int, std::string> sh(const std::string& command) {
  auto out = test::write_temp_file("sh.out", "");
  int rc = std::system((command + " >" + out + " 2>&1").c_str());
  return {WIFEXITED(rc) ? WEXITSTATUS(rc) : -1, slurp(out)};
}

struct Installed : ::testing::Test {
  static void SetUpTestSuite() {
    root = fs::path(test::write_temp_file("x", "")).parent_path() / "root";
    auto [rc, out] = sh("DESTDIR=" + root.string() + " " PGFANOUT_CMAKE " --install " +
                        PGFANOUT_BUILD_DIR " --prefix /usr");
    ASSERT_EQ(rc, 0) << out;
  }
  static inline fs::path root;
};

TEST_F(Installed, FilesAreWhereSystemdLooks) {
  EXPECT_TRUE(fs::exists(root / "usr/bin/pgfanout"));
  EXPECT_TRUE(fs::exists(root / "usr/lib/systemd/system/pgfanout.service"));
  EXPECT_TRUE(fs::exists(root / "usr/lib/sysusers.d/pgfanout.conf"));
  EXPECT_TRUE(fs::exists(root / "etc/pgfanout/pgfanout.yaml"));
  EXPECT_TRUE(fs::exists(root / "usr/share/doc/pgfanout/operations.md"));
  EXPECT_TRUE(fs::exists(root / "usr/share/man/man8/pgfanout.8"));
  auto unit = slurp(root / "usr/lib/systemd/system/pgfanout.service");
  EXPECT_NE(unit.find("ExecStart=/usr/bin/pgfanout run --config /etc/pgfanout/pgfanout.yaml\n"),
            std::string::npos)
      << unit;
  EXPECT_NE(slurp(root / "usr/lib/sysusers.d/pgfanout.conf").find("u pgfanout "),
            std::string::npos);
}

TEST_F(Installed, AnEditedConfigIsNotOverwritten) {
  { std::ofstream(root / "etc/pgfanout/pgfanout.yaml", std::ios::app) << "# edited by hand\n"; }
  auto [rc, out] = sh("DESTDIR=" + root.string() + " " PGFANOUT_CMAKE " --install " +
                      PGFANOUT_BUILD_DIR " --prefix /usr");
  ASSERT_EQ(rc, 0) << out;
  EXPECT_NE(out.find("Keeping existing"), std::string::npos) << out;
  EXPECT_NE(slurp(root / "etc/pgfanout/pgfanout.yaml").find("# edited by hand"), std::string::npos);
}

TEST_F(Installed, UnitVerifiesCleanly) {
  // make test's preflight guarantees systemd-analyze; a skip here would hide a broken install.
  ASSERT_EQ(sh("command -v systemd-analyze").first, 0)
      << "systemd-analyze is missing (Debian package systemd, scripts/install-deps.sh installs it)";
  // verify wants the ExecStart binary to exist: point the installed unit at the installed copy.
  auto unit = slurp(root / "usr/lib/systemd/system/pgfanout.service");
  unit = std::regex_replace(unit, std::regex("/usr/bin/pgfanout"),
                            (root / "usr/bin/pgfanout").string());
  auto path = fs::path(test::write_temp_file("pgfanout.service", unit));
  // --man=no: Documentation=man:pgfanout(8) is in the scratch root, not where man(1) looks
  // (deb_test verifies the packaged unit with its man page installed).
  auto [rc, out] = sh("systemd-analyze verify --man=no " + path.string());
  EXPECT_EQ(rc, 0) << out;
  EXPECT_EQ(out, "") << "systemd-analyze has remarks:\n" << out;
}

TEST(SystemdUnit, HasTheServiceContract) {
  auto unit = slurp(fs::path(PGFANOUT_SOURCE_DIR) / "systemd/pgfanout.service");
  for (const char* line :
       {"Type=notify\n", "ExecReload=/bin/kill -HUP $MAINPID\n", "WatchdogSec=30s\n",
        "Restart=on-failure\n", "NoNewPrivileges=yes\n", "ProtectSystem=strict\n",
        "ProtectHome=yes\n", "PrivateTmp=yes\n",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6\n", "CapabilityBoundingSet=\n",
        "SystemCallFilter=@system-service\n", "EnvironmentFile=-/etc/pgfanout/env\n"}) {
    EXPECT_NE(unit.find(line), std::string::npos) << line;
  }
}

// The shipped config is all comments (the unit's ExecCondition= skips the start until a line is a
// setting); uncommented as it says (drop the "#" of each line from "#version: 1" on), it passes.
TEST(SystemdUnit, DefaultConfigIsACommentedExampleThatPassesCheck) {
  std::istringstream in(slurp(fs::path(PGFANOUT_SOURCE_DIR) / "systemd/pgfanout.yaml"));
  std::string line, uncommented;
  bool settings = false;
  for (int n = 1; std::getline(in, line); ++n) {
    EXPECT_TRUE(line.empty() || line[0] == '#') << "line " << n << " is a setting: " << line;
    settings = settings || line == "#version: 1";
    uncommented += (settings && !line.empty() ? line.substr(1) : line) + "\n";
  }
  ASSERT_TRUE(settings) << "no \"#version: 1\" line";
  auto [code, out] = test::run_pgfanout(
      {"check", "--config", test::write_temp_file("pgfanout.yaml", uncommented)});
  EXPECT_EQ(code, 0) << out << uncommented;
}

}  // namespace
}  // namespace pgfanout
