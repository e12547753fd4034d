// The framing shared by every grpo wire protocol (remote graders now, rollout workers later): how one message is laid
// out on a TCP stream, and Boost.Asio coroutines that read and write such frames with a deadline. A frame is
//
//   "GRPW"  payload length (4 bytes, little-endian, unsigned)  payload (a serialized protobuf message)
//
// The magic makes a client that reached the wrong port (an HTTP server, say) fail with a clear message on its first
// bytes instead of reading a random length; the size limit is checked before anything is allocated, so no peer can
// make us reserve 4 GiB. Plain C++ with Asio and protobuf: no LibTorch, nothing from the rest of grpo.
//
// Every failure throws WireError, whose message says what arrived and where in the frame, and whose kind() says what
// to do about it (retry, close quietly, give up). Messages do not name the peer: the caller knows it and prefixes it.
// After any error the stream is out of step (part of a frame may have been consumed): close the socket rather than
// read from it again.
#pragma once

#include <array>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>  // before Asio: Boost 1.74's awaitable.hpp uses std::exchange without including it

#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>

namespace google::protobuf {
class MessageLite;
}  // namespace google::protobuf

namespace grpo::wire {

namespace asio = boost::asio;
using Clock = std::chrono::steady_clock;

inline constexpr std::array<char, 4> kFrameMagic = {'G', 'R', 'P', 'W'};
inline constexpr std::size_t kFrameHeaderBytes = 8;  // magic + length
// Default largest payload a reader accepts (and a writer sends). The length field caps any limit at 4 GiB - 1.
inline constexpr std::size_t kDefaultMaxFrameBytes = std::size_t{64} << 20;
inline constexpr Clock::time_point kNoDeadline = Clock::time_point::max();

enum class WireErrorKind {
  kClosed,         // the peer closed the connection cleanly between frames: the normal end of a conversation
  kTruncated,      // the peer closed the connection in the middle of a frame
  kBadMagic,       // the bytes where a frame starts are not "GRPW": not a grpo peer, or the stream is out of step
  kFrameTooLarge,  // a frame's length exceeds the limit (reading), or a payload is too large to send (writing)
  kBadPayload,     // a frame arrived whole but its payload is not the expected protobuf message
  kTimeout,        // the deadline passed before the operation finished
  kConnectFailed,  // no connection could be made (refused, unreachable, name not resolved)
  kIo,             // any other socket error (connection reset, broken pipe, ...)
};

std::string_view to_string(WireErrorKind kind);

class WireError : public std::runtime_error {
 public:
  WireError(WireErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  WireErrorKind kind() const { return kind_; }

 private:
  WireErrorKind kind_;
};

// ---- Encoding and decoding, no I/O --------------------------------------------------------------------------------

// The 8 header bytes for a payload of `payload_bytes`. Throws WireError(kFrameTooLarge) when it exceeds
// `max_frame_bytes` (or 4 GiB - 1, which the length field cannot hold).
std::array<char, kFrameHeaderBytes> encode_frame_header(std::size_t payload_bytes,
                                                        std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

// Header and payload in one string, e.g. for a test or a blocking write.
std::string encode_frame(std::string_view payload, std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

// The payload length announced by `header` (at least kFrameHeaderBytes bytes). Throws WireError(kBadMagic) when the
// magic is wrong and WireError(kFrameTooLarge) when the length exceeds `max_frame_bytes`.
std::size_t decode_frame_header(std::span<const char> header, std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

// Parses `payload` into `message`. Throws WireError(kBadPayload) naming the message type when it does not parse.
// (proto3 parsing is lenient: random bytes sometimes parse as a message with unknown fields, so protocols also check
// what they read, e.g. that a reply's id matches its request.)
void parse_payload(std::string_view payload, google::protobuf::MessageLite& message);

// Serializes `message`. Throws WireError(kFrameTooLarge) when it exceeds `max_frame_bytes`.
std::string serialize_payload(const google::protobuf::MessageLite& message,
                              std::size_t max_frame_bytes = kDefaultMaxFrameBytes);

// ---- Boost.Asio coroutines ----------------------------------------------------------------------------------------
// Each takes a deadline: when it passes, the operation is cancelled and WireError(kTimeout) is thrown. The deadline
// is enforced with a timer on the calling coroutine's executor, so the socket must be driven by that executor (one
// thread running the io_context, or a strand). Arguments passed by reference or view must outlive the co_await.

// Reads one frame and returns its payload. The magic is checked as its bytes arrive, so a peer speaking another
// protocol is reported at once even when it sends fewer than 8 bytes and then waits. Throws WireError: kClosed when
// the peer closed before the first byte of the frame, kTruncated when it closed within it, kBadMagic,
// kFrameTooLarge (before allocating), kTimeout, kIo.
asio::awaitable<std::string> async_read_frame(asio::ip::tcp::socket& socket,
                                              std::size_t max_frame_bytes = kDefaultMaxFrameBytes,
                                              Clock::time_point deadline = kNoDeadline);

// Writes `payload` as one frame. Throws WireError: kFrameTooLarge (before writing anything), kTimeout, kIo.
asio::awaitable<void> async_write_frame(asio::ip::tcp::socket& socket, std::string_view payload,
                                        std::size_t max_frame_bytes = kDefaultMaxFrameBytes,
                                        Clock::time_point deadline = kNoDeadline);

// Resolves `host` (a name or an address) and connects to the first endpoint that accepts, with TCP_NODELAY set
// (frames are small request/reply messages, which Nagle's algorithm would delay). Throws WireError:
// kConnectFailed, kTimeout.
asio::awaitable<asio::ip::tcp::socket> async_connect(std::string host, std::uint16_t port,
                                                     Clock::time_point deadline = kNoDeadline);

// "HOST:PORT" → (HOST, PORT), the inverse of format_endpoint: IPv6 hosts may be bracketed ("[::1]:9000"). Throws
// std::invalid_argument naming the address when the host is empty or the port is not in [1, 65535].
std::pair<std::string, std::uint16_t> parse_endpoint(std::string_view address);

// "HOST:PORT" for messages, with IPv6 addresses bracketed ("[::1]:9000").
std::string format_endpoint(std::string_view host, std::uint16_t port);
std::string format_endpoint(const asio::ip::tcp::endpoint& endpoint);

}  // namespace grpo::wire
