// Talks to the agent inside a target: connect over its Unix socket (starting
// the agent first when the target was not prepared), send requests, get
// answers. Every call has a deadline.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>

#include <nlohmann/json.hpp>

#include "loader/process.hpp"
#include "util/result.hpp"

namespace pyhot::loader {

// The request/response boundary, so logic above it can be tested with a fake.
class AgentChannel {
 public:
  virtual ~AgentChannel() = default;
  // Sends {"op": op, ...arguments}; returns the response object when "ok" is
  // true, else the agent's error as an Error.
  virtual Result<nlohmann::json> request(const std::string& op, nlohmann::json arguments) = 0;
};

class AgentClient final : public AgentChannel {
 public:
  static Result<std::unique_ptr<AgentClient>> connect(const std::string& socket_path,
                                                      std::chrono::milliseconds timeout);
  ~AgentClient() override;
  AgentClient(const AgentClient&) = delete;
  AgentClient& operator=(const AgentClient&) = delete;

  Result<nlohmann::json> request(const std::string& op, nlohmann::json arguments) override;
  void set_timeout(std::chrono::milliseconds timeout) { m_timeout = timeout; }
  // SO_PEERCRED of the listening end: checked before anything is sent.
  Result<ucred> peer_credentials() const;
  // The process the agent runs in (pyhot's pid namespace) and the socket it
  // listens on: a connection that breaks because the process exited (or is
  // exiting: its agent removed the socket) says so instead of "Broken pipe"
  // or "Connection reset by peer".
  void set_target(int pid, std::string socket_path) {
    m_target_pid = pid;
    m_socket_path = std::move(socket_path);
  }

 private:
  AgentClient(int fd, std::chrono::milliseconds timeout) : m_fd(fd), m_timeout(timeout) {}
  Result<Done> send_all(const std::string& bytes);
  Result<std::string> receive_exactly(std::size_t size);
  Error broken(const std::string& op, Error error) const;

  int m_fd = -1;
  std::chrono::milliseconds m_timeout;
  int m_next_id = 1;
  int m_target_pid = 0;
  std::string m_socket_path;
};

struct ConnectOptions {
  bool attach = true;  // start the agent by injection when none is listening
  bool force = false;  // passed to the injector (3.14 remote-debug policy)
  std::chrono::milliseconds timeout{10000};
};

// (1) an agent already listening; (2) inject one; (3) a clear error.
Result<std::unique_ptr<AgentClient>> connect_to_agent(const ProcessInfo& process, const ConnectOptions& options);

// Is an agent answering on this process's socket right now?
bool agent_is_listening(const ProcessInfo& process);

// Writes the embedded agent to a per-user cache directory (once per agent
// version) and returns that directory: `PYTHONPATH=<dir> python -m pyhot_agent app.py`.
Result<std::string> agent_import_directory();

}  // namespace pyhot::loader
