// What `vigil harvest` writes to its journal so that a killed run continues where it was:
// the detector's output for each batch of sampled frames and the embedder's output for each
// batch of faces, after a header that ties the journal to its inputs and settings.
//
// Everything between the models (decoding, tracking, alignment, selection, clustering) is
// deterministic, so a resumed run decodes the inputs again from the start (decoding never
// seeks), takes each model output it already has from the journal instead of running the
// model, and reaches exactly the state of the killed run at its last record; from there it
// runs the models again. The outputs equal an uninterrupted run's, byte for byte.
//
// Records are binary, little-endian, floats bit for bit; the first byte says the kind. Upload
// records say which objects were sent and which arrived, so a resumed run sends none twice.
//
// Threading: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "vigil/core/detection.h"
#include "vigil/core/status.h"

namespace vigil {

enum class RecordKind : char {
  header = 'H',
  detections = 'D',
  embeddings = 'E',
  upload_started = 'S',  // an object is being sent (it may or may not have arrived)
  uploaded = 'U',        // the storage has it
};

// The kind of a record, or no value for an empty or unknown one.
std::optional<RecordKind> record_kind(std::string_view record);

// The header: what makes a journal this run's (inputs with their hashes, models, settings),
// as canonical JSON text.
std::string encode_header(std::string_view fingerprint);
Result<std::string> decode_header(std::string_view record);

struct DetectionBatch {
  std::uint32_t input = 0;        // index into the inputs
  std::uint64_t first_frame = 0;  // seq of the batch's first frame
  std::vector<Detections> frames;
};
std::string encode_detections(std::uint32_t input, std::uint64_t first_frame, std::span<const Detections> frames);
// Errors: data_loss when the record is not a well-formed detection batch.
Status decode_detections(std::string_view record, DetectionBatch& out);
// Only the batch's input and first frame (out.frames untouched), for indexing a journal
// without decoding every detection twice. Errors: data_loss when the record is too short.
Status decode_detections_key(std::string_view record, DetectionBatch& out);

struct EmbeddingBatch {
  std::vector<std::uint64_t> face_ids;
  std::uint32_t dim = 0;
  std::vector<float> values;  // face_ids.size() x dim
};
std::string encode_embeddings(std::span<const std::uint64_t> face_ids, std::uint32_t dim, std::span<const float> values);
// Errors: data_loss when the record is not a well-formed embedding batch.
Status decode_embeddings(std::string_view record, EmbeddingBatch& out);

// An upload record: which object (its URL) with which bytes (their MD5, lowercase hex).
struct UploadRecord {
  std::string url;
  std::string md5;
};
std::string encode_upload(RecordKind kind, std::string_view url, std::string_view md5);
// Errors: data_loss when the record is not a well-formed upload record.
Status decode_upload(std::string_view record, UploadRecord& out);

// SHA-256 of a file's bytes, lowercase hex (FFmpeg's libavutil). Errors: unavailable.
Result<std::string> file_sha256(const std::string& path);

}  // namespace vigil
