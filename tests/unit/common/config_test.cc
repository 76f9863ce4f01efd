// Regressions found by fuzz/config_fuzz.cc (the crashing input is in fuzz/corpus/config/).
#include "common/config.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

namespace wharf {
namespace {

class ApplyYamlConfigFuzzRegressionTest : public testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() /
           ("wharf-config-test-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir_);
    app_.add_option("--listen", listen_, "");
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  Status Apply(const std::string& yaml) {
    const std::string path = (dir_ / "config.yaml").string();
    std::ofstream(path) << yaml;
    return ApplyYamlConfig(app_, path);
  }

  std::filesystem::path dir_;
  CLI::App app_;
  std::string listen_;
};

// A key that is not a plain scalar (YAML's "? " complex keys, a flow sequence or map as a key)
// made as<std::string>() throw out of ApplyYamlConfig: the process died in std::terminate
// instead of stopping with one line.
TEST_F(ApplyYamlConfigFuzzRegressionTest, NonScalarKeyIsAnError) {
  for (const char* yaml : {"? offline_after: 2.5\n: x\n", "? [a, b]\n: c\n", "{[listen]: x}\n",
                           "{{listen: x}: y}\n"}) {
    Status st;
    EXPECT_NO_THROW(st = Apply(yaml)) << yaml;
    EXPECT_EQ(st.code(), Code::kInvalidArgument) << yaml;
  }
  EXPECT_TRUE(Apply("listen: 127.0.0.1:1\n").ok());
  EXPECT_EQ(listen_, "127.0.0.1:1");
}

}  // namespace
}  // namespace wharf
