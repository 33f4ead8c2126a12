#include "vigil/harvest/journal.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "support/test_support.h"

namespace vigil {
namespace {

std::vector<std::string> some_records() {
  std::vector<std::string> out;
  for (int i = 0; i < 40; ++i) out.push_back(std::string(static_cast<std::size_t>(i * 7 % 50), static_cast<char>('a' + i % 26)) + std::to_string(i));
  out.push_back("");  // empty records are records too
  return out;
}

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

TEST(JournalTest, RecordsComeBackInOrderAndAppendingContinues) {
  test::TempDir dir;
  const std::string path = dir.file("harvest.journal");
  const std::vector<std::string> records = some_records();
  {
    std::vector<std::string> none;
    auto j = Journal::open(path, none);
    ASSERT_TRUE(j.ok()) << j.error().message;
    EXPECT_TRUE(none.empty());
    for (const auto& r : records) ASSERT_TRUE((*j)->append(r).ok());
    ASSERT_TRUE((*j)->sync().ok());
  }
  std::vector<std::string> back;
  auto j = Journal::open(path, back);
  ASSERT_TRUE(j.ok());
  EXPECT_EQ(back, records);
  EXPECT_EQ((*j)->torn_bytes(), 0u);
  ASSERT_TRUE((*j)->append("one more").ok());
  j->reset();
  back.clear();
  ASSERT_TRUE(Journal::open(path, back).ok());
  ASSERT_EQ(back.size(), records.size() + 1);
  EXPECT_EQ(back.back(), "one more");
}

// A process killed in the middle of a write leaves any prefix of the file: cut at every byte,
// the journal gives back exactly the whole records before the cut, and appends after them.
TEST(JournalTest, ATornTailAtAnyByteIsCutAndTheRestKept) {
  test::TempDir dir;
  const std::string full_path = dir.file("full.journal");
  const std::vector<std::string> records = some_records();
  std::vector<std::size_t> ends;  // file size after each record
  {
    std::vector<std::string> none;
    auto j = Journal::open(full_path, none);
    ASSERT_TRUE(j.ok());
    for (const auto& r : records) {
      ASSERT_TRUE((*j)->append(r).ok());
      ends.push_back((*j)->size());
    }
  }
  const std::string full = file_bytes(full_path);
  ASSERT_EQ(full.size(), ends.back());
  const std::string path = dir.file("cut.journal");
  for (std::size_t cut = 0; cut <= full.size(); ++cut) {
    std::ofstream(path, std::ios::binary | std::ios::trunc) << full.substr(0, cut);
    std::vector<std::string> back;
    auto j = Journal::open(path, back);
    ASSERT_TRUE(j.ok()) << "cut at " << cut;
    std::size_t whole = 0;
    while (whole < ends.size() && ends[whole] <= cut) ++whole;
    ASSERT_EQ(back.size(), whole) << "cut at " << cut;
    EXPECT_TRUE(std::equal(back.begin(), back.end(), records.begin())) << "cut at " << cut;
    const std::size_t kept = whole == 0 ? 0 : ends[whole - 1];
    EXPECT_EQ((*j)->torn_bytes(), cut - kept);
    EXPECT_EQ(std::filesystem::file_size(path), kept) << "the torn record is cut off";
    ASSERT_TRUE((*j)->append("after").ok());
    j->reset();
    back.clear();
    ASSERT_TRUE(Journal::open(path, back).ok());
    ASSERT_EQ(back.size(), whole + 1) << "cut at " << cut;
    EXPECT_EQ(back.back(), "after");
  }
}

TEST(JournalTest, ADamagedRecordEndsTheJournalThere) {
  test::TempDir dir;
  const std::string path = dir.file("harvest.journal");
  {
    std::vector<std::string> none;
    auto j = Journal::open(path, none);
    ASSERT_TRUE(j.ok());
    ASSERT_TRUE((*j)->append("first").ok());
    ASSERT_TRUE((*j)->append("second").ok());
    ASSERT_TRUE((*j)->append("third").ok());
  }
  std::string bytes = file_bytes(path);
  bytes[8 + 5 + 8 + 2] ^= 0x20;  // a byte of "second"'s payload
  std::ofstream(path, std::ios::binary | std::ios::trunc) << bytes;
  std::vector<std::string> back;
  ASSERT_TRUE(Journal::open(path, back).ok());
  EXPECT_EQ(back, std::vector<std::string>{"first"});
  // A length beyond the limit is not believed either.
  std::ofstream(path, std::ios::binary | std::ios::trunc) << std::string("\xff\xff\xff\x7f\0\0\0\0xyz", 11);
  back.clear();
  auto j = Journal::open(path, back);
  ASSERT_TRUE(j.ok());
  EXPECT_TRUE(back.empty());
  EXPECT_EQ((*j)->torn_bytes(), 11u);
}

TEST(JournalTest, AnUnwritablePlaceIsAClearError) {
  std::vector<std::string> none;
  auto j = Journal::open("/proc/vigil/no/harvest.journal", none);
  ASSERT_FALSE(j.ok());
  EXPECT_EQ(j.error().code, ErrorCode::unavailable);
  EXPECT_NE(j.error().message.find("/proc/vigil/no/harvest.journal"), std::string::npos);
}

}  // namespace
}  // namespace vigil
