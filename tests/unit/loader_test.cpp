#include <gtest/gtest.h>

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "loader/agent_api.hpp"
#include "loader/agent_client.hpp"
#include "loader/agent_source.hpp"
#include "loader/frame.hpp"
#include "loader/process.hpp"
#include "loader/secure_dir.hpp"

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

TEST(VerifiedDirectory, ExactlyOneTakerGetsAFile) {
  std::string path = std::filesystem::temp_directory_path() / ("pyhot-take-" + std::to_string(getpid()));
  std::filesystem::remove_all(path);
  auto directory = VerifiedDirectory::open(path, geteuid(), true);
  ASSERT_TRUE(directory) << directory.error().message;
  ASSERT_TRUE(directory->place_file("start-claim", "", 0600));
  auto first = directory->take_file("start-claim");
  auto second = directory->take_file("start-claim");
  ASSERT_TRUE(first && second);
  EXPECT_TRUE(*first);
  EXPECT_FALSE(*second);
  EXPECT_FALSE(std::filesystem::exists(path + "/start-claim"));
  std::filesystem::remove_all(path);
}

TEST(VerifiedDirectory, OnlyStaleFilesOfThePrefixAreRemoved) {
  std::string path = std::filesystem::temp_directory_path() / ("pyhot-stale-" + std::to_string(getpid()));
  std::filesystem::remove_all(path);
  auto directory = VerifiedDirectory::open(path, geteuid(), true);
  ASSERT_TRUE(directory) << directory.error().message;
  for (const char* name : {"start-old", "start-new", "other-old"}) {
    ASSERT_TRUE(directory->place_file(name, "", 0600));
  }
  timespec two_hours_ago[2] = {{time(nullptr) - 7200, 0}, {time(nullptr) - 7200, 0}};
  ASSERT_EQ(utimensat(AT_FDCWD, (path + "/start-old").c_str(), two_hours_ago, 0), 0);
  ASSERT_EQ(utimensat(AT_FDCWD, (path + "/other-old").c_str(), two_hours_ago, 0), 0);
  directory->remove_stale("start-", 3600);
  EXPECT_FALSE(std::filesystem::exists(path + "/start-old"));
  EXPECT_TRUE(std::filesystem::exists(path + "/start-new"));
  EXPECT_TRUE(std::filesystem::exists(path + "/other-old"));
  std::filesystem::remove_all(path);
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

// A forked child keeps its parent's address-space layout until it execs;
// an exec lays out a new one (randomized on this machine, else unknown).
TEST(Process, AForkKeepsItsParentsImageAndAnExecDoesNot) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t forked = fork();
  if (forked == 0) {
    char byte = 'r';
    (void)!write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  pid_t execed = fork();
  if (execed == 0) {
    // sleep writes nothing to the pipe: the test waits for its exec below.
    execlp("sleep", "sleep", "30", static_cast<char*>(nullptr));
    _exit(127);
  }
  char byte = 0;
  ASSERT_EQ(read(ready[0], &byte, 1), 1);
  for (int look = 0; look < 500; ++look) {
    std::ifstream comm("/proc/" + std::to_string(execed) + "/comm");
    std::string name;
    std::getline(comm, name);
    if (name == "sleep") {
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  auto own = process_image(getpid());
  if (own) {
    EXPECT_EQ(process_image(forked), own);
    EXPECT_NE(process_image(execed), own);
  } else {
    EXPECT_FALSE(process_image(forked).has_value());
  }
  kill(forked, SIGKILL);
  kill(execed, SIGKILL);
  waitpid(forked, nullptr, 0);
  waitpid(execed, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
}

// A master between two generations of workers (all exited and reaped, the
// next not forked yet) has no child to list, but has had children.
TEST(Process, AMasterWhoseWorkersWereReapedHasForked) {
  int ready[2];
  ASSERT_EQ(pipe(ready), 0);
  pid_t master = fork();
  if (master == 0) {
    pid_t worker = fork();
    if (worker == 0) {
      _exit(0);
    }
    waitpid(worker, nullptr, 0);
    char byte = 'r';
    (void)!write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  pid_t loner = fork();
  if (loner == 0) {
    char byte = 'r';
    (void)!write(ready[1], &byte, 1);
    pause();
    _exit(0);
  }
  int got = 0;
  while (got < 2) {
    char bytes[2];
    ssize_t count = read(ready[0], bytes, sizeof bytes);
    ASSERT_GT(count, 0);
    got += static_cast<int>(count);
  }
  EXPECT_TRUE(descendant_pids(master).empty());
  EXPECT_TRUE(has_forked(master));
  EXPECT_FALSE(has_forked(loner));
  EXPECT_TRUE(has_forked(getpid()));  // the two above are alive
  kill(master, SIGKILL);
  kill(loner, SIGKILL);
  waitpid(master, nullptr, 0);
  waitpid(loner, nullptr, 0);
  close(ready[0]);
  close(ready[1]);
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

// Issue 9 item 11: a 50 MB file ended in "Broken pipe" when the agent cut
// the oversized frame; the client says so before it sends anything.
TEST(AgentClient, ARequestOverTheFrameLimitIsNotSent) {
  ssize_t received = -1;
  {
    ScriptedPeer peer([&received](int fd) {
      unsigned char header[4];
      received = recv(fd, header, 4, MSG_WAITALL);  // the agent then refuses an oversized frame and closes
    });
    auto client = AgentClient::connect(peer.path(), std::chrono::milliseconds(5000));
    ASSERT_TRUE(client.ok());
    auto answer = (*client)->request("apply", {{"text", std::string(k_max_frame_bytes, 'x')}});
    ASSERT_FALSE(answer.ok());
    EXPECT_EQ(answer.error().kind, ErrorKind::refused);
    EXPECT_NE(answer.error().message.find("over the 64 MiB the agent accepts in one request"), std::string::npos)
        << answer.error().message;
    (*client).reset();  // closed before the peer's thread is joined: it reads end of file
  }
  EXPECT_EQ(received, 0);
}

TEST(AgentClient, NothingListeningIsNotFound) {
  auto client = AgentClient::connect("/tmp/pyhot-no-such-socket.sock", std::chrono::milliseconds(200));
  ASSERT_FALSE(client.ok());
  EXPECT_EQ(client.error().kind, ErrorKind::not_found);
}

// Answers every request with one scripted reply and keeps what was asked.
class FakeChannel final : public AgentChannel {
 public:
  explicit FakeChannel(json reply) : m_reply(std::move(reply)) {}
  Result<json> request(const std::string& op, json arguments) override {
    m_op = op;
    m_arguments = std::move(arguments);
    return m_reply;
  }
  const std::string& op() const { return m_op; }
  const json& arguments() const { return m_arguments; }

 private:
  json m_reply;
  std::string m_op;
  json m_arguments;
};

TEST(Agent, LocateAsksForTheModuleAndReturnsItsFile) {
  FakeChannel channel(json{{"module", "app.views"}, {"file", "/srv/app/views.py"}});
  auto file = Agent(channel).locate("app.views");
  ASSERT_TRUE(file.ok()) << file.error().message;
  EXPECT_EQ(*file, "/srv/app/views.py");
  EXPECT_EQ(channel.op(), "locate");
  EXPECT_EQ(channel.arguments(), json({{"module", "app.views"}}));
}

TEST(Agent, AReplyWithoutItsFieldsIsAProtocolError) {
  FakeChannel channel(json::object());
  auto file = Agent(channel).locate("app.views");
  ASSERT_FALSE(file.ok());
  EXPECT_EQ(file.error().kind, ErrorKind::protocol);
}

TEST(Agent, SnapshotOfAnUntouchedModuleIsNone) {
  FakeChannel channel(json{{"source", nullptr}, {"hashes", nullptr}});
  auto snapshot = Agent(channel).snapshot("app");
  ASSERT_TRUE(snapshot.ok());
  EXPECT_FALSE(snapshot->has_value());
}

TEST(Agent, ApplySaysWhatToRecordOnlyWhenItIsNotTheSentText) {
  FakeChannel channel(json{{"patch", 3}, {"results", json::array()}});
  Agent agent(channel);
  ApplyRequest request;
  request.source = "x = 1\n";
  ASSERT_TRUE(agent.apply(request).ok());
  EXPECT_FALSE(channel.arguments().contains("snapshot"));
  request.snapshot = SnapshotRecord::of("x = 2\n");
  ASSERT_TRUE(agent.apply(request).ok());
  EXPECT_EQ(channel.arguments()["snapshot"], "x = 2\n");
  request.snapshot = SnapshotRecord::none();
  auto reply = agent.apply(request);
  ASSERT_TRUE(reply.ok());
  EXPECT_TRUE(channel.arguments()["snapshot"].is_null());
  EXPECT_EQ(reply->patch, 3);
}

TEST(Agent, ApplyResultsAreTypedStatuses) {
  FakeChannel channel(json{
      {"patch", nullptr},
      {"results",
       {{{"status", "unchanged"}}, {{"status", "freevars_changed"}, {"message", "2 closures keep the old code"}}}}});
  auto reply = Agent(channel).apply(ApplyRequest{});
  ASSERT_TRUE(reply.ok()) << reply.error().message;
  ASSERT_EQ(reply->results.size(), 2U);
  EXPECT_EQ(reply->results[0].status, Status::unchanged);
  EXPECT_EQ(reply->results[1].status, Status::freevars_changed);
  EXPECT_EQ(reply->results[1].message, "2 closures keep the old code");
  EXPECT_FALSE(reply->patch.has_value());
}

TEST(Agent, AStatusTheAgentCannotSendIsAProtocolError) {
  FakeChannel channel(json{{"results", {{{"status", "kept"}}}}});
  auto reply = Agent(channel).apply(ApplyRequest{});
  ASSERT_FALSE(reply.ok());
  EXPECT_EQ(reply.error().kind, ErrorKind::protocol);
}

// PROTOCOL.md has one `### op` heading per operation under "## Operations".
std::set<std::string> documented_ops() {
  std::ifstream file("loader/PROTOCOL.md");
  EXPECT_TRUE(file.good()) << "run from the source root";
  std::set<std::string> ops;
  bool in_operations = false;
  std::string line;
  while (std::getline(file, line)) {
    if (line.rfind("## ", 0) == 0) {
      in_operations = line == "## Operations";
    } else if (in_operations && line.rfind("### ", 0) == 0) {
      ops.insert(line.substr(4));
    }
  }
  return ops;
}

TEST(Protocol, EveryOperationIsDocumentedAndEveryDocumentedOneExists) {
  std::set<std::string> table;
  for (const auto& entry : all_ops()) {
    table.insert(std::string(entry.name));
  }
  EXPECT_EQ(documented_ops(), table);
}

TEST(Protocol, OpsAndStatusesHaveOneWordEach) {
  std::set<std::string_view> words;
  for (const auto& entry : all_ops()) {
    EXPECT_EQ(to_string(entry.op), entry.name);
    EXPECT_TRUE(words.insert(entry.name).second) << entry.name;
  }
  for (const auto& entry : all_statuses()) {
    EXPECT_EQ(to_string(entry.status), entry.word);
    EXPECT_EQ(status_from_string(entry.word).has_value(), entry.from_agent) << entry.word;
  }
}

}  // namespace
}  // namespace pyhot::loader
