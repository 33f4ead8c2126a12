// The wire format of remote model calls: how one item of a batch (a letterboxed frame, an
// aligned face chip, or one item of a model's outputs) travels as a Redis bulk string, and the
// names of the stream keys and entry fields.
//
// A tensor item is "VT1" + format byte + rank + dims (int64, little-endian) + data:
//   format 'f': float32 values as they are;
//   format 'p': a palette: at most 256 distinct float32 values (the palette, 256 floats)
//               and one byte per value. Model inputs made from 8-bit pixels by one scale and
//               offset (x / 127.5 - 1, x / 255, ...) are exactly that, so they travel at a
//               quarter of the size and arrive bit for bit as they left (the model's
//               outputs on a worker equal the in-process ones).
// encode_item tries the palette for the scales vigil's pre-processing uses and falls back to
// float32 when any value does not fit.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "vigil/core/status.h"
#include "vigil/infer/tensor.h"

namespace vigil {

// Item n of `tensor` (shape [1, rest...]) appended to `out`.
void encode_item(const Tensor& tensor, std::int64_t n, std::string& out);
// Decodes an item into `tensor`'s item n; the tensor's shape must match the item's (after
// the first axis), or, when `tensor` has rank 0, it becomes [count, item dims...].
// data_loss for bytes that are not an item.
Status decode_item(std::string_view bytes, Tensor& tensor, std::int64_t n, std::int64_t count);
// The shape an encoded item declares ([1, ...]); data_loss when unreadable.
Result<std::vector<std::int64_t>> item_shape(std::string_view bytes);

// Keys. Each carries a hash tag ({...}) so that a Redis Cluster places a model's shard (or a
// node's replies) on one slot.
std::string request_stream(std::string_view prefix, std::string_view model, int shard);  // PREFIX:{MODEL.SHARD}:req
std::string reply_stream(std::string_view prefix, std::string_view node);               // PREFIX:{NODE}:reply
std::string dead_letter_stream(std::string_view prefix, std::string_view model);        // PREFIX:{MODEL}:dead
inline constexpr std::string_view kWorkerGroup = "workers";

// Fields of a request entry.
namespace request_field {
inline constexpr std::string_view id = "id";        // the node's request number (decimal)
inline constexpr std::string_view reply = "r";      // the reply stream
inline constexpr std::string_view model = "m";      // the model's name in the config
inline constexpr std::string_view live = "live";    // "1": may be dropped when late
inline constexpr std::string_view captured = "cap"; // capture time, ms since the epoch
inline constexpr std::string_view camera = "cam";
inline constexpr std::string_view seq = "seq";
inline constexpr std::string_view input = "x";      // the model input item
}  // namespace request_field

// Fields of a reply entry: id, status ("ok", "dropped: deadline", "failed: ..."), then the
// model's outputs y0, y1, ... in its output order.
namespace reply_field {
inline constexpr std::string_view id = "id";
inline constexpr std::string_view status = "st";
}  // namespace reply_field
inline constexpr std::string_view kReplyOk = "ok";
inline constexpr std::string_view kReplyDeadline = "dropped: deadline";

}  // namespace vigil
