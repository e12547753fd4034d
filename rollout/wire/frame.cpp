// Encoding, decoding and the Asio coroutines of the grpo wire framing (see frame.h for the format).
#include "rollout/wire/frame.h"

#include <algorithm>
#include <stdexcept>
#include <string>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <utility>

#include <fmt/format.h>
#include <google/protobuf/message_lite.h>
#include <boost/asio/buffer.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

namespace grpo::wire {
namespace {

using boost::system::error_code;
using tcp = asio::ip::tcp;

// The length field is 32 bits, so no limit can exceed this whatever the caller asks for.
constexpr std::size_t kLengthFieldMax = std::numeric_limits<std::uint32_t>::max();

std::size_t effective_limit(std::size_t max_frame_bytes) { return std::min(max_frame_bytes, kLengthFieldMax); }

// Bytes a peer sent, single-quoted with anything outside printable ASCII as \xNN: what arrives where a frame should
// start is often binary or another protocol's text, and it ends up in logs. (reward/grader.h has the same helper,
// but the wire library must not depend on the reward library.)
std::string quote_bytes(std::string_view bytes) {
  std::string quoted = "'";
  for (const char c : bytes) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte == '\\' || byte == '\'') {
      quoted += '\\';
      quoted += c;
    } else if (byte >= 0x20 && byte < 0x7f) {
      quoted += c;
    } else {
      quoted += fmt::format("\\x{:02x}", byte);
    }
  }
  quoted += '\'';
  return quoted;
}

[[noreturn]] void throw_bad_magic(std::string_view received) {
  throw WireError(WireErrorKind::kBadMagic,
                  fmt::format("peer sent {} where a grpo frame starts (is this a grpo port?)", quote_bytes(received)));
}

[[noreturn]] void throw_too_large(std::size_t bytes, std::size_t max_frame_bytes, std::string_view what) {
  throw WireError(WireErrorKind::kFrameTooLarge, fmt::format("{} of {} bytes exceeds the {}-byte limit", what, bytes,
                                                             effective_limit(max_frame_bytes)));
}

// Cancels an operation when a deadline passes. The timer runs on the calling coroutine's executor, so its handler
// never runs concurrently with the coroutine; `finished` keeps a handler that was already queued when the operation
// completed from touching a socket that may be gone by then.
class DeadlineGuard {
 public:
  DeadlineGuard(const asio::any_io_executor& executor, Clock::time_point deadline, std::function<void()> cancel)
      : state_(std::make_shared<State>()), timer_(executor) {
    if (deadline == kNoDeadline) return;
    timer_.expires_at(deadline);
    timer_.async_wait([state = state_, cancel = std::move(cancel)](const error_code& error) {
      if (error || state->finished) return;
      state->fired = true;
      cancel();
    });
  }
  DeadlineGuard(const DeadlineGuard&) = delete;
  DeadlineGuard& operator=(const DeadlineGuard&) = delete;

  ~DeadlineGuard() {
    state_->finished = true;
    try {
      timer_.cancel();
    } catch (...) {  // nothing to do: the handler checks `finished`
    }
  }

  bool fired() const { return state_->fired; }

 private:
  struct State {
    bool finished = false;
    bool fired = false;
  };
  std::shared_ptr<State> state_;
  asio::steady_timer timer_;
};

std::function<void()> cancel_socket(tcp::socket& socket) {
  return [&socket] {
    error_code ignored;
    socket.cancel(ignored);
  };
}

// Turns the error of a failed read into a WireError. `done` of `total` bytes of the `part` had arrived.
[[noreturn]] void throw_read_error(const error_code& error, const DeadlineGuard& guard, std::string_view part,
                                   std::size_t done, std::size_t total) {
  if (error == asio::error::eof) {
    if (part == "header" && done == 0) throw WireError(WireErrorKind::kClosed, "connection closed by the peer");
    throw WireError(WireErrorKind::kTruncated,
                    fmt::format("connection closed after {} of {} {} bytes", done, total, part));
  }
  if (error == asio::error::operation_aborted && guard.fired()) {
    throw WireError(
        WireErrorKind::kTimeout,
        fmt::format("deadline passed while reading a frame ({} of {} {} bytes received)", done, total, part));
  }
  throw WireError(WireErrorKind::kIo, fmt::format("reading a frame failed after {} of {} {} bytes: {}", done, total,
                                                  part, error.message()));
}

}  // namespace

