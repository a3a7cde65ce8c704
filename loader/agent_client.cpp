#include "loader/agent_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <thread>

#include "loader/agent_api.hpp"
#include "loader/agent_source.hpp"
#include "loader/attach/injector.hpp"
#include "loader/frame.hpp"
#include "util/file.hpp"
#include "util/text.hpp"

namespace pyhot::loader {

using nlohmann::json;
using Clock = std::chrono::steady_clock;

namespace {

int remaining_ms(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  return left < 0 ? 0 : static_cast<int>(left);
}

Result<Done> wait_ready(int fd, short events, Clock::time_point deadline) {
  while (true) {
    pollfd entry{fd, events, 0};
    int ready = poll(&entry, 1, remaining_ms(deadline));
    if (ready > 0) {
      return k_done;
    }
    if (ready == 0) {
      return make_error(ErrorKind::timeout, "the agent did not answer in time");
    }
    if (errno != EINTR) {
      return make_error(ErrorKind::io, std::string("waiting for the agent: ") + std::strerror(errno));
    }
  }
}

ErrorKind error_kind_from_agent(const std::string& kind) {
  if (kind == "not_found") {
    return ErrorKind::not_found;
  }
  if (kind == "compile") {
    return ErrorKind::syntax_error;
  }
  if (kind == "refused") {
    return ErrorKind::refused;
  }
  if (kind == "protocol") {
    return ErrorKind::protocol;
  }
  return ErrorKind::internal;
}

}  // namespace

Result<std::unique_ptr<AgentClient>> AgentClient::connect(const std::string& socket_path,
                                                          std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (socket_path.size() >= sizeof address.sun_path) {
    return make_error(ErrorKind::usage, "socket path too long: " + socket_path);
  }
  std::memcpy(address.sun_path, socket_path.c_str(), socket_path.size() + 1);
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    return make_error(ErrorKind::io, std::string("socket: ") + std::strerror(errno));
  }
  auto deadline = Clock::now() + timeout;
  int rc;
  do {
    rc = ::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  } while (rc != 0 && errno == EINTR);
  if (rc != 0 && (errno == EINPROGRESS || errno == EAGAIN)) {
    if (auto ready = wait_ready(fd, POLLOUT, deadline); !ready) {
      close(fd);
      return ready.error();
    }
    int error = 0;
    socklen_t length = sizeof error;
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length);
    errno = error;
    rc = error == 0 ? 0 : -1;
  }
  if (rc != 0) {
    int saved = errno;
    close(fd);
    auto kind = saved == EACCES                              ? ErrorKind::permission_denied
                : (saved == ENOENT || saved == ECONNREFUSED) ? ErrorKind::not_found
                                                             : ErrorKind::io;
    return make_error(kind, "cannot connect to " + socket_path + ": " + std::strerror(saved));
  }
  return std::unique_ptr<AgentClient>(new AgentClient(fd, timeout));
}

AgentClient::~AgentClient() {
  if (m_fd >= 0) {
    close(m_fd);
  }
}

Result<Done> AgentClient::send_all(const std::string& bytes) {
  auto deadline = Clock::now() + m_timeout;
  std::size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(m_fd, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<std::size_t>(n);
      continue;
    }
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
      if (auto ready = wait_ready(m_fd, POLLOUT, deadline); !ready) {
        return ready.error();
      }
      continue;
    }
    return make_error(ErrorKind::io, std::string("sending to the agent: ") + std::strerror(errno));
  }
  return k_done;
}

Result<std::string> AgentClient::receive_exactly(std::size_t size) {
  auto deadline = Clock::now() + m_timeout;
  std::string data(size, '\0');
  std::size_t got = 0;
  while (got < size) {
    ssize_t n = ::recv(m_fd, data.data() + got, size - got, 0);
    if (n > 0) {
      got += static_cast<std::size_t>(n);
      continue;
    }
    if (n == 0) {
      return make_error(ErrorKind::io, "the agent closed the connection");
    }
    if (errno == EINTR) {
      continue;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK) {
      if (auto ready = wait_ready(m_fd, POLLIN, deadline); !ready) {
        return ready.error();
      }
      continue;
    }
    return make_error(ErrorKind::io, std::string("reading from the agent: ") + std::strerror(errno));
  }
  return data;
}

Result<json> AgentClient::request(const std::string& op, json arguments) {
  if (!arguments.is_object()) {
    arguments = json::object();
  }
  int id = m_next_id++;
  arguments["v"] = k_protocol_version;
  arguments["id"] = id;
  arguments["op"] = op;
  if (auto sent = send_all(encode_frame(arguments.dump())); !sent) {
    return sent.error();
  }
  auto header = receive_exactly(4);
  if (!header) {
    return header.error();
  }
  auto size = decode_frame_length(reinterpret_cast<const unsigned char*>(header->data()));
  if (!size) {
    return make_error(ErrorKind::protocol, "the agent sent an oversized frame");
  }
  auto payload = receive_exactly(*size);
  if (!payload) {
    return payload.error();
  }
  json response = json::parse(*payload, nullptr, false);
  if (response.is_discarded() || !response.is_object()) {
    return make_error(ErrorKind::protocol, "the agent sent something that is not JSON");
  }
  if (response.value("id", -1) != id) {
    return make_error(ErrorKind::protocol, "the agent answered another request");
  }
  if (!response.value("ok", false)) {
    const json& error = response.contains("error") ? response["error"] : json::object();
    return make_error(error_kind_from_agent(error.value("kind", "internal")),
                      error.value("message", "the agent failed without saying why"));
  }
  return response;
}

