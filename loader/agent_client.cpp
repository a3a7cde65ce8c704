#include "loader/agent_client.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "loader/agent_api.hpp"
#include "loader/agent_socket.hpp"
#include "loader/agent_source.hpp"
#include "loader/attach/injector.hpp"
#include "loader/attach/proc_info.hpp"
#include "loader/frame.hpp"
#include "loader/process.hpp"
#include "loader/secure_dir.hpp"
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

Result<ucred> AgentClient::peer_credentials() const {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (getsockopt(m_fd, SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0) {
    return make_error(ErrorKind::io, std::string("SO_PEERCRED: ") + std::strerror(errno));
  }
  return credentials;
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

// A connection that broke (closed, reset, a broken pipe, no answer) because
// the target exited: the user is told that, not what the socket saw.
Error AgentClient::broken(const std::string& op, Error error) const {
  if (m_target_pid <= 0 || error.kind == ErrorKind::protocol || error.kind == ErrorKind::timeout) {
    return error;
  }
  auto ended_within = [&](std::chrono::milliseconds wait) {
    auto deadline = Clock::now() + wait;
    while (!process_has_ended(m_target_pid)) {
      if (Clock::now() >= deadline) {
        return false;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return true;
  };
  std::string during = op == "apply" ? "the reload" : op == "revert" ? "the revert" : "the " + op + " request";
  std::string exited = "process " + std::to_string(m_target_pid) + " exited during " + during;
  // Its files close before it is a zombie: give the exit a moment to show.
  if (ended_within(std::chrono::milliseconds(500))) {
    return make_error(ErrorKind::not_found, exited);
  }
  // The agent removes its socket when the process starts to exit, and the
  // connections it had not accepted yet are reset; the exit itself (the
  // program's own exit handlers) can take a while longer.
  struct stat info {};
  if (m_socket_path.empty() || lstat(m_socket_path.c_str(), &info) == 0) {
    return error;
  }
  if (ended_within(m_timeout)) {
    return make_error(ErrorKind::not_found, exited);
  }
  return make_error(ErrorKind::not_found, "process " + std::to_string(m_target_pid) + " stopped its agent during " +
                                              during + " (it is exiting, or something stopped the agent)");
}

Result<json> AgentClient::request(const std::string& op, json arguments) {
  if (!arguments.is_object()) {
    arguments = json::object();
  }
  int id = m_next_id++;
  arguments["v"] = k_protocol_version;
  arguments["id"] = id;
  arguments["op"] = op;
  std::string payload_text = arguments.dump();
  if (payload_text.size() > k_max_frame_bytes) {
    // The agent would cut the connection after the first 64 MiB had been
    // sent ("Broken pipe"): nothing is sent.
    return make_error(ErrorKind::refused, "the " + op + " request is " + std::to_string(payload_text.size() >> 20) +
                                              " MiB, over the " + std::to_string(k_max_frame_bytes >> 20) +
                                              " MiB the agent accepts in one request; nothing was sent");
  }
  if (auto sent = send_all(encode_frame(payload_text)); !sent) {
    return broken(op, sent.error());
  }
  auto header = receive_exactly(4);
  if (!header) {
    return broken(op, header.error());
  }
  auto size = decode_frame_length(reinterpret_cast<const unsigned char*>(header->data()));
  if (!size) {
    return make_error(ErrorKind::protocol, "the agent sent an oversized frame");
  }
  auto payload = receive_exactly(*size);
  if (!payload) {
    return broken(op, payload.error());
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
  auto directory = open_agent_directory(process, false);
  if (!directory) {
    return false;
  }
  auto client = connect_verified(process, *directory, std::chrono::milliseconds(500));
  if (!client) {
    return false;
  }
  (*client)->set_timeout(std::chrono::milliseconds(1000));
  return Agent(**client).ping().ok();
}

namespace {

std::string agent_file_name() { return "pyhot_agent-" + util::hash_hex(agent_source()).substr(0, 12) + ".py"; }

struct StagedAgent {
  VerifiedDirectory directory;  // also where the agent will listen
  std::string name;
  std::string inside_path;  // as the target opens it
};

// Puts the agent's source where the target can read it: inside the target's
// own root, in the per-user directory the agent will listen in, verified
// to be the target user's own (see secure_dir.hpp).
Result<StagedAgent> stage_agent_for(const ProcessInfo& process) {
  auto directory = open_agent_directory(process, true);
  if (!directory) {
    return directory.error();
  }
  std::string name = agent_file_name();
  if (auto placed = directory->place_file(name, agent_source(), 0644); !placed) {
    return placed.error();
  }
  return StagedAgent{std::move(*directory), name, socket_directory(process) + "/" + name};
}

struct StartClaim {
  std::string name;
  std::string inside_path;  // as the target opens it
};

constexpr char k_start_claim_prefix[] = "start-";
// Far longer than any attach waits (its deadline is the command's timeout):
// a claim this old belongs to a pyhot that was killed while it waited.
constexpr long k_stale_claim_seconds = 3600;

Result<StartClaim> place_start_claim(const StagedAgent& staged) {
  staged.directory.remove_stale(k_start_claim_prefix, k_stale_claim_seconds);
  std::random_device device;
  char token[17];
  std::snprintf(token, sizeof token, "%08x%08x", device(), device());
  StartClaim claim{std::string(k_start_claim_prefix) + token, {}};
  claim.inside_path = staged.inside_path.substr(0, staged.inside_path.rfind('/') + 1) + claim.name;
  if (auto placed = staged.directory.place_file(claim.name, "", 0600); !placed) {
    return placed.error();
  }
  return claim;
}

std::string python_string_literal(const std::string& text) {
  std::string literal = "'";
  for (char c : text) {
    if (c == '\n') {
      literal += "\\n";
      continue;
    }
    if (c == '\\' || c == '\'') {
      literal.push_back('\\');
    }
    literal.push_back(c);
  }
  return literal + "'";
}

}  // namespace

Result<std::unique_ptr<AgentClient>> connect_to_agent(const ProcessInfo& process, const ConnectOptions& options) {
  auto deadline = Clock::now() + options.timeout;
  if (auto directory = open_agent_directory(process, false)) {
    auto client = connect_verified(process, *directory, options.timeout);
    if (client || client.error().kind != ErrorKind::not_found) {
      return client;
    }
  } else if (directory.error().kind != ErrorKind::not_found) {
    return directory.error();
  }
  if (!options.attach) {
    return make_error(ErrorKind::not_found,
                      "no pyhot agent is running in process " + std::to_string(process.pid) +
                          ": start the program with `pyhot run -- python app.py` or call pyhot_agent.start() in it");
  }
  std::string context = "starting the agent in process " + std::to_string(process.pid);
  // A process that ends while its agent is being started (a recycled
  // worker) is named as such, not by the step that noticed.
  auto exited = [&]() {
    return make_error(ErrorKind::not_found, "process " + std::to_string(process.pid) + " exited while " + context);
  };
  auto staged = stage_agent_for(process);
  if (!staged) {
    return process_has_ended(process.pid) ? exited() : staged.error().with_context(context);
  }
  // Right before the target runs it: still exactly the embedded agent.
  if (auto verified = staged->directory.verify_file(staged->name, agent_source()); !verified) {
    return verified.error().with_context(context);
  }
  // Binds no names in __main__, runs once however many times it is queued,
  // and never raises into the program. It runs at whatever line the main
  // thread is at, maybe inside a lock that thread holds (threading's own
  // fork handler holds one, the agent's start another): so it only starts
  // a thread (with _thread: always loaded, it takes no lock Python code
  // holds), which imports and starts the agent where waiting for a lock is
  // safe. threading is imported first, here: before 3.13 threading takes
  // the thread that imports it for the main thread, and a program that has
  // not imported it holds none of its locks.
  // The thread starts the agent only if it takes this claim before pyhot
  // takes it back on giving up: a bootstrap that ran, but whose thread got
  // the GIL only after pyhot said "it does nothing" (the main thread went
  // on into C code holding the GIL, or was stopped), then starts nothing.
  auto claim = place_start_claim(*staged);
  if (!claim) {
    return claim.error().with_context(context);
  }
  std::string start_agent = "try:\n    __import__('posix').unlink(" + python_string_literal(claim->inside_path) +
                            ")\n    __import__('runpy').run_path(" + python_string_literal(staged->inside_path) +
                            ", run_name='__agent__')\nexcept BaseException:\n    pass\n";
  std::string bootstrap =
      "try:\n    __import__('threading')\n    __import__('_thread').start_new_thread(__import__('builtins').exec, (" +
      python_string_literal(start_agent) + ", {}))\nexcept BaseException:\n    pass\n";
  attach::InjectOptions inject;
  inject.force = options.force;
  inject.deadline = options.timeout;
  std::string socket_name = agent_socket_name(process);
  inject.is_done = [&]() { return staged->directory.verify_socket(socket_name).ok(); };
  if (auto injected = attach::inject_python(process.pid, bootstrap, inject); !injected) {
    auto taken_back = staged->directory.take_file(claim->name);
    if (process_has_ended(process.pid)) {
      return exited();
    }
    if (taken_back && !*taken_back) {
      auto status = attach::read_status(process.pid);
      bool stopped = status && (status->state == 'T' || status->state == 't');
      std::string pid = std::to_string(process.pid);
      return make_error(injected.error().kind,
                        "the agent was starting in process " + pid + " when pyhot stopped waiting for it" +
                            (stopped ? "; the process is stopped: resume it (kill -CONT " + pid + "), then run "
                                     : ": it comes up once the process runs Python again; then run ") +
                            "the command again");
    }
    return injected.error();
  }
  while (Clock::now() < deadline) {
    auto connected =
        connect_verified(process, staged->directory, std::chrono::milliseconds(std::max(1, remaining_ms(deadline))));
    if (connected || connected.error().kind == ErrorKind::refused) {
      return connected;
    }
    if (process_has_ended(process.pid)) {
      return exited();
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return make_error(ErrorKind::timeout, "the agent did not come up in process " + std::to_string(process.pid) +
                                            " within " + std::to_string(options.timeout.count()) + " ms");
}

Result<std::string> agent_import_directory() {
  const char* cache = std::getenv("XDG_CACHE_HOME");
  const char* home = std::getenv("HOME");
  uid_t me = geteuid();
  std::string base = cache != nullptr && *cache != '\0' ? cache
                     : home != nullptr                  ? std::string(home) + "/.cache"
                                                        : "/tmp/pyhot-cache-" + std::to_string(me);
  if (cache == nullptr && home == nullptr) {
    // In /tmp anyone could have made it first: it must be ours, 0700.
    if (auto shared = VerifiedDirectory::open(base, me, true); !shared) {
      return shared.error();
    }
  }
  std::string version = util::hash_hex(std::string(agent_source()) + std::string(sitecustomize_source())).substr(0, 12);
  std::string parent = base + "/pyhot";
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  if (ec) {
    return make_error(ErrorKind::io, "cannot create " + parent + ": " + ec.message());
  }
  // Every Python started with it on PYTHONPATH imports from it before the
  // standard library: only the user may write there.
  auto directory = VerifiedDirectory::open(parent + "/agent-" + version, me, true);
  if (!directory) {
    return directory.error();
  }
  for (auto [name, contents] :
       {std::pair{"pyhot_agent.py", agent_source()}, std::pair{"sitecustomize.py", sitecustomize_source()}}) {
    if (auto placed = directory->place_file(name, contents, 0644); !placed) {
      return placed.error();
    }
  }
  return directory->path();
}

}  // namespace pyhot::loader
