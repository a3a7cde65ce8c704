#include "loader/agent_socket.hpp"

#include <unistd.h>

#include "loader/attach/proc_info.hpp"

namespace pyhot::loader {

Result<VerifiedDirectory> open_agent_directory(const ProcessInfo& process, bool create) {
  return VerifiedDirectory::open(agent_socket_directory(process), static_cast<uid_t>(process.uid), create);
}

Result<Done> verify_agent_peer(const ucred& peer, const ProcessInfo& process, const std::string& socket_path) {
  // SO_PEERCRED gives the pid in pyhot's own pid namespace, as ProcessInfo::pid is.
  bool same_process =
      peer.pid == process.pid ||
      (peer.pid > 0 && access(attach::proc_path(process.pid, "task/" + std::to_string(peer.pid)).c_str(), F_OK) == 0);
  auto status = attach::read_status(process.pid);
  bool same_user = static_cast<int>(peer.uid) == process.uid || (status && peer.uid == status->effective_uid);
  if (same_process && same_user) {
    return k_done;
  }
  return make_error(ErrorKind::refused, "refusing " + socket_path + ": the process listening on it is pid " +
                                            std::to_string(peer.pid) + " (uid " + std::to_string(peer.uid) +
                                            "), not process " + std::to_string(process.pid) + " (uid " +
                                            std::to_string(process.uid) + ")");
}

Result<std::unique_ptr<AgentClient>> connect_verified(const ProcessInfo& process, const VerifiedDirectory& directory,
                                                      std::chrono::milliseconds timeout) {
  std::string name = agent_socket_name(process);
  if (auto socket = directory.verify_socket(name); !socket) {
    return socket.error();
  }
  std::string shown = directory.path() + "/" + name;
  auto client = AgentClient::connect(directory.descriptor_path(name), timeout);
  if (!client) {
    // Name the path the user knows, not the descriptor path.
    std::string message = client.error().message;
    std::string through = directory.descriptor_path(name);
    if (auto at = message.find(through); at != std::string::npos) {
      message.replace(at, through.size(), shown);
    }
    return make_error(client.error().kind, message);
  }
  auto peer = (*client)->peer_credentials();
  if (!peer) {
    return peer.error();
  }
  if (auto verified = verify_agent_peer(*peer, process, shown); !verified) {
    return verified.error();
  }
  (*client)->set_target(process.pid, shown);
  return client;
}

}  // namespace pyhot::loader
