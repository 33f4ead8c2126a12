// OnnxModel: an ONNX file read into plain structs (graph inputs and outputs with their
// shapes, nodes with attributes, constant tensors), through the ONNX project's own protobuf
// classes (Debian's libonnx).
//
// Used to check a model's signature before loading it into a runtime (a wrong file gets an
// error naming what was expected and what the file has) and by backends that lower the graph
// into their own operators (XNNPACK). Constant nodes become initializers; float16, external
// data and sub-graphs are not supported here.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "vigil/core/status.h"

namespace vigil {

// A constant: float or integer data (int32/int64 are read as int64), with its dims.
struct OnnxTensor {
  std::vector<std::int64_t> dims;
  std::vector<float> floats;        // FLOAT
  std::vector<std::int64_t> ints;   // INT64, INT32
  bool is_float() const { return !floats.empty() || ints.empty(); }
  std::int64_t element_count() const;
};

struct OnnxAttribute {
  std::int64_t i = 0;
  float f = 0;
  std::string s;
  std::vector<std::int64_t> ints;
  std::vector<float> floats;
};

struct OnnxNode {
  std::string op;
  std::string name;
  std::vector<std::string> inputs;   // "" for an omitted optional input
  std::vector<std::string> outputs;
  std::map<std::string, OnnxAttribute> attributes;

  bool has(const std::string& attribute) const { return attributes.count(attribute) != 0; }
  std::int64_t attr_int(const std::string& attribute, std::int64_t fallback) const;
  float attr_float(const std::string& attribute, float fallback) const;
  std::string attr_string(const std::string& attribute, const std::string& fallback) const;
  std::vector<std::int64_t> attr_ints(const std::string& attribute) const;
};

// A graph input or output: its name and dims (-1 where the dim is symbolic or unknown).
struct OnnxValueInfo {
  std::string name;
  std::vector<std::int64_t> dims;
};

struct OnnxModel {
  std::string path;
  std::int64_t opset = 0;  // of the default domain
  std::vector<OnnxValueInfo> inputs;   // without initializers
  std::vector<OnnxValueInfo> outputs;
  std::map<std::string, OnnxTensor> constants;  // initializers and Constant nodes
  std::vector<OnnxNode> nodes;                  // topological order, Constant nodes removed

  const OnnxTensor* constant(const std::string& name) const;
};

// Reads an ONNX file. not_found when missing; invalid_argument when it is not an ONNX model
// or uses what this reader does not support.
Result<OnnxModel> read_onnx_model(const std::string& path);

// "[?,3,640,640]" (? where the dim is symbolic).
std::string dims_string(const std::vector<std::int64_t>& dims);

// What a file offers, for errors: "1 input [?,3,640,640] and 1 output [?,84,8400]".
std::string signature_string(const OnnxModel& model);

}  // namespace vigil
