#include "vigil/infer/onnx_model.h"

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <onnx/onnx_pb.h>

namespace vigil {

namespace {

Error bad(const std::string& path, const std::string& what) {
  return Error{ErrorCode::invalid_argument, path + ": " + what};
}

template <typename T>
std::vector<T> raw_as(const std::string& raw) {
  std::vector<T> out(raw.size() / sizeof(T));
  std::memcpy(out.data(), raw.data(), out.size() * sizeof(T));
  return out;
}

Result<OnnxTensor> read_tensor(const onnx::TensorProto& t, const std::string& path) {
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    return bad(path, "tensor '" + t.name() + "' keeps its data in an external file, which vigil does not read");
  }
  OnnxTensor out;
  out.dims.assign(t.dims().begin(), t.dims().end());
  switch (t.data_type()) {
    case onnx::TensorProto::FLOAT:
      out.floats = t.has_raw_data() ? raw_as<float>(t.raw_data())
                                    : std::vector<float>(t.float_data().begin(), t.float_data().end());
      break;
    case onnx::TensorProto::INT64:
      out.ints = t.has_raw_data() ? raw_as<std::int64_t>(t.raw_data())
                                  : std::vector<std::int64_t>(t.int64_data().begin(), t.int64_data().end());
      break;
    case onnx::TensorProto::INT32: {
      const std::vector<std::int32_t> values = t.has_raw_data()
                                                   ? raw_as<std::int32_t>(t.raw_data())
                                                   : std::vector<std::int32_t>(t.int32_data().begin(), t.int32_data().end());
      out.ints.assign(values.begin(), values.end());
      break;
    }
    default:
      return bad(path, "tensor '" + t.name() + "' has element type " + std::to_string(t.data_type()) +
                           "; vigil reads float32, int32 and int64 constants");
  }
  const std::size_t stored = out.floats.empty() ? out.ints.size() : out.floats.size();
  if (static_cast<std::int64_t>(stored) != out.element_count()) {
    return bad(path, "tensor '" + t.name() + "' holds " + std::to_string(stored) + " values for dims " + dims_string(out.dims));
  }
  return out;
}

OnnxValueInfo read_value_info(const onnx::ValueInfoProto& v) {
  OnnxValueInfo out;
  out.name = v.name();
  if (v.type().has_tensor_type() && v.type().tensor_type().has_shape()) {
    for (const auto& d : v.type().tensor_type().shape().dim()) out.dims.push_back(d.has_dim_value() ? d.dim_value() : -1);
  }
  return out;
}

}  // namespace

std::int64_t OnnxTensor::element_count() const {
  std::int64_t n = 1;
  for (const std::int64_t d : dims) n *= d;
  return n;
}

std::int64_t OnnxNode::attr_int(const std::string& attribute, std::int64_t fallback) const {
  const auto it = attributes.find(attribute);
  return it == attributes.end() ? fallback : it->second.i;
}

float OnnxNode::attr_float(const std::string& attribute, float fallback) const {
  const auto it = attributes.find(attribute);
  return it == attributes.end() ? fallback : it->second.f;
}

std::string OnnxNode::attr_string(const std::string& attribute, const std::string& fallback) const {
  const auto it = attributes.find(attribute);
  return it == attributes.end() ? fallback : it->second.s;
}

std::vector<std::int64_t> OnnxNode::attr_ints(const std::string& attribute) const {
  const auto it = attributes.find(attribute);
  return it == attributes.end() ? std::vector<std::int64_t>{} : it->second.ints;
}

const OnnxTensor* OnnxModel::constant(const std::string& name) const {
  const auto it = constants.find(name);
  return it == constants.end() ? nullptr : &it->second;
}

std::string dims_string(const std::vector<std::int64_t>& dims) {
  std::string out = "[";
  for (std::size_t i = 0; i < dims.size(); ++i) {
    if (i > 0) out += ',';
    out += dims[i] < 0 ? std::string("?") : std::to_string(dims[i]);
  }
  return out + "]";
}