std::string_view to_string(WireErrorKind kind) {
  switch (kind) {
    case WireErrorKind::kClosed:
      return "closed";
    case WireErrorKind::kTruncated:
      return "truncated";
    case WireErrorKind::kBadMagic:
      return "bad_magic";
    case WireErrorKind::kFrameTooLarge:
      return "frame_too_large";
    case WireErrorKind::kBadPayload:
      return "bad_payload";
    case WireErrorKind::kTimeout:
      return "timeout";
    case WireErrorKind::kConnectFailed:
      return "connect_failed";
    case WireErrorKind::kIo:
      return "io";
  }
  return "unknown";
}

std::array<char, kFrameHeaderBytes> encode_frame_header(std::size_t payload_bytes, std::size_t max_frame_bytes) {
  if (payload_bytes > effective_limit(max_frame_bytes)) throw_too_large(payload_bytes, max_frame_bytes, "frame");
  std::array<char, kFrameHeaderBytes> header{};
  std::copy(kFrameMagic.begin(), kFrameMagic.end(), header.begin());
  const auto length = static_cast<std::uint32_t>(payload_bytes);
  for (std::size_t i = 0; i < 4; ++i) header[4 + i] = static_cast<char>((length >> (8 * i)) & 0xffu);
  return header;
}

std::string encode_frame(std::string_view payload, std::size_t max_frame_bytes) {
  const std::array<char, kFrameHeaderBytes> header = encode_frame_header(payload.size(), max_frame_bytes);
  std::string frame;
  frame.reserve(header.size() + payload.size());
  frame.append(header.data(), header.size());
  frame.append(payload);
  return frame;
}

std::size_t decode_frame_header(std::span<const char> header, std::size_t max_frame_bytes) {
  if (header.size() < kFrameHeaderBytes) {
    throw std::invalid_argument(
        fmt::format("decode_frame_header: got {} bytes, a frame header has {}", header.size(), kFrameHeaderBytes));
  }
  if (!std::equal(kFrameMagic.begin(), kFrameMagic.end(), header.begin())) {
    throw_bad_magic(std::string_view(header.data(), kFrameMagic.size()));
  }
  std::uint32_t length = 0;
  for (std::size_t i = 0; i < 4; ++i) length |= std::uint32_t{static_cast<unsigned char>(header[4 + i])} << (8 * i);
  if (length > effective_limit(max_frame_bytes)) throw_too_large(length, max_frame_bytes, "frame");
  return length;
}

void parse_payload(std::string_view payload, google::protobuf::MessageLite& message) {
  // The size fits an int: frames are at most 4 GiB - 1 and ParseFromArray takes int, so check rather than wrap.
  if (payload.size() > static_cast<std::size_t>(std::numeric_limits<int>::max()) ||
      !message.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    throw WireError(WireErrorKind::kBadPayload, fmt::format("frame payload of {} bytes is not a valid {} message",
                                                            payload.size(), message.GetTypeName()));
  }
}

std::string serialize_payload(const google::protobuf::MessageLite& message, std::size_t max_frame_bytes) {
  const std::size_t bytes = message.ByteSizeLong();
  if (bytes > effective_limit(max_frame_bytes)) throw_too_large(bytes, max_frame_bytes, message.GetTypeName());
  std::string payload;
  if (!message.SerializeToString(&payload)) {
    throw WireError(WireErrorKind::kBadPayload,
                    fmt::format("could not serialize a {} message (required fields missing?)", message.GetTypeName()));
  }
  return payload;
}

asio::awaitable<std::string> async_read_frame(tcp::socket& socket, std::size_t max_frame_bytes,
                                              Clock::time_point deadline) {
  const DeadlineGuard guard(co_await asio::this_coro::executor, deadline, cancel_socket(socket));

  // The header is read as it arrives rather than all 8 bytes at once, so that a peer speaking another protocol is
  // caught on its first bytes even when it then waits for an answer (as HTTP clients and servers do).
  std::array<char, kFrameHeaderBytes> header{};
  std::size_t received = 0;
  while (received < header.size()) {
    error_code error;
    received += co_await socket.async_read_some(asio::buffer(header.data() + received, header.size() - received),
                                                asio::redirect_error(asio::use_awaitable, error));
    const std::size_t magic_bytes = std::min(received, kFrameMagic.size());
    if (!std::equal(header.begin(), header.begin() + static_cast<std::ptrdiff_t>(magic_bytes), kFrameMagic.begin())) {
      throw_bad_magic(std::string_view(header.data(), magic_bytes));
    }
    if (error) throw_read_error(error, guard, "header", received, header.size());
  }
  const std::size_t length = decode_frame_header(header, max_frame_bytes);

  std::string payload(length, '\0');
  error_code error;
  const std::size_t payload_received =
      co_await asio::async_read(socket, asio::buffer(payload), asio::redirect_error(asio::use_awaitable, error));
  if (error) throw_read_error(error, guard, "payload", payload_received, length);
  co_return payload;
}

