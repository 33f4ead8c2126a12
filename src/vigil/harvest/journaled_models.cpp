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

void JournaledModels::resume_from(Journal& journal, const std::vector<std::string>& records) {
  journal_ = &journal;
  for (const std::string& r : records) {
    if (record_kind(r) == RecordKind::embeddings) replay_embeddings_.push_back(&r);
  }
}

void JournaledModels::embed(ModelCall& call) {
  const std::size_t n = call.faces.size();
  call.job.count = n;
  if (next_embeddings_ < replay_embeddings_.size()) {  // the killed run embedded these faces
    call.replayed = true;
    ++resumed_embedder_calls_;
    if (replay_error_.ok()) replay_error_ = replay_embeddings(call);
    if (!replay_error_.ok()) call.job.status = replay_error_;
    return;
  }
  const std::size_t values = call.faces.front().chip.size();
  call.job.chips.resize(n * values);
  for (std::size_t i = 0; i < n; ++i) {
    std::copy(call.faces[i].chip.begin(), call.faces[i].chip.end(), call.job.chips.begin() + static_cast<std::ptrdiff_t>(i * values));
  }
  pool_.submit(call.job);
}

Status JournaledModels::replay_embeddings(ModelCall& call) {
  batch_ids_.clear();
  for (const KeptFace& f : call.faces) batch_ids_.push_back(f.candidate.face_id);
  VIGIL_RETURN_IF_ERROR(decode_embeddings(*replay_embeddings_[next_embeddings_++], replayed_embeddings_));
  if (replayed_embeddings_.face_ids != batch_ids_ || replayed_embeddings_.dim != dim_) {
    return Error{ErrorCode::data_loss, "the harvest journal does not match the inputs (embeddings of other faces)"};
  }
  for (std::size_t i = 0; i < call.faces.size(); ++i) {
    const float* row = replayed_embeddings_.values.data() + i * dim_;
    Embedding& e = call.job.embeddings.emplace_back(dim_);
    std::copy(row, row + dim_, e.begin());
  }
  return {};
}

Status JournaledModels::finish(ModelCall& call) {
  if (call.replayed) return call.job.status.ok() ? replay_error_ : call.job.status;
  pool_.wait(call.job);
  if (!call.job.status.ok()) return call.job.status;
  if (journal_) {
    batch_ids_.clear();
    embedding_values_.clear();
    for (std::size_t i = 0; i < call.faces.size(); ++i) {
      batch_ids_.push_back(call.faces[i].candidate.face_id);
      embedding_values_.insert(embedding_values_.end(), call.job.embeddings[i].begin(), call.job.embeddings[i].end());
    }
    VIGIL_RETURN_IF_ERROR(journal_->append(encode_embeddings(batch_ids_, static_cast<std::uint32_t>(dim_), embedding_values_)));
  }
  return replay_error_;
}

}  // namespace vigil
