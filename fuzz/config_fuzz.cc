// The YAML configuration loader (common/config.h) over any file, applied to a command line of
// the shapes the roles declare (strings, repeatable lists, numbers, a flag), followed by the
// value parsers the roles run on what it set (common/units.h). A bad file is an error, never
// an exception or a crash; flags given on the command line always win.
#include <CLI/CLI.hpp>
#include <cstdint>
#include <string>
#include <vector>

#include "common/config.h"
#include "common/units.h"
#include "fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string path =
      wharf::fuzz::WriteScratchFile("config.yaml", wharf::fuzz::AsText(data, size));

  CLI::App app{"fuzz", "wharf fuzz"};
  std::string config, log_level = "info", listen = "127.0.0.1:7000", chunk_size = "16MiB";
  std::string reserve = "10%", expiry = "24h";
  std::vector<std::string> peers, dirs;
  double offline_after = 3;
  size_t inflight = 4;
  uint16_t port = 7700;
  bool as_json = false;
  app.add_option("--config", config, "");
  app.add_option("--log-level", log_level, "")->capture_default_str();
  app.add_option("--listen", listen, "")->capture_default_str();
  app.add_option("--peer", peers, "");
  app.add_option("--dir", dirs, "");
  app.add_option("--chunk-size", chunk_size, "")->capture_default_str();
  app.add_option("--reserve", reserve, "")->capture_default_str();
  app.add_option("--upload-expiry", expiry, "")->capture_default_str();
  app.add_option("--offline-after", offline_after, "")->capture_default_str();
  app.add_option("--inflight", inflight, "")->capture_default_str();
  app.add_option("--cluster-port", port, "")->capture_default_str();
  app.add_flag("--json", as_json, "");
  std::vector<std::string> args = {"--listen", "cli:1"};
  std::reverse(args.begin(), args.end());
  app.parse(args);

  wharf::Status st = wharf::ApplyYamlConfig(app, path);
  if (!st.ok()) {
    FUZZ_CHECK(st.code() == wharf::Code::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(listen == "cli:1");
  // What the roles do next with the values; each either parses or is an error.
  (void)wharf::ParseBytes(chunk_size);
  (void)wharf::ParseReserve(reserve);
  (void)wharf::ParseDuration(expiry);
  for (const std::string& peer : wharf::SplitCommas(peers)) {
    FUZZ_CHECK(!peer.empty() && peer.find(',') == std::string::npos);
  }
  return 0;
}