asio::awaitable<void> async_write_frame(tcp::socket& socket, std::string_view payload, std::size_t max_frame_bytes,
                                        Clock::time_point deadline) {
  const std::array<char, kFrameHeaderBytes> header = encode_frame_header(payload.size(), max_frame_bytes);
  const DeadlineGuard guard(co_await asio::this_coro::executor, deadline, cancel_socket(socket));
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(header), asio::buffer(payload)};
  error_code error;
  const std::size_t written =
      co_await asio::async_write(socket, buffers, asio::redirect_error(asio::use_awaitable, error));
  if (!error) co_return;
  const std::size_t total = header.size() + payload.size();
  if (error == asio::error::operation_aborted && guard.fired()) {
    throw WireError(WireErrorKind::kTimeout,
                    fmt::format("deadline passed while writing a frame ({} of {} bytes sent)", written, total));
  }
  throw WireError(WireErrorKind::kIo,
                  fmt::format("writing a frame failed after {} of {} bytes: {}", written, total, error.message()));
}

asio::awaitable<tcp::socket> async_connect(std::string host, std::uint16_t port, Clock::time_point deadline) {
  const asio::any_io_executor executor = co_await asio::this_coro::executor;

  // A literal address needs no resolver (whose getaddrinfo call cannot be interrupted by the deadline).
  tcp::resolver::results_type endpoints;
  error_code error;
  const asio::ip::address address = asio::ip::make_address(host, error);
  if (!error) {
    endpoints = tcp::resolver::results_type::create(tcp::endpoint(address, port), host, std::to_string(port));
  } else {
    tcp::resolver resolver(executor);
    const DeadlineGuard guard(executor, deadline, [&resolver] { resolver.cancel(); });
    error = {};
    endpoints =
        co_await resolver.async_resolve(host, std::to_string(port), asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      if (guard.fired()) {
        throw WireError(WireErrorKind::kTimeout, "deadline passed while resolving the host name");
      }
      throw WireError(WireErrorKind::kConnectFailed,
                      fmt::format("cannot resolve '{}': {} (check the host name)", host, error.message()));
    }
  }

  tcp::socket socket(executor);
  {
    // Closing (not just cancelling) is what stops asio::async_connect from moving on to the next endpoint.
    const DeadlineGuard guard(executor, deadline, [&socket] {
      error_code ignored;
      socket.close(ignored);
    });
    error = {};
    co_await asio::async_connect(socket, endpoints, asio::redirect_error(asio::use_awaitable, error));
    if (error) {
      if (guard.fired()) throw WireError(WireErrorKind::kTimeout, "deadline passed while connecting");
      throw WireError(WireErrorKind::kConnectFailed, fmt::format("cannot connect: {}", error.message()));
    }
  }
  error = {};
  socket.set_option(tcp::no_delay(true), error);  // best effort: only latency depends on it
  co_return socket;
}

std::pair<std::string, std::uint16_t> parse_endpoint(std::string_view address) {
  const auto colon = address.rfind(':');
  const auto fail = [&] {
    throw std::invalid_argument(fmt::format("address '{}' must be host:port with a port in [1, 65535], e.g. \"127.0.0.1:9000\"", address));
  };
  if (colon == std::string_view::npos || colon == 0) fail();
  const auto port_text = address.substr(colon + 1);
  if (port_text.empty() || port_text.size() > 5 || port_text.find_first_not_of("0123456789") != std::string_view::npos) fail();
  const int port = std::stoi(std::string(port_text));
  if (port < 1 || port > 65535) fail();
  std::string host(address.substr(0, colon));
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  if (host.empty()) fail();
  return {host, static_cast<std::uint16_t>(port)};
}

std::string format_endpoint(std::string_view host, std::uint16_t port) {
  if (host.find(':') != std::string_view::npos) return fmt::format("[{}]:{}", host, port);
  return fmt::format("{}:{}", host, port);
}

std::string format_endpoint(const tcp::endpoint& endpoint) {
  return format_endpoint(endpoint.address().to_string(), endpoint.port());
}

}  // namespace grpo::wire
