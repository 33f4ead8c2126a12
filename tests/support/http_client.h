// A minimal HTTP/1.1 client over loopback sockets for the tests: one request per
// connection (Connection: close), chunked bodies decoded, and the raw socket helpers that
// hostile-client tests need.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

namespace vigil::test {

struct HttpReply {
  int status = 0;  // 0: no response (connection failed, closed or timed out)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

using HttpHeaders = std::vector<std::pair<std::string, std::string>>;

HttpReply http_request(int port, const std::string& method, const std::string& target, const HttpHeaders& headers = {},
                       const std::string& body = "", int timeout_ms = 5000);
inline HttpReply http_get(int port, const std::string& target, const HttpHeaders& headers = {}) {
  return http_request(port, "GET", target, headers);
}

// A connected loopback socket (-1 on failure), and raw sends and reads on it.
int connect_loopback(int port);
bool send_all(int fd, const std::string& bytes);
// Reads until the peer closes or timeout_ms passes; returns what arrived.
std::string read_until_closed(int fd, int timeout_ms);
// Parses a complete response (as read_until_closed returns it).
HttpReply parse_reply(const std::string& raw);

}  // namespace vigil::test
