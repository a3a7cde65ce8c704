#include <gtest/gtest.h>

#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <thread>

#include "loader/agent_client.hpp"
#include "loader/agent_source.hpp"
#include "loader/frame.hpp"
#include "loader/process.hpp"

namespace pyhot::loader {
namespace {

using nlohmann::json;

TEST(Frame, LengthPrefixIsBigEndian) {
  std::string frame = encode_frame("{}");
  ASSERT_EQ(frame.size(), 6U);
  EXPECT_EQ(frame.substr(0, 4), std::string("\0\0\0\2", 4));
  auto size = decode_frame_length(reinterpret_cast<const unsigned char*>(frame.data()));
  ASSERT_TRUE(size.has_value());
  EXPECT_EQ(*size, 2U);
}

TEST(Frame, OversizedLengthIsRefused) {
  const unsigned char header[4] = {0x7f, 0xff, 0xff, 0xff};
  EXPECT_FALSE(decode_frame_length(header).has_value());
}

TEST(Process, DeadPidIsNotFound) {
  pid_t child = fork();
  if (child == 0) {
    _exit(0);
  }
  waitpid(child, nullptr, 0);
  auto info = require_python_process(child);
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::not_found);
  EXPECT_NE(info.error().message.find("no process with pid"), std::string::npos);
}

TEST(Process, ThisTestIsNotPython) {
  auto info = require_python_process(getpid());
  ASSERT_FALSE(info.ok());
  EXPECT_EQ(info.error().kind, ErrorKind::not_python);
}

TEST(Process, SocketPathGoesThroughTheTargetsRoot) {
  ProcessInfo info;
  info.pid = 1234;
  info.ns_pid = 7;
  info.uid = 1000;
  unsetenv("PYHOT_AGENT_SOCKET_DIR");
  EXPECT_EQ(agent_socket_path(info), "/proc/1234/root/tmp/pyhot-1000/7.sock");
}

TEST(AgentSource, IsEmbeddedAndIsTheAgent) { EXPECT_NE(agent_source().find("def start"), std::string_view::npos); }

// A real Unix socket with a scripted peer: the client's framing, id checks,
// error mapping and deadline are exercised without a Python process.
class ScriptedPeer {
 public:
  explicit ScriptedPeer(std::function<void(int)> script) {
    m_path = std::filesystem::temp_directory_path() / ("pyhot-loader-test-" + std::to_string(getpid()) + ".sock");
    std::filesystem::remove(m_path);
    m_listener = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, m_path.c_str());
    EXPECT_EQ(bind(m_listener, reinterpret_cast<sockaddr*>(&address), sizeof address), 0);
    EXPECT_EQ(listen(m_listener, 1), 0);
    m_thread = std::thread([this, script] {
      int peer = accept(m_listener, nullptr, nullptr);
      script(peer);
      close(peer);
    });
  }
  ~ScriptedPeer() {
    m_thread.join();
    close(m_listener);
    std::filesystem::remove(m_path);
  }
  std::string path() const { return m_path.string(); }

 private:
  std::filesystem::path m_path;
  int m_listener = -1;
  std::thread m_thread;
};

json read_request(int fd) {
  unsigned char header[4];
  EXPECT_EQ(recv(fd, header, 4, MSG_WAITALL), 4);
  std::string body(*decode_frame_length(header), '\0');
  EXPECT_EQ(recv(fd, body.data(), body.size(), MSG_WAITALL), static_cast<ssize_t>(body.size()));
  return json::parse(body);
}

void write_response(int fd, const json& response) {
  std::string frame = encode_frame(response.dump());
  EXPECT_EQ(send(fd, frame.data(), frame.size(), 0), static_cast<ssize_t>(frame.size()));
}

TEST(AgentClient, SendsVersionedRequestsAndReturnsTheAnswer) {
  ScriptedPeer peer([](int fd) {
    json request = read_request(fd);
    EXPECT_EQ(request["v"], 1);
    EXPECT_EQ(request["op"], "locate");
    EXPECT_EQ(request["module"], "app.views");
    write_response(fd, {{"v", 1}, {"id", request["id"]}, {"ok", true}, {"file", "/srv/app/views.py"}});
  });
  auto client = AgentClient::connect(peer.path(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(client.ok()) << client.error().message;
  auto answer = (*client)->request("locate", {{"module", "app.views"}});
  ASSERT_TRUE(answer.ok()) << answer.error().message;
  EXPECT_EQ((*answer)["file"], "/srv/app/views.py");
}

TEST(AgentClient, AgentErrorsBecomeTypedErrors) {
  ScriptedPeer peer([](int fd) {
    json request = read_request(fd);
    write_response(fd, {{"v", 1},
                        {"id", request["id"]},
                        {"ok", false},
                        {"error", {{"kind", "not_found"}, {"message", "No module named 'x'"}}}});
  });
  auto client = AgentClient::connect(peer.path(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(client.ok());
  auto answer = (*client)->request("locate", {{"module", "x"}});
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::not_found);
  EXPECT_EQ(answer.error().message, "No module named 'x'");
}

TEST(AgentClient, SilentAgentTimesOut) {
  ScriptedPeer peer([](int fd) {
    read_request(fd);
    std::this_thread::sleep_for(std::chrono::milliseconds(400));
  });
  auto client = AgentClient::connect(peer.path(), std::chrono::milliseconds(150));
  ASSERT_TRUE(client.ok());
  auto answer = (*client)->request("ping", json::object());
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::timeout);
}

TEST(AgentClient, AnswerToAnotherRequestIsAProtocolError) {
  ScriptedPeer peer([](int fd) {
    read_request(fd);
    write_response(fd, {{"v", 1}, {"id", 999}, {"ok", true}});
  });
  auto client = AgentClient::connect(peer.path(), std::chrono::milliseconds(2000));
  ASSERT_TRUE(client.ok());
  auto answer = (*client)->request("ping", json::object());
  ASSERT_FALSE(answer.ok());
  EXPECT_EQ(answer.error().kind, ErrorKind::protocol);
}

TEST(AgentClient, NothingListeningIsNotFound) {
  auto client = AgentClient::connect("/tmp/pyhot-no-such-socket.sock", std::chrono::milliseconds(200));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::not_found);
}

}  // namespace
}  // namespace pyhot::loader
