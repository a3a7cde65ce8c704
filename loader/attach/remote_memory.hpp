// Reading and writing another process's memory with process_vm_readv/writev
// (no stop needed; the same ptrace access rights as ptrace itself).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "util/result.hpp"

namespace pyhot::loader::attach {

Result<std::string> read_remote(int pid, uint64_t address, size_t size);
Result<uint64_t> read_remote_u64(int pid, uint64_t address);
Result<Done> write_remote(int pid, uint64_t address, const std::string& bytes);
// Through /proc/PID/mem, which also writes read-only pages (as ptrace's
// POKEDATA does) and needs no stop: a stopped process's memory too.
Result<Done> write_remote_forced(int pid, uint64_t address, const std::string& bytes);

}  // namespace pyhot::loader::attach
