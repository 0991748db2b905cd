// Replays every file under the given directories (or the given files) through
// LLVMFuzzerTestOneInput, so fuzz corpora double as regression tests in
// builds without libFuzzer. Exit status 0 means every input ran to completion.
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

static void run_file(const std::filesystem::path& p, unsigned& n) {
  std::ifstream in(p, std::ios::binary);
  std::vector<uint8_t> buf((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // libFuzzer never passes a null pointer, not even for an empty input.
  static const uint8_t empty = 0;
  LLVMFuzzerTestOneInput(buf.empty() ? &empty : buf.data(), buf.size());
  ++n;
}

int main(int argc, char** argv) {
  unsigned n = 0;
  for (int i = 1; i < argc; ++i) {
    std::filesystem::path p(argv[i]);
    if (std::filesystem::is_directory(p)) {
      for (auto& e : std::filesystem::recursive_directory_iterator(p))
        if (e.is_regular_file()) run_file(e.path(), n);
    } else if (std::filesystem::exists(p)) {
      run_file(p, n);
    }
  }
  // Always exercise the empty input too (non-null, as libFuzzer passes it).
  static const uint8_t empty = 0;
  LLVMFuzzerTestOneInput(&empty, 0);
  std::printf("replayed %u inputs\n", n + 1);
  return 0;
}
