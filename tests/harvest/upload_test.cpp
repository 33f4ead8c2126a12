// Uploader against a real S3 server on loopback (s3rver): every file once, at most N
// transfers at once, nothing sent twice across runs, retries and clear failures.
#include "vigil/harvest/upload.h"

#include <atomic>
#include <fstream>
#include <map>

#include <gtest/gtest.h>

#include "support/test_support.h"

namespace vigil {
namespace {

// Files of different sizes in a temporary folder, named f0.bin ... under `sub/`.
std::vector<UploadFile> make_files(const test::TempDir& dir, int n, const std::string& sub = "set") {
  std::filesystem::create_directories(dir.path() / sub);
  std::vector<UploadFile> files;
  for (int i = 0; i < n; ++i) {
    const std::string name = sub + "/f" + std::to_string(i) + ".bin";
    std::ofstream(dir.file(name), std::ios::binary) << std::string(static_cast<std::size_t>(1000 + 7919 * i), static_cast<char>('a' + i % 26));
    files.push_back({dir.file(name), name, ""});
  }
  return files;
}

UploadTarget target_of(const test::S3Server& server, int concurrency = 2) {
  UploadTarget t;
  t.s3.endpoint = server.endpoint();
  t.s3.access_key = "S3RVER";
  t.s3.secret_key = "S3RVER";
  t.location = {"test", "run/"};
  t.concurrency = concurrency;
  t.attempts = 3;
  t.backoff = std::chrono::milliseconds(20);
  return t;
}

// What the uploader asked to record, as the harvest's journal would keep it (called one at a
// time, from the upload's threads).
struct Records {
  UploadLedger ledger;
  std::vector<std::pair<bool, std::string>> calls;
  UploadRecordFn fn() {
    return [this](bool uploaded, const std::string& url, const std::string& md5) {
      calls.emplace_back(uploaded, url);
      (uploaded ? ledger.uploaded : ledger.started)[url] = md5;
      return Status{};
    };
  }
};

TEST(UploaderTest, SendsEveryFileOnceAtMostNAtOnceAndRecordsEach) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  const auto files = make_files(dir, 12);
  Records records;
  Uploader uploader(target_of(server, 3), {}, records.fn());
  std::atomic<int> paced{0};
  uploader.set_pacing([&] {
    ++paced;
    return true;
  });
  ASSERT_TRUE(uploader.check_bucket().ok());
  int progress_calls = 0;
  const Status s = uploader.upload(files, [&](const UploadStats&) { ++progress_calls; });
  ASSERT_TRUE(s.ok()) << s.error().message;
  EXPECT_EQ(uploader.stats().uploaded, 12u);
  EXPECT_GE(uploader.stats().max_in_flight, 1);
  EXPECT_LE(uploader.stats().max_in_flight, 3);
  EXPECT_GE(progress_calls, 1);
  EXPECT_EQ(paced.load(), 12) << "each file waits for the CPU budget";
  for (const UploadFile& f : files) {
    EXPECT_EQ(server.stored("run/" + f.name), 1) << f.name;
    EXPECT_EQ(server.object("run/" + f.name), test::read_file(f.path)) << f.name;
    EXPECT_EQ(records.ledger.uploaded.count(uploader.url(f.name)), 1u) << f.name;
  }
  // Each object recorded as started before it was recorded as uploaded.
  std::map<std::string, int> started_at, uploaded_at;
  for (std::size_t i = 0; i < records.calls.size(); ++i) {
    (records.calls[i].first ? uploaded_at : started_at)[records.calls[i].second] = static_cast<int>(i);
  }
  ASSERT_EQ(uploaded_at.size(), 12u);
  for (const auto& [url, at] : uploaded_at) EXPECT_LT(started_at.at(url), at) << url;
}

TEST(UploaderTest, WhatAnEarlierRunRecordedIsNotSentAgain) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  auto files = make_files(dir, 6);
  Records first;
  Uploader a(target_of(server), {}, first.fn());
  ASSERT_TRUE(a.upload(files).ok());
  ASSERT_EQ(server.stored_total(), 6);
  // The same files again, and one changed: only the changed one goes.
  std::ofstream(files[2].path, std::ios::binary) << "other bytes";
  Records second;
  Uploader b(target_of(server), first.ledger, second.fn());
  ASSERT_TRUE(b.upload(files).ok());
  EXPECT_EQ(b.stats().uploaded, 1u);
  EXPECT_EQ(b.stats().recorded, 5u);
  EXPECT_EQ(server.stored_total(), 7);
  EXPECT_EQ(server.stored("run/" + files[2].name), 2);
  EXPECT_EQ(server.object("run/" + files[2].name), "other bytes");
}

