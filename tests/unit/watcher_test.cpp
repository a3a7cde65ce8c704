// The watcher (inotify backend) against real files in a temporary directory,
// saved the ways editors save them. A test waits for a sentinel file written last
// rather than sleeping: events settle in order, so once the sentinel is
// reported everything written before it has been too.
#include <gtest/gtest.h>

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "watcher/file_watcher.hpp"

namespace pyhot::watcher {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

void write(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

// What autoreload passes in: Python sources, no caches or VCS metadata.
WatchFilter python_filter() {
  WatchFilter filter;
  filter.wanted_file = [](const std::string& name) {
    return name.size() > 3 && name.ends_with(".py") && !is_editor_scratch_name(name);
  };
  filter.skipped_directory = [](const std::string& name) { return name == "__pycache__" || name == ".git"; };
  return filter;
}

class WatcherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char pattern[] = "/tmp/pyhot-watcher-XXXXXX";
    ASSERT_NE(mkdtemp(pattern), nullptr);
    m_dir = pattern;
  }
  void TearDown() override { fs::remove_all(m_dir); }

  std::unique_ptr<FileWatcher> make(std::chrono::milliseconds debounce = 20ms, WatchFilter filter = python_filter()) {
    FileWatcherOptions options;
    options.debounce = debounce;
    options.filter = std::move(filter);
    auto watcher = FileWatcher::create(options);
    EXPECT_TRUE(watcher.ok()) << (watcher.ok() ? "" : watcher.error().message);
    return std::move(*watcher);
  }

  // Every event until `sentinel` is reported (or 5 s pass), sentinel included.
  std::vector<FileEvent> until(FileWatcher& watcher, const fs::path& sentinel) {
    std::vector<FileEvent> all;
    auto deadline = std::chrono::steady_clock::now() + 5s;
    while (std::chrono::steady_clock::now() < deadline) {
      for (auto& event : watcher.wait(100ms)) {
        all.push_back(event);
        if (event.path == sentinel.string()) {
          return all;
        }
      }
    }
    ADD_FAILURE() << "no event for " << sentinel << " within 5 s";
    return all;
  }

  static int count(const std::vector<FileEvent>& events, const fs::path& path, FileEvent::Kind kind) {
    int n = 0;
    for (const auto& event : events) {
      n += event.path == path.string() && event.kind == kind ? 1 : 0;
    }
    return n;
  }

  fs::path m_dir;
};

TEST(EditorScratchNames, AreRecognised) {
  EXPECT_TRUE(is_editor_scratch_name("4913"));
  EXPECT_TRUE(is_editor_scratch_name("views.py~"));
  EXPECT_TRUE(is_editor_scratch_name(".views.py.swp"));
  EXPECT_TRUE(is_editor_scratch_name(".views.py.swx"));
  EXPECT_TRUE(is_editor_scratch_name(".views.py.swo"));
  EXPECT_TRUE(is_editor_scratch_name(".#views.py"));
  EXPECT_FALSE(is_editor_scratch_name("views.py"));
  EXPECT_FALSE(is_editor_scratch_name("swap.py"));
  EXPECT_FALSE(is_editor_scratch_name("__init__.py"));
}

TEST_F(WatcherTest, InPlaceWriteIsOneChange) {
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / "views.py", "x = 2\n");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::changed), 1);
  EXPECT_EQ(events.size(), 2u);
}

TEST_F(WatcherTest, AtomicRenameSaveIsOneChangeOfTheTarget) {
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / "views.py.tmp1234", "x = 2\n");
  fs::rename(m_dir / "views.py.tmp1234", m_dir / "views.py");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::changed), 1);
  EXPECT_EQ(events.size(), 2u) << "the temporary file is not reported";
}

TEST_F(WatcherTest, BackupThenWriteIsOneChange) {
  // vim with backupcopy=no: probe file 4913, rename to views.py~, write anew, drop the backup.
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / "4913", "");
  fs::remove(m_dir / "4913");
  fs::rename(m_dir / "views.py", m_dir / "views.py~");
  write(m_dir / "views.py", "x = 2\n");
  fs::remove(m_dir / "views.py~");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::changed), 1);
  EXPECT_EQ(events.size(), 2u);
}

