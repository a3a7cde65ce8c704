// Reads the parts of an ELF file an injector needs (symbols, sections, load
// segments, soname) without loading it: the file is mapped read-only.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "util/result.hpp"

namespace pyhot::loader::attach {

struct ElfSection {
  uint64_t address = 0;  // sh_addr (link-time virtual address)
  uint64_t offset = 0;   // sh_offset in the file
  uint64_t size = 0;
};

class ElfImage {
 public:
  // Maps `path` read-only; refuses anything but a 64-bit little-endian x86-64 ELF.
  static Result<ElfImage> open(const std::string& path);
  // Wraps bytes already in memory (tests); `bytes` must outlive the image.
  static Result<ElfImage> from_bytes(std::string_view bytes, std::string name);

  ElfImage(ElfImage&& other) noexcept;
  ElfImage& operator=(ElfImage&& other) noexcept;
  ElfImage(const ElfImage&) = delete;
  ElfImage& operator=(const ElfImage&) = delete;
  ~ElfImage();

  bool is_shared_object() const;  // ET_DYN: needs a load bias
  // Defined symbol value (link-time address), .dynsym first, then .symtab.
  std::optional<uint64_t> symbol(std::string_view name) const;
  std::optional<ElfSection> section(std::string_view name) const;
  // p_vaddr of the first PT_LOAD rounded down to its page; with the mapping
  // of file offset 0 it gives the load bias.
  uint64_t first_load_address() const;
  std::string soname() const;
  // Bytes at a link-time address, from a PT_LOAD's file contents
  // (.rodata/.data initial values). Empty when not backed by the file.
  std::string_view bytes_at(uint64_t address, uint64_t size) const;
  const std::string& name() const { return m_name; }

 private:
  ElfImage() = default;
  Result<Done> validate();
  std::optional<uint64_t> symbol_in(std::string_view table, std::string_view name) const;

  const char* m_data = nullptr;
  size_t m_size = 0;
  bool m_owned = false;  // munmap on destruction
  std::string m_name;
};

}  // namespace pyhot::loader::attach
