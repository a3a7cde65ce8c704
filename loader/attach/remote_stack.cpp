#include "loader/attach/remote_stack.hpp"

#include <algorithm>
#include <cstring>
#include <map>

#include "loader/attach/debug_offsets.hpp"
#include "loader/attach/remote_memory.hpp"

namespace pyhot::loader::attach {

namespace {

// Byte offsets of the fields of the v3.13 _Py_DebugOffsets (all uint64_t;
// Include/internal/pycore_runtime.h): cookie[8], version, free_threaded,
// runtime_state{3} at 24, interpreter_state{13} at 48, thread_state{9} at
// 152, interpreter_frame{6} at 224, code_object{10} at 272, pyobject{2} at
// 352, type_object{4} at 368, tuple, list, dict, float, long, bytes{3} at
// 512, unicode{4} at 536, gc{2}: 584 bytes.
constexpr size_t k_version = 8;
constexpr size_t k_free_threaded = 16;
constexpr size_t k_interpreters_head = 40;
constexpr size_t k_threads_head = 72;
constexpr size_t k_gil_locked = 136;
constexpr size_t k_gil_holder = 144;
constexpr size_t k_tstate_next = 168;
constexpr size_t k_tstate_current_frame = 184;
constexpr size_t k_tstate_thread_id = 192;
constexpr size_t k_tstate_native_thread_id = 200;
constexpr size_t k_frame_previous = 232;
constexpr size_t k_frame_executable = 240;
constexpr size_t k_frame_instr_ptr = 248;
constexpr size_t k_frame_owner = 264;
constexpr size_t k_code_filename = 280;
constexpr size_t k_code_qualname = 296;
constexpr size_t k_code_linetable = 304;
constexpr size_t k_code_firstlineno = 312;
constexpr size_t k_code_adaptive = 344;
constexpr size_t k_object_type = 360;
constexpr size_t k_type_name = 376;
constexpr size_t k_bytes_size = 520;
constexpr size_t k_bytes_data = 528;
constexpr size_t k_unicode_state = 544;
constexpr size_t k_unicode_length = 552;
constexpr size_t k_unicode_ascii_size = 560;

constexpr int k_frame_owned_by_cstack = 3;  // the interpreter's entry shim, not Python code
constexpr size_t k_max_threads = 4096;
constexpr size_t k_max_frames = 2048;
constexpr uint64_t k_max_text = 4096;
constexpr uint64_t k_max_line_table = 1 << 20;

uint64_t u64(std::string_view bytes, size_t offset) {
  uint64_t value = 0;
  std::memcpy(&value, bytes.data() + offset, sizeof value);
  return value;
}

// One process's memory, read through the published offsets.
class RemoteReader {
 public:
  RemoteReader(int pid, const StackOffsets& offsets) : m_pid(pid), m_at(offsets) {}

  Result<uint64_t> pointer(uint64_t address) { return read_remote_u64(m_pid, address); }

  Result<uint32_t> u32(uint64_t address) {
    auto bytes = read_remote(m_pid, address, 4);
    if (!bytes) {
      return bytes.error();
    }
    uint32_t value = 0;
    std::memcpy(&value, bytes->data(), 4);
    return value;
  }

  // A str object's text as UTF-8 (compact strings; anything else is "?").
  Result<std::string> text(uint64_t object);
  Result<std::string> bytes_object(uint64_t object, uint64_t limit);
  // Whether the object is a code object (by its type's tp_name).
  Result<bool> is_code(uint64_t object);
  Result<RemoteFrame> frame(uint64_t frame, uint64_t code);

