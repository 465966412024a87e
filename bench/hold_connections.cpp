// Opens N keep-alive connections to an HTTP server, sends one request on each, reads the responses,
// then holds them idle for a while so the server's per-connection memory can be measured.
//
//   liftoff-hold-connections --port 8080 --connections 10000 --hold-seconds 10 --ready-file
//   /tmp/ready
#include <arpa/inet.h>
#include <fmt/format.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
  CLI::App cli{"Hold many idle keep-alive connections"};
  unsigned short port = 8080;
  unsigned connections = 10000, hold_seconds = 10;
  std::string path = "/healthz", ready_file;
  cli.add_option("--port", port);
  cli.add_option("--connections", connections);
  cli.add_option("--hold-seconds", hold_seconds);
  cli.add_option("--path", path);
  cli.add_option("--ready-file", ready_file, "written once every connection got its response");
  CLI11_PARSE(cli, argc, argv);

  rlimit limit{connections + 1024, connections + 1024};
  setrlimit(RLIMIT_NOFILE, &limit);
  std::string request = "GET " + path + " HTTP/1.1\r\nHost: bench\r\n\r\n";
  std::vector<int> fds;
  unsigned ok = 0;
  for (unsigned i = 0; i < connections; ++i) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      fmt::print(stderr, "connect {} failed\n", i);
      if (fd >= 0) ::close(fd);
      continue;
    }
    ::send(fd, request.data(), request.size(), MSG_NOSIGNAL);
    char buf[4096];
    timeval tv{5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (::recv(fd, buf, sizeof(buf), 0) > 0 && std::string_view(buf, 12).ends_with("200")) ++ok;
    fds.push_back(fd);
  }
  fmt::print("{{\"connections\":{},\"ok\":{}}}\n", fds.size(), ok);
  std::fflush(stdout);
  if (!ready_file.empty()) std::ofstream(ready_file) << ok << "\n";
  std::this_thread::sleep_for(std::chrono::seconds(hold_seconds));
  for (int fd : fds) ::close(fd);
  return ok == connections ? 0 : 1;
}