TEST(UploaderTest, AStartedUploadTheStorageHasIsAskedAboutNotSentAgain) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  auto files = make_files(dir, 4);
  Records first;
  Uploader a(target_of(server), {}, first.fn());
  ASSERT_TRUE(a.upload(files).ok());
  // A run that died after the storage had the objects but before it recorded so: only
  // "started" records. The storage has f0..f2 as they are; f3 changed since.
  UploadLedger ledger;
  ledger.started = first.ledger.uploaded;
  std::ofstream(files[3].path, std::ios::binary) << "changed";
  Records second;
  Uploader b(target_of(server), ledger, second.fn());
  ASSERT_TRUE(b.upload(files).ok());
  EXPECT_EQ(b.stats().found, 3u);
  EXPECT_EQ(b.stats().uploaded, 1u);
  EXPECT_EQ(server.stored_total(), 5);
  EXPECT_EQ(second.ledger.uploaded.size(), 4u) << "what was found is recorded as uploaded";
}

TEST(UploaderTest, AStorageThatGoesAwayFailsTheUploadAndGetsTheRestWhenBack) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  const auto early = make_files(dir, 3, "early");
  const auto late = make_files(dir, 5, "late");
  std::vector<UploadFile> all = early;
  all.insert(all.end(), late.begin(), late.end());
  Records records;
  {
    Uploader a(target_of(server), {}, records.fn());
    ASSERT_TRUE(a.upload(early).ok());
  }
  server.stop();
  {
    Uploader b(target_of(server), records.ledger, records.fn());
    const Status s = b.upload(all);
    ASSERT_FALSE(s.ok());
    EXPECT_EQ(s.error().code, ErrorCode::unavailable);
    EXPECT_NE(s.error().message.find("cannot reach " + server.endpoint()), std::string::npos) << s.error().message;
    EXPECT_NE(s.error().message.find("3 attempts"), std::string::npos) << s.error().message;
    EXPECT_GE(b.stats().retries, 2u);
    EXPECT_EQ(b.stats().uploaded, 0u);
  }
  ASSERT_TRUE(server.start());
  Uploader c(target_of(server), records.ledger, records.fn());
  ASSERT_TRUE(c.upload(all).ok());
  EXPECT_EQ(c.stats().uploaded, 5u);
  EXPECT_EQ(c.stats().recorded, 3u);
  for (const UploadFile& f : all) EXPECT_EQ(server.stored("run/" + f.name), 1) << f.name;
}

TEST(UploaderTest, RefusalsAndMissingThingsAreClearErrorsWithoutRetries) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  const auto files = make_files(dir, 3);
  UploadTarget stranger = target_of(server);
  stranger.s3.access_key = "NOBODY";
  Uploader a(stranger, {}, {});
  Status s = a.check_bucket();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::failed_precondition);
  s = a.upload(files);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("403"), std::string::npos) << s.error().message;
  EXPECT_NE(s.error().message.find("InvalidAccessKeyId"), std::string::npos) << s.error().message;
  EXPECT_EQ(a.stats().retries, 0u);
  UploadTarget nobucket = target_of(server);
  nobucket.location.bucket = "nobucket";
  Uploader b(nobucket, {}, {});
  s = b.check_bucket();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::not_found);
  EXPECT_NE(s.error().message.find("no bucket \"nobucket\""), std::string::npos) << s.error().message;
  Uploader c(target_of(server), {}, {});
  s = c.upload({{dir.file("not-there.bin"), "not-there.bin", ""}});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("not-there.bin"), std::string::npos);
  EXPECT_EQ(server.stored_total(), 0);
}

TEST(UploaderTest, APacingHookThatSaysStopStopsTheUpload) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  Uploader a(target_of(server), {}, {});
  a.set_pacing([] { return false; });
  const Status s = a.upload(make_files(dir, 4));
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.error().code, ErrorCode::cancelled);
  EXPECT_EQ(server.stored_total(), 0);
}

TEST(UploaderTest, AFailingRecordStopsTheUpload) {
  test::S3Server server;
  ASSERT_TRUE(server.ready());
  test::TempDir dir;
  const auto files = make_files(dir, 8);
  Uploader a(target_of(server), {}, [](bool, const std::string&, const std::string&) {
    return Status{ErrorCode::unavailable, "the journal cannot be written"};
  });
  const Status s = a.upload(files);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.error().message.find("journal"), std::string::npos);
  EXPECT_EQ(server.stored_total(), 0) << "nothing is sent that could not be recorded as started";
}

}  // namespace
}  // namespace vigil
