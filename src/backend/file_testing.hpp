// backend/file_testing.hpp - test hooks of the file backend (file.cpp): make
// its inline path see short transfers and errors the kernel rarely gives on
// demand, and tell which path a file LUN takes. Per thread; not for sgvd.
#pragma once

#include <cstddef>

#include "backend/backend.hpp"

namespace sgv::backend::testing {

// The next `calls` inline preadv2/pwritev2 of this thread move at most
// max_bytes (a short transfer the backend must resume after).
void file_inline_short(unsigned calls, size_t max_bytes);
// Then the next `calls` inline syscalls fail with err (negative errno) before
// moving anything: -EAGAIN sends the rest to the ring, others end the Io.
void file_inline_fail(unsigned calls, int err);
// "ring", "nowait" (RWF_NOWAIT inline, ring on -EAGAIN) or "memory" (tmpfs:
// blocking inline), or nullptr when be is not a file LUN.
const char* file_io_path(const Backend& be);

}  // namespace sgv::backend::testing
