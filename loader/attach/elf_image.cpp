#include "loader/attach/elf_image.hpp"

#include <elf.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace pyhot::loader::attach {

namespace {

template <typename T>
const T* at(const char* data, size_t size, uint64_t offset, uint64_t count = 1) {
  if (offset > size || count > (size - offset) / sizeof(T)) {
    return nullptr;
  }
  return reinterpret_cast<const T*>(data + offset);
}

}  // namespace

Result<ElfImage> ElfImage::open(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    return make_error(err == ENOENT                     ? ErrorKind::not_found
                      : (err == EACCES || err == EPERM) ? ErrorKind::permission_denied
                                                        : ErrorKind::io,
                      "opening '" + path + "': " + std::strerror(err));
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || st.st_size < static_cast<off_t>(sizeof(Elf64_Ehdr))) {
    ::close(fd);
    return make_error(ErrorKind::not_python, "'" + path + "' is not an ELF file");
  }
  void* map = mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (map == MAP_FAILED) {
    return make_error(ErrorKind::io, "mapping '" + path + "': " + std::strerror(errno));
  }
  ElfImage image;
  image.m_data = static_cast<const char*>(map);
  image.m_size = static_cast<size_t>(st.st_size);
  image.m_owned = true;
  image.m_name = path;
  auto valid = image.validate();
  if (!valid) {
    return valid.error();
  }
  return image;
}

Result<ElfImage> ElfImage::from_bytes(std::string_view bytes, std::string name) {
  ElfImage image;
  image.m_data = bytes.data();
  image.m_size = bytes.size();
  image.m_name = std::move(name);
  auto valid = image.validate();
  if (!valid) {
    return valid.error();
  }
  return image;
}

ElfImage::ElfImage(ElfImage&& other) noexcept
    : m_data(std::exchange(other.m_data, nullptr)),
      m_size(std::exchange(other.m_size, 0)),
      m_owned(std::exchange(other.m_owned, false)),
      m_name(std::move(other.m_name)) {}

ElfImage& ElfImage::operator=(ElfImage&& other) noexcept {
  if (this != &other) {
    if (m_owned && m_data != nullptr) {
      munmap(const_cast<char*>(m_data), m_size);
    }
    m_data = std::exchange(other.m_data, nullptr);
    m_size = std::exchange(other.m_size, 0);
    m_owned = std::exchange(other.m_owned, false);
    m_name = std::move(other.m_name);
  }
  return *this;
}

ElfImage::~ElfImage() {
  if (m_owned && m_data != nullptr) {
    munmap(const_cast<char*>(m_data), m_size);
  }
}

Result<Done> ElfImage::validate() {
  const auto* eh = at<Elf64_Ehdr>(m_data, m_size, 0);
  if (eh == nullptr || std::memcmp(eh->e_ident, ELFMAG, SELFMAG) != 0) {
    return make_error(ErrorKind::not_python, "'" + m_name + "' is not an ELF file");
  }
  if (eh->e_ident[EI_CLASS] != ELFCLASS64 || eh->e_ident[EI_DATA] != ELFDATA2LSB || eh->e_machine != EM_X86_64) {
    return make_error(ErrorKind::not_python, "'" + m_name + "' is not an x86-64 ELF file");
  }
  if (eh->e_shentsize != sizeof(Elf64_Shdr) || eh->e_phentsize != sizeof(Elf64_Phdr) ||
      at<Elf64_Shdr>(m_data, m_size, eh->e_shoff, eh->e_shnum) == nullptr ||
      at<Elf64_Phdr>(m_data, m_size, eh->e_phoff, eh->e_phnum) == nullptr) {
    return make_error(ErrorKind::not_python, "'" + m_name + "' has corrupt ELF headers");
  }
  return k_done;
}

bool ElfImage::is_shared_object() const { return at<Elf64_Ehdr>(m_data, m_size, 0)->e_type == ET_DYN; }