std::string signature_string(const OnnxModel& model) {
  const auto list = [](const std::vector<OnnxValueInfo>& values, const char* one, const char* many) {
    std::string out = std::to_string(values.size()) + (values.size() == 1 ? one : many);
    for (std::size_t i = 0; i < values.size(); ++i) out += (i == 0 ? " " : ", ") + dims_string(values[i].dims);
    return out;
  };
  return list(model.inputs, " input", " inputs") + " and " + list(model.outputs, " output", " outputs");
}

Result<OnnxModel> read_onnx_model(const std::string& path) {
  std::error_code ec;
  if (!std::filesystem::is_regular_file(path, ec)) return Error{ErrorCode::not_found, path + ": model file not found"};
  std::ifstream in(path, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (bytes.empty()) return bad(path, "empty or unreadable model file");
  onnx::ModelProto proto;
  if (!proto.ParseFromString(bytes) || !proto.has_graph()) return bad(path, "not an ONNX model");

  OnnxModel model;
  model.path = path;
  for (const auto& opset : proto.opset_import()) {
    if (opset.domain().empty() || opset.domain() == "ai.onnx") model.opset = opset.version();
  }
  const onnx::GraphProto& graph = proto.graph();
  for (const auto& init : graph.initializer()) {
    auto tensor = read_tensor(init, path);
    if (!tensor.ok()) return tensor.error();
    model.constants[init.name()] = std::move(*tensor);
  }
  for (const auto& input : graph.input()) {
    if (model.constants.count(input.name()) == 0) model.inputs.push_back(read_value_info(input));
  }
  for (const auto& output : graph.output()) model.outputs.push_back(read_value_info(output));
  for (const auto& n : graph.node()) {
    if (!n.domain().empty() && n.domain() != "ai.onnx") {
      return bad(path, "node '" + n.name() + "' is " + n.domain() + "::" + n.op_type() + ", outside the standard ONNX domain");
    }
    OnnxNode node;
    node.op = n.op_type();
    node.name = n.name();
    node.inputs.assign(n.input().begin(), n.input().end());
    node.outputs.assign(n.output().begin(), n.output().end());
    for (const auto& a : n.attribute()) {
      OnnxAttribute attr;
      attr.i = a.i();
      attr.f = a.f();
      attr.s = a.s();
      attr.ints.assign(a.ints().begin(), a.ints().end());
      attr.floats.assign(a.floats().begin(), a.floats().end());
      node.attributes[a.name()] = std::move(attr);
    }
    if (node.op == "Constant") {
      OnnxTensor value;
      const auto tensor_attr = std::find_if(n.attribute().begin(), n.attribute().end(),
                                            [](const onnx::AttributeProto& a) { return a.name() == "value"; });
      if (tensor_attr != n.attribute().end()) {
        auto tensor = read_tensor(tensor_attr->t(), path);
        if (!tensor.ok()) return tensor.error();
        value = std::move(*tensor);
      } else if (node.has("value_float")) {
        value.floats = {node.attr_float("value_float", 0)};
      } else if (node.has("value_int")) {
        value.ints = {node.attr_int("value_int", 0)};
      } else if (node.has("value_ints")) {
        value.ints = node.attr_ints("value_ints");
        value.dims = {static_cast<std::int64_t>(value.ints.size())};
      } else if (node.has("value_floats")) {
        value.floats = node.attributes.at("value_floats").floats;
        value.dims = {static_cast<std::int64_t>(value.floats.size())};
      } else {
        return bad(path, "Constant node '" + node.name + "' has no value vigil can read");
      }
      if (node.outputs.size() != 1) return bad(path, "Constant node '" + node.name + "' must have one output");
      model.constants[node.outputs[0]] = std::move(value);
      continue;
    }
    model.nodes.push_back(std::move(node));
  }
  if (model.inputs.empty()) return bad(path, "the graph has no input");
  if (model.outputs.empty()) return bad(path, "the graph has no output");
  return model;
}

}  // namespace vigil