 private:
  int m_pid;
  StackOffsets m_at;
  std::map<uint64_t, bool> m_code_types;
};

void append_utf8(std::string& out, uint32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

Result<std::string> RemoteReader::text(uint64_t object) {
  auto state = u32(object + m_at.unicode_state);
  auto length = pointer(object + m_at.unicode_length);
  if (!state || !length) {
    return !state ? state.error() : length.error();
  }
  uint32_t kind = (*state >> 2) & 7;
  bool compact = ((*state >> 5) & 1) != 0;
  bool ascii = ((*state >> 6) & 1) != 0;
  if (!compact || *length > k_max_text || (kind != 1 && kind != 2 && kind != 4)) {
    return std::string("?");
  }
  // Compact non-ASCII strings keep utf8_length and utf8 after PyASCIIObject.
  uint64_t data = object + m_at.unicode_ascii_size + (ascii ? 0 : 16);
  auto raw = read_remote(m_pid, data, *length * kind);
  if (!raw) {
    return raw.error();
  }
  if (kind == 1 && ascii) {
    return *raw;
  }
  std::string out;
  for (uint64_t i = 0; i < *length; ++i) {
    uint32_t c = 0;
    std::memcpy(&c, raw->data() + i * kind, kind);  // little-endian: the low bytes
    append_utf8(out, c);
  }
  return out;
}

Result<std::string> RemoteReader::bytes_object(uint64_t object, uint64_t limit) {
  auto size = pointer(object + m_at.bytes_size);
  if (!size) {
    return size.error();
  }
  if (*size > limit) {
    return make_error(ErrorKind::protocol, "a line table of " + std::to_string(*size) + " bytes");
  }
  return read_remote(m_pid, object + m_at.bytes_data, *size);
}

Result<bool> RemoteReader::is_code(uint64_t object) {
  auto type = pointer(object + m_at.object_type);
  if (!type) {
    return type.error();
  }
  if (auto known = m_code_types.find(*type); known != m_code_types.end()) {
    return known->second;
  }
  auto name_address = pointer(*type + m_at.type_name);
  if (!name_address) {
    return name_address.error();
  }
  auto name = read_remote(m_pid, *name_address, 5);
  bool code = name && std::string_view(*name) == std::string_view("code\0", 5);
  m_code_types[*type] = code;
  return code;
}

Result<RemoteFrame> RemoteReader::frame(uint64_t frame, uint64_t code) {
  RemoteFrame out;
  auto filename = pointer(code + m_at.code_filename);
  auto qualname = pointer(code + m_at.code_qualname);
  auto table = pointer(code + m_at.code_linetable);
  auto first_line = u32(code + m_at.code_firstlineno);
  auto instruction = pointer(frame + m_at.frame_instr_ptr);
  if (!filename || !qualname || !table || !first_line || !instruction) {
    return make_error(ErrorKind::io, "a frame could not be read");
  }
  auto file = text(*filename);
  auto function = text(*qualname);
  auto locations = bytes_object(*table, k_max_line_table);
  if (!file || !function || !locations) {
    return make_error(ErrorKind::io, "a code object could not be read");
  }
  out.file = *file;
  out.function = *function;
  uint64_t start = code + m_at.code_adaptive;
  if (*instruction >= start) {
    out.line = line_of_instruction(*locations, static_cast<int>(*first_line), (*instruction - start) / 2);
  }
  return out;
}

uint64_t read_varint(std::string_view table, size_t& at) {
  uint64_t value = 0;
  int shift = 0;
  while (at < table.size()) {
    auto byte = static_cast<unsigned char>(table[at++]);
    value |= static_cast<uint64_t>(byte & 63) << shift;
    shift += 6;
    if ((byte & 64) == 0 || shift > 60) {
      break;
    }
  }
  return value;
}

int64_t read_signed_varint(std::string_view table, size_t& at) {
  uint64_t value = read_varint(table, at);
  return (value & 1) != 0 ? -static_cast<int64_t>(value >> 1) : static_cast<int64_t>(value >> 1);
}

}  // namespace

Result<StackOffsets> parse_stack_offsets(std::string_view bytes) {
  if (!has_debug_cookie(bytes)) {
    return make_error(ErrorKind::not_python, "_PyRuntime does not start with the 'xdebugpy' cookie");
  }
  if (bytes.size() < k_debug_offsets_size_3_13) {
    return make_error(ErrorKind::protocol, "the debug offsets table is truncated");
  }
  uint64_t version = u64(bytes, k_version);
  if ((version >> 16) != 0x030D) {
    return make_error(ErrorKind::refused,
                      "pyhot reads stacks from outside only on Python 3.13, whose debug offsets "
                      "it knows");
  }
  if (u64(bytes, k_free_threaded) != 0) {
    return make_error(ErrorKind::refused, "a free-threaded build has no GIL and another layout");
  }
  StackOffsets t;
  t.interpreters_head = u64(bytes, k_interpreters_head);
  t.threads_head = u64(bytes, k_threads_head);
  t.gil_locked = u64(bytes, k_gil_locked);
  t.gil_holder = u64(bytes, k_gil_holder);
  t.tstate_next = u64(bytes, k_tstate_next);
  t.tstate_current_frame = u64(bytes, k_tstate_current_frame);
  t.tstate_thread_id = u64(bytes, k_tstate_thread_id);
  t.tstate_native_thread_id = u64(bytes, k_tstate_native_thread_id);
  t.frame_previous = u64(bytes, k_frame_previous);
  t.frame_executable = u64(bytes, k_frame_executable);
  t.frame_instr_ptr = u64(bytes, k_frame_instr_ptr);
  t.frame_owner = u64(bytes, k_frame_owner);
  t.code_filename = u64(bytes, k_code_filename);
  t.code_qualname = u64(bytes, k_code_qualname);
  t.code_linetable = u64(bytes, k_code_linetable);
  t.code_firstlineno = u64(bytes, k_code_firstlineno);
  t.code_adaptive = u64(bytes, k_code_adaptive);
  t.object_type = u64(bytes, k_object_type);
  t.type_name = u64(bytes, k_type_name);
  t.bytes_size = u64(bytes, k_bytes_size);
  t.bytes_data = u64(bytes, k_bytes_data);
  t.unicode_state = u64(bytes, k_unicode_state);
  t.unicode_length = u64(bytes, k_unicode_length);
  t.unicode_ascii_size = u64(bytes, k_unicode_ascii_size);
  // Structures are far smaller than 64 KiB; anything else is not this layout.
  for (uint64_t offset : {t.threads_head, t.gil_holder, t.tstate_native_thread_id, t.frame_owner, t.code_adaptive,
                          t.type_name, t.unicode_ascii_size}) {
    if (offset == 0 || offset >= (uint64_t{1} << 16)) {
      return make_error(ErrorKind::protocol, "the debug offsets table looks corrupt");
    }
  }
  return t;
}

int line_of_instruction(std::string_view table, int first_line, uint64_t code_unit) {
  size_t at = 0;
  int64_t line = first_line;
  uint64_t unit = 0;
  while (at < table.size()) {
    auto head = static_cast<unsigned char>(table[at++]);
    if ((head & 0x80) == 0) {
      return 0;  // not at an entry's start: a table this reader does not understand
    }
    int code = (head >> 3) & 15;
    uint64_t length = (head & 7) + 1;
    bool has_line = true;
    if (code == 15) {  // no location
      has_line = false;
    } else if (code == 14) {  // long form: line delta, end line delta, columns
      line += read_signed_varint(table, at);
      read_varint(table, at);
      read_varint(table, at);
      read_varint(table, at);
    } else if (code == 13) {  // no columns
      line += read_signed_varint(table, at);
    } else if (code >= 10) {  // one line form: delta code-10, two column bytes
      line += code - 10;
      at += 2;
    } else {  // short form: same line, one column byte
      at += 1;
    }
    if (code_unit < unit + length) {
      return has_line ? static_cast<int>(line) : 0;
    }
    unit += length;
  }
  return 0;
}

Result<RemoteStacks> read_remote_stacks(const InterpreterInfo& interpreter) {
  if (!interpreter.has_debug_offsets || interpreter.runtime == 0) {
    return make_error(ErrorKind::refused, "Python " + interpreter.version.text() +
                                              " publishes no layout of its frames (3.13 does), and pyhot does not "
                                              "guess one: an out-of-process stack is not available on this version");
  }
  int pid = interpreter.pid;
  auto table = read_remote(pid, interpreter.runtime, k_debug_offsets_size_3_13);
  if (!table) {
    return table.error();
  }
  auto offsets = parse_stack_offsets(*table);
  if (!offsets) {
    return offsets.error();
  }
  RemoteReader reader(pid, *offsets);
  auto interp = reader.pointer(interpreter.runtime + offsets->interpreters_head);
  if (!interp) {
    return interp.error();
  }
  RemoteStacks out;
  auto locked = reader.u32(*interp + offsets->gil_locked);
  auto holder = reader.pointer(*interp + offsets->gil_holder);
  out.gil_locked = locked && *locked != 0;
  auto tstate = reader.pointer(*interp + offsets->threads_head);
  while (tstate && *tstate != 0 && out.threads.size() < k_max_threads) {
    RemoteThread thread;
    auto ident = reader.pointer(*tstate + offsets->tstate_thread_id);
    auto native = reader.pointer(*tstate + offsets->tstate_native_thread_id);
    thread.thread_id = ident ? *ident : 0;
    thread.native_id = native ? static_cast<long>(*native) : 0;
    thread.holds_gil = out.gil_locked && holder && *holder == *tstate;
    auto frame = reader.pointer(*tstate + offsets->tstate_current_frame);
    while (frame && *frame != 0 && thread.frames.size() < k_max_frames) {
      auto owner = read_remote(pid, *frame + offsets->frame_owner, 1);
      auto executable = reader.pointer(*frame + offsets->frame_executable);
      if (!owner || !executable) {
        thread.error = "the stack changed while it was read";
        break;
      }
      auto is_code = reader.is_code(*executable);
      if (static_cast<int>((*owner)[0]) != k_frame_owned_by_cstack && is_code && *is_code) {
        auto one = reader.frame(*frame, *executable);
        if (!one) {
          thread.error = "the stack changed while it was read";
          break;
        }
        thread.frames.push_back(std::move(*one));
      }
      frame = reader.pointer(*frame + offsets->frame_previous);
    }
    std::reverse(thread.frames.begin(), thread.frames.end());
    out.threads.push_back(std::move(thread));
    tstate = reader.pointer(*tstate + offsets->tstate_next);
  }
  return out;
}

}  // namespace pyhot::loader::attach