bool agent_is_listening(const ProcessInfo& process) {
  auto client = AgentClient::connect(agent_socket_path(process), std::chrono::milliseconds(500));
  if (!client) {
    return false;
  }
  (*client)->set_timeout(std::chrono::milliseconds(1000));
  return Agent(**client).ping().ok();
}

namespace {

std::string agent_file_name() { return "pyhot_agent-" + util::hash_hex(agent_source()).substr(0, 12) + ".py"; }

// Puts the agent's source where the target can read it: inside the target's
// own root, in the per-user directory the agent will listen in.
Result<std::string> stage_agent_for(const ProcessInfo& process) {
  std::string inside_dir = socket_directory(process.uid);
  std::string outside_dir = "/proc/" + std::to_string(process.pid) + "/root" + inside_dir;
  if (std::getenv("PYHOT_AGENT_SOCKET_DIR") != nullptr) {
    outside_dir = inside_dir;
  }
  std::error_code ec;
  if (!std::filesystem::exists(outside_dir, ec)) {
    if (mkdir(outside_dir.c_str(), 0700) != 0 && errno != EEXIST) {
      return make_error(ErrorKind::io, "cannot create " + outside_dir + ": " + std::strerror(errno));
    }
    if (geteuid() == 0 && process.uid != 0) {
      if (chown(outside_dir.c_str(), static_cast<uid_t>(process.uid), static_cast<gid_t>(-1)) != 0) {
        return make_error(ErrorKind::io, "cannot hand " + outside_dir + " to uid " + std::to_string(process.uid));
      }
    }
  }
  std::string name = agent_file_name();
  std::string outside_file = outside_dir + "/" + name;
  if (!std::filesystem::exists(outside_file, ec)) {
    std::string temporary = outside_file + ".tmp" + std::to_string(getpid());
    if (auto written = util::write_file(temporary, std::string(agent_source())); !written) {
      return written.error();
    }
    chmod(temporary.c_str(), 0644);
    if (geteuid() == 0 && process.uid != 0) {
      [[maybe_unused]] int ignored = chown(temporary.c_str(), static_cast<uid_t>(process.uid), static_cast<gid_t>(-1));
    }
    std::filesystem::rename(temporary, outside_file, ec);
    if (ec) {
      return make_error(ErrorKind::io, "cannot place the agent at " + outside_file + ": " + ec.message());
    }
  }
  return inside_dir + "/" + name;
}

std::string python_string_literal(const std::string& text) {
  std::string literal = "'";
  for (char c : text) {
    if (c == '\\' || c == '\'') {
      literal.push_back('\\');
    }
    literal.push_back(c);
  }
  return literal + "'";
}

}  // namespace

Result<std::unique_ptr<AgentClient>> connect_to_agent(const ProcessInfo& process, const ConnectOptions& options) {
  std::string path = agent_socket_path(process);
  auto client = AgentClient::connect(path, options.timeout);
  if (client) {
    return client;
  }
  if (client.error().kind != ErrorKind::not_found) {
    return client.error();
  }
  if (!options.attach) {
    return make_error(ErrorKind::not_found,
                      "no pyhot agent is running in process " + std::to_string(process.pid) +
                          ": start the program with `pyhot run -- python app.py` or call pyhot_agent.start() in it");
  }
  auto staged = stage_agent_for(process);
  if (!staged) {
    return staged.error().with_context("starting the agent in process " + std::to_string(process.pid));
  }
  // Binds no names in __main__, runs once however many times it is queued,
  // and never raises into the program.
  std::string bootstrap = "try:\n    __import__('runpy').run_path(" + python_string_literal(*staged) +
                          ", run_name='__agent__')\nexcept BaseException:\n    pass\n";
  attach::InjectOptions inject;
  inject.force = options.force;
  auto deadline = Clock::now() + options.timeout;
  inject.deadline = options.timeout;
  inject.is_done = [&]() { return std::filesystem::exists(path); };
  if (auto injected = attach::inject_python(process.pid, bootstrap, inject); !injected) {
    return injected.error();
  }
  while (Clock::now() < deadline) {
    auto connected = AgentClient::connect(path, std::chrono::milliseconds(remaining_ms(deadline)));
    if (connected) {
      return connected;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return make_error(ErrorKind::timeout, "the agent did not come up in process " + std::to_string(process.pid) +
                                            " within " + std::to_string(options.timeout.count()) + " ms");
}

namespace {

Result<Done> write_once(const std::string& file, std::string_view contents) {
  std::error_code ec;
  if (std::filesystem::exists(file, ec)) {
    return k_done;
  }
  std::string temporary = file + ".tmp" + std::to_string(getpid());
  if (auto written = util::write_file(temporary, std::string(contents)); !written) {
    return written.error();
  }
  std::filesystem::rename(temporary, file, ec);
  if (ec) {
    return make_error(ErrorKind::io, "cannot write " + file + ": " + ec.message());
  }
  return k_done;
}

}  // namespace

Result<std::string> agent_import_directory() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  std::string base = cache != nullptr && *cache != '\0' ? cache
                     : home != nullptr                  ? std::string(home) + "/.cache"
                                                        : "/tmp/pyhot-cache-" + std::to_string(getuid());
  std::string version = util::hash_hex(std::string(agent_source()) + std::string(sitecustomize_source())).substr(0, 12);
  std::string dir = base + "/pyhot/agent-" + version;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) {
    return make_error(ErrorKind::io, "cannot create " + dir + ": " + ec.message());
  }
  if (auto written = write_once(dir + "/pyhot_agent.py", agent_source()); !written) {
    return written.error();
  }
  if (auto written = write_once(dir + "/sitecustomize.py", sitecustomize_source()); !written) {
    return written.error();
  }
  return dir;
}

}  // namespace pyhot::loader
