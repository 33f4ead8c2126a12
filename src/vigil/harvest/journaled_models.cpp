#include "vigil/harvest/journaled_models.h"

#include <algorithm>
#include <filesystem>
#include <span>

namespace vigil {

namespace {

Status other_frames() {
  return Error{ErrorCode::data_loss, "the harvest journal does not match the inputs (detections for other frames)"};
}

}  // namespace

Result<std::unique_ptr<Journal>> open_harvest_journal(const std::string& dir, const std::string& fingerprint,
                                                      std::vector<std::string>& records) {
  const std::string journal_path = (std::filesystem::path(dir) / "harvest.journal").string();
  auto journal = Journal::open(journal_path, records);
  if (!journal.ok()) return journal.error();
  if (records.empty()) {
    VIGIL_RETURN_IF_ERROR((*journal)->append(encode_header(fingerprint)));
    return journal;
  }
  auto header = decode_header(records.front());
  if (!header.ok() || *header != fingerprint) {
    return Error{ErrorCode::failed_precondition, dir + " holds a harvest of other inputs or settings (" + journal_path +
                                                     "); give another --out, or delete that folder to start again"};
  }
  records.erase(records.begin());
  return journal;
}

void DetectionJournal::resume_from(Journal& journal, const std::vector<std::string>& records) {
  MutexLock lock(mu_);
  journal_ = &journal;
  for (const std::string& r : records) {
    if (record_kind(r) != RecordKind::detections) continue;
    if (Status s = decode_detections_key(r, batch_); !s.ok()) {
      error_ = s;
      continue;
    }
    unreplayed_[{batch_.input, batch_.first_frame}] = &r;
  }
  replaying_ = !unreplayed_.empty();
}

bool DetectionJournal::replay(std::size_t input, std::span<const std::uint64_t> seqs, std::vector<Detections>& out) {
  MutexLock lock(mu_);
  const auto it = seqs.empty() ? unreplayed_.end() : unreplayed_.find({input, seqs.front()});
  if (it == unreplayed_.end()) return false;
  const std::string* record = it->second;
  unreplayed_.erase(it);
  replaying_ = !unreplayed_.empty();
  if (Status s = decode_detections(*record, batch_); !s.ok() || batch_.frames.size() != seqs.size()) {
    if (error_.ok()) error_ = s.ok() ? other_frames() : s;
    return false;
  }
  out.swap(batch_.frames);
  resumed_frames_ += seqs.size();
  return true;
}

void DetectionJournal::record(std::size_t input, std::span<const std::uint64_t> seqs, std::span<const Detections> found) {
  MutexLock lock(mu_);
  if (journal_ == nullptr || seqs.empty() || !error_.ok()) return;
  error_ = journal_->append(encode_detections(static_cast<std::uint32_t>(input), seqs.front(), found));
}

Status DetectionJournal::finish_input(std::size_t input) {
  MutexLock lock(mu_);
  const auto left = unreplayed_.lower_bound({input, 0});
  if (error_.ok() && left != unreplayed_.end() && left->first.first == input) {
    error_ = other_frames();
  }
  return error_;
}

void EmbeddingJournal::resume_from(Journal& journal, const std::vector<std::string>& records) {
  MutexLock lock(mu_);
  journal_ = &journal;
  for (const std::string& r : records) {
    if (record_kind(r) == RecordKind::embeddings) unreplayed_.push_back(&r);
  }
}

bool EmbeddingJournal::replay(std::span<const std::uint64_t> face_ids, std::vector<Embedding>& out, Status& status) {
  MutexLock lock(mu_);
  if (next_ >= unreplayed_.size()) return false;
  resumed_batches_.fetch_add(1, std::memory_order_relaxed);
  status = decode_embeddings(*unreplayed_[next_++], batch_);
  if (status.ok() && (batch_.dim != dim_ || !std::equal(face_ids.begin(), face_ids.end(), batch_.face_ids.begin(), batch_.face_ids.end()))) {
    status = Error{ErrorCode::data_loss, "the harvest journal does not match the inputs (embeddings of other faces)"};
  }
  out.clear();
  if (!status.ok()) return true;
  for (std::size_t i = 0; i < face_ids.size(); ++i) {
    const float* row = batch_.values.data() + i * dim_;
    Embedding& e = out.emplace_back(dim_);
    std::copy(row, row + dim_, e.begin());
  }
  return true;
}

void EmbeddingJournal::record(std::span<const std::uint64_t> face_ids, const std::vector<Embedding>& embeddings) {
  MutexLock lock(mu_);
  if (journal_ == nullptr || !error_.ok()) return;
  values_.clear();
  for (const Embedding& e : embeddings) values_.insert(values_.end(), e.begin(), e.end());
  error_ = journal_->append(encode_embeddings(face_ids, static_cast<std::uint32_t>(dim_), values_));
}

Status EmbeddingJournal::status() const {
  MutexLock lock(mu_);
  return error_;
}

}  // namespace vigil
