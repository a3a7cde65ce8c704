// Reaching a target's agent only through its verified socket directory, and
// only when what answers is the target itself (SO_PEERCRED): nothing is sent
// to a socket another user planted or another process listens on.
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <string>

#include "loader/agent_client.hpp"
#include "loader/process.hpp"
#include "loader/secure_dir.hpp"
#include "util/result.hpp"

namespace pyhot::loader {

// The directory the agent of `process` listens and is staged in, verified
// for the target's uid (see VerifiedDirectory).
Result<VerifiedDirectory> open_agent_directory(const ProcessInfo& process, bool create);

// not_found when no socket is there or nothing listens on it; refused when
// the socket or the process behind it is not the target's.
Result<std::unique_ptr<AgentClient>> connect_verified(const ProcessInfo& process, const VerifiedDirectory& directory,
                                                      std::chrono::milliseconds timeout);

// The peer is the target (or one of its threads) and runs as its user.
Result<Done> verify_agent_peer(const ucred& peer, const ProcessInfo& process, const std::string& socket_path);

}  // namespace pyhot::loader