TEST_F(WatcherTest, DeleteThenCreateIsOneChange) {
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  fs::remove(m_dir / "views.py");
  write(m_dir / "views.py", "x = 2\n");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::changed), 1);
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::deleted), 0);
}

TEST_F(WatcherTest, DeletionIsReported) {
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  fs::remove(m_dir / "views.py");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::deleted), 1);
}

TEST_F(WatcherTest, BurstOfSavesIsOneChange) {
  write(m_dir / "views.py", "x = 0\n");
  auto watcher = make(150ms);
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  for (int i = 1; i <= 50; ++i) {
    write(m_dir / "views.py", "x = " + std::to_string(i) + "\n");
    std::this_thread::sleep_for(1ms);  // a burst, but spread out: each gap is far below the debounce
  }
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  EXPECT_EQ(count(events, m_dir / "views.py", FileEvent::Kind::changed), 1);
}

TEST_F(WatcherTest, NothingIsReportedBeforeTheDebounce) {
  write(m_dir / "views.py", "x = 1\n");
  auto watcher = make(300ms);
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  auto written = std::chrono::steady_clock::now();
  write(m_dir / "views.py", "x = 2\n");
  auto early = watcher->wait(50ms);
  if (std::chrono::steady_clock::now() - written < 300ms) {
    EXPECT_TRUE(early.empty());
  }
  auto events = until(*watcher, m_dir / "views.py");
  EXPECT_GE(std::chrono::steady_clock::now() - written, 300ms);
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(WatcherTest, IgnoresScratchFilesCachesAndOtherSuffixes) {
  fs::create_directories(m_dir / "__pycache__");
  fs::create_directories(m_dir / ".git");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / ".views.py.swp", "swap");
  write(m_dir / ".views.py.swx", "swap");
  write(m_dir / "views.py~", "backup");
  write(m_dir / ".#views.py", "lock");
  write(m_dir / "4913", "");
  write(m_dir / "notes.txt", "text");
  write(m_dir / "__pycache__" / "views.py", "not really");
  write(m_dir / ".git" / "hook.py", "");
  fs::create_directories(m_dir / "__pycache__" / "deeper");
  write(m_dir / "__pycache__" / "deeper" / "x.py", "");
  write(m_dir / "sentinel.py", "");
  auto events = until(*watcher, m_dir / "sentinel.py");
  ASSERT_EQ(events.size(), 1u) << events.front().path;
}

TEST_F(WatcherTest, TheCallersFilterDecides) {
  fs::create_directories(m_dir / "build");
  fs::create_directories(m_dir / "__pycache__");
  WatchFilter filter;
  filter.wanted_file = [](const std::string& name) { return name.ends_with(".txt"); };
  filter.skipped_directory = [](const std::string& name) { return name == "build"; };
  auto watcher = make(20ms, filter);
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / "views.py", "x = 1\n");
  write(m_dir / "build" / "out.txt", "skipped directory");
  write(m_dir / "__pycache__" / "cache.txt", "watched: this filter does not skip it");
  write(m_dir / "sentinel.txt", "");
  auto events = until(*watcher, m_dir / "sentinel.txt");
  ASSERT_EQ(events.size(), 2u);
  EXPECT_EQ(events[0].path, (m_dir / "__pycache__" / "cache.txt").string());
}

TEST_F(WatcherTest, FindFilesWalksWhatARecursiveWatchCovers) {
  fs::create_directories(m_dir / "pkg" / "sub");
  fs::create_directories(m_dir / "__pycache__");
  fs::create_directories(m_dir / "elsewhere");
  write(m_dir / "b.py", "");
  write(m_dir / "a.py", "");
  write(m_dir / ".a.py.swp", "");
  write(m_dir / "notes.txt", "");
  write(m_dir / "pkg" / "sub" / "deep.py", "");
  write(m_dir / "__pycache__" / "cached.py", "");
  write(m_dir / "elsewhere" / "linked.py", "");
  fs::create_directory_symlink(m_dir / "elsewhere", m_dir / "pkg" / "link");
  auto files = find_files(m_dir.string(), python_filter());
  std::vector<std::string> expected = {(m_dir / "a.py").string(), (m_dir / "b.py").string(),
                                       (m_dir / "elsewhere" / "linked.py").string(),
                                       (m_dir / "pkg" / "sub" / "deep.py").string()};
  EXPECT_EQ(files, expected);
}

