// A C++ server thread that kill() reaches while it waits for a connection.
//
// accept() blocks in the kernel, where no kill can reach a thread. The server waits with
// mthread::wait_readable() first — one of mthread's waits — so kill() unwinds it there
// (destructors run: the listening socket is closed), and suspend() stops it there.
//
//   ./mthread_killable_server     starts the server, connects once, kills the server
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <mthread/mthread.hpp>

using namespace std::chrono_literals;

namespace {

// Closes a descriptor when the thread unwinds, killed or not.
struct socket_handle {
  int fd;
  explicit socket_handle(int descriptor) : fd(descriptor) {}
  ~socket_handle() {
    if (fd >= 0) close(fd);
  }
  socket_handle(const socket_handle&) = delete;
  socket_handle& operator=(const socket_handle&) = delete;
};

void serve(int listening_fd) {
  const socket_handle listener(listening_fd);
  struct goodbye {
    ~goodbye() { std::printf("server: unwound, listening socket closed\n"); }
  } at_end;
  for (;;) {
    mthread::wait_readable(listener.fd);  // the kill lands here
    const socket_handle client(accept(listener.fd, nullptr, nullptr));
    if (client.fd < 0) continue;
    char line[64];
    const ssize_t got = recv(client.fd, line, sizeof line, 0);
    std::printf("server: a client sent %zd byte(s)\n", got);
  }
}

}  // namespace

int main() {
  const int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof address;
  if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      listen(listener, 4) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&address), &length) != 0) {
    std::perror("listening socket");
    return 1;
  }
  const auto server = mthread::start_new_thread("server", serve, listener);

  const int client = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect(client, reinterpret_cast<sockaddr*>(&address), length) == 0) {
    (void)send(client, "hello", 5, 0);
  }
  close(client);

  // Once the server waits for the next connection, it shows WAITING: kill it there.
  const auto until = std::chrono::steady_clock::now() + 5s;
  while (mthread::status(server) != mthread::thread_state::waiting &&
         std::chrono::steady_clock::now() < until) {
    mthread::sleep_for(1ms);
  }
  const auto killed_at = std::chrono::steady_clock::now();
  mthread::kill(server);
  const bool gone = mthread::join(server, 5s);
  const auto took =
      std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - killed_at);
  std::printf("main: server %s %.0f us after kill()\n", gone ? "gone" : "STILL ALIVE",
              took.count());
  return gone ? 0 : 1;
}