std::optional<ElfSection> ElfImage::section(std::string_view name) const {
  const auto* eh = at<Elf64_Ehdr>(m_data, m_size, 0);
  const auto* sections = at<Elf64_Shdr>(m_data, m_size, eh->e_shoff, eh->e_shnum);
  if (eh->e_shstrndx >= eh->e_shnum) {
    return std::nullopt;
  }
  const Elf64_Shdr& names = sections[eh->e_shstrndx];
  for (unsigned i = 0; i < eh->e_shnum; ++i) {
    uint64_t name_offset = names.sh_offset + sections[i].sh_name;
    if (name_offset >= m_size || sections[i].sh_name >= names.sh_size) {
      continue;
    }
    const char* section_name = m_data + name_offset;
    size_t max_len = std::min<uint64_t>(m_size - name_offset, names.sh_size - sections[i].sh_name);
    if (std::string_view(section_name, strnlen(section_name, max_len)) == name) {
      return ElfSection{sections[i].sh_addr, sections[i].sh_offset, sections[i].sh_size};
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ElfImage::symbol_in(std::string_view table, std::string_view name) const {
  const auto* eh = at<Elf64_Ehdr>(m_data, m_size, 0);
  const auto* sections = at<Elf64_Shdr>(m_data, m_size, eh->e_shoff, eh->e_shnum);
  auto symtab = section(table);
  if (!symtab) {
    return std::nullopt;
  }
  // The string table is the section's sh_link; find the header again for it.
  const Elf64_Shdr* header = nullptr;
  for (unsigned i = 0; i < eh->e_shnum; ++i) {
    if (sections[i].sh_offset == symtab->offset && sections[i].sh_size == symtab->size &&
        (sections[i].sh_type == SHT_SYMTAB || sections[i].sh_type == SHT_DYNSYM)) {
      header = &sections[i];
    }
  }
  if (header == nullptr || header->sh_type == SHT_NOBITS || header->sh_link >= eh->e_shnum) {
    return std::nullopt;
  }
  const Elf64_Shdr& strings = sections[header->sh_link];
  uint64_t count = header->sh_size / sizeof(Elf64_Sym);
  const auto* symbols = at<Elf64_Sym>(m_data, m_size, header->sh_offset, count);
  if (symbols == nullptr || strings.sh_offset > m_size) {
    return std::nullopt;
  }
  for (uint64_t i = 0; i < count; ++i) {
    const Elf64_Sym& sym = symbols[i];
    if (sym.st_shndx == SHN_UNDEF || sym.st_name >= strings.sh_size || strings.sh_offset + sym.st_name >= m_size) {
      continue;
    }
    const char* sym_name = m_data + strings.sh_offset + sym.st_name;
    size_t max_len = std::min<uint64_t>(m_size - (strings.sh_offset + sym.st_name), strings.sh_size - sym.st_name);
    if (std::string_view(sym_name, strnlen(sym_name, max_len)) == name) {
      return sym.st_value;
    }
  }
  return std::nullopt;
}

std::optional<uint64_t> ElfImage::symbol(std::string_view name) const {
  if (auto value = symbol_in(".dynsym", name)) {
    return value;
  }
  return symbol_in(".symtab", name);
}

uint64_t ElfImage::first_load_address() const {
  const auto* eh = at<Elf64_Ehdr>(m_data, m_size, 0);
  const auto* segments = at<Elf64_Phdr>(m_data, m_size, eh->e_phoff, eh->e_phnum);
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    if (segments[i].p_type == PT_LOAD) {
      return segments[i].p_vaddr & ~uint64_t{0xfff};
    }
  }
  return 0;
}

std::string_view ElfImage::bytes_at(uint64_t address, uint64_t size) const {
  const auto* eh = at<Elf64_Ehdr>(m_data, m_size, 0);
  const auto* segments = at<Elf64_Phdr>(m_data, m_size, eh->e_phoff, eh->e_phnum);
  for (unsigned i = 0; i < eh->e_phnum; ++i) {
    const Elf64_Phdr& seg = segments[i];
    if (seg.p_type != PT_LOAD || address < seg.p_vaddr || size > seg.p_filesz ||
        address - seg.p_vaddr > seg.p_filesz - size) {
      continue;
    }
    uint64_t offset = seg.p_offset + (address - seg.p_vaddr);
    if (offset > m_size || size > m_size - offset) {
      return {};
    }
    return {m_data + offset, size};
  }
  return {};
}

std::string ElfImage::soname() const {
  auto dynamic = section(".dynamic");
  auto dynstr = section(".dynstr");
  if (!dynamic || !dynstr) {
    return {};
  }
  uint64_t count = dynamic->size / sizeof(Elf64_Dyn);
  const auto* entries = at<Elf64_Dyn>(m_data, m_size, dynamic->offset, count);
  if (entries == nullptr) {
    return {};
  }
  for (uint64_t i = 0; i < count && entries[i].d_tag != DT_NULL; ++i) {
    if (entries[i].d_tag == DT_SONAME && entries[i].d_un.d_val < dynstr->size &&
        dynstr->offset + entries[i].d_un.d_val < m_size) {
      const char* text = m_data + dynstr->offset + entries[i].d_un.d_val;
      return std::string(text, strnlen(text, m_size - (dynstr->offset + entries[i].d_un.d_val)));
    }
  }
  return {};
}

}  // namespace pyhot::loader::attach