TEST_F(WatcherTest, DirectoriesCreatedLaterAreWatched) {
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  // Written at once after mkdir: the file may land before the new watch does.
  fs::create_directories(m_dir / "pkg" / "sub");
  write(m_dir / "pkg" / "sub" / "early.py", "x = 1\n");
  auto events = until(*watcher, m_dir / "pkg" / "sub" / "early.py");
  EXPECT_EQ(count(events, m_dir / "pkg" / "sub" / "early.py", FileEvent::Kind::changed), 1);
  write(m_dir / "pkg" / "sub" / "later.py", "x = 1\n");
  events = until(*watcher, m_dir / "pkg" / "sub" / "later.py");
  EXPECT_EQ(count(events, m_dir / "pkg" / "sub" / "later.py", FileEvent::Kind::changed), 1);
}

TEST_F(WatcherTest, ExistingSubdirectoriesAreWatched) {
  fs::create_directories(m_dir / "a" / "b");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  write(m_dir / "a" / "b" / "deep.py", "x = 1\n");
  auto events = until(*watcher, m_dir / "a" / "b" / "deep.py");
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(WatcherTest, DirectoryMovedInIsWatched) {
  fs::path outside = m_dir.string() + "-outside";
  fs::create_directories(outside / "moved");
  write(outside / "moved" / "m.py", "x = 1\n");
  fs::create_directories(m_dir / "root");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch((m_dir / "root").string()).ok());
  fs::rename(outside / "moved", m_dir / "root" / "moved");
  fs::remove_all(outside);
  write(m_dir / "root" / "moved" / "m.py", "x = 2\n");
  auto events = until(*watcher, m_dir / "root" / "moved" / "m.py");
  EXPECT_EQ(count(events, m_dir / "root" / "moved" / "m.py", FileEvent::Kind::changed), 1);
}

TEST_F(WatcherTest, SingleFileWatchIgnoresItsNeighbours) {
  write(m_dir / "views.py", "x = 1\n");
  write(m_dir / "other.py", "x = 1\n");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch((m_dir / "views.py").string()).ok());
  write(m_dir / "other.py", "x = 2\n");
  // An atomic save replaces the inode: the file is still watched afterwards.
  write(m_dir / "views.py.tmp", "x = 2\n");
  fs::rename(m_dir / "views.py.tmp", m_dir / "views.py");
  auto events = until(*watcher, m_dir / "views.py");
  EXPECT_EQ(events.size(), 1u);
  write(m_dir / "views.py", "x = 3\n");
  events = until(*watcher, m_dir / "views.py");
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(WatcherTest, FlatWatchSkipsSubdirectories) {
  fs::create_directories(m_dir / "sub");
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string(), FileWatcher::Depth::flat).ok());
  write(m_dir / "sub" / "inner.py", "");
  write(m_dir / "top.py", "");
  auto events = until(*watcher, m_dir / "top.py");
  EXPECT_EQ(events.size(), 1u);
}

TEST_F(WatcherTest, MissingPathIsNotFound) {
  auto watcher = make();
  auto result = watcher->watch((m_dir / "nope").string());
  ASSERT_FALSE(result.ok());
  EXPECT_EQ(result.error().kind, ErrorKind::not_found);
}

TEST_F(WatcherTest, InterruptEndsAWait) {
  auto watcher = make();
  ASSERT_TRUE(watcher->watch(m_dir.string()).ok());
  std::thread interrupter([&] {
    std::this_thread::sleep_for(20ms);
    watcher->interrupt();
  });
  auto started = std::chrono::steady_clock::now();
  auto events = watcher->wait(10s);
  interrupter.join();
  EXPECT_TRUE(events.empty());
  EXPECT_LT(std::chrono::steady_clock::now() - started, 5s);
}

}  // namespace
}  // namespace pyhot::watcher
