#include "liftoff/db/embedded_postgres.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <grp.h>
#include <libpq-fe.h>
#include <netinet/in.h>
#include <pwd.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <boost/url/encode.hpp>
#include <boost/url/rfc/unreserved_chars.hpp>
#include <fstream>
#include <memory>
#include <optional>
#include <random>
#include <sstream>

namespace liftoff::db {
namespace fs = std::filesystem;

namespace {

struct SystemUser {
  uid_t uid;
  gid_t gid;
};

std::optional<SystemUser> postgres_user() {
  if (::geteuid() != 0) return std::nullopt;
  passwd* pw = ::getpwnam("postgres");
  if (!pw) return std::nullopt;
  return SystemUser{pw->pw_uid, pw->pw_gid};
}

void chown_tree(const fs::path& path, const SystemUser& user) {
  ::chown(path.c_str(), user.uid, user.gid);
  if (!fs::is_directory(path)) return;
  for (const auto& entry : fs::recursive_directory_iterator(path)) {
    ::lchown(entry.path().c_str(), user.uid, user.gid);
  }
}

std::string random_password() {
  static constexpr char kAlphabet[] = "abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
  std::random_device rd;
  std::string out;
  for (int i = 0; i < 32; ++i) out += kAlphabet[rd() % (sizeof(kAlphabet) - 1)];
  return out;
}

bool port_free(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return true;  // cannot tell: let pg_ctl report
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bool free = ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  ::close(fd);
  return free;
}

}  // namespace

int run_program(const std::vector<std::string>& argv, bool drop_root) {
  auto user = drop_root ? postgres_user() : std::nullopt;
  std::vector<char*> args;
  args.reserve(argv.size() + 1);
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = ::fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    if (user) {
      if (::setgroups(0, nullptr) != 0 || ::setgid(user->gid) != 0 || ::setuid(user->uid) != 0)
        _exit(126);
    }
    // The server must not inherit our listening sockets or stdout pipe.
    int devnull = ::open("/dev/null", O_RDWR);
    if (devnull >= 0) {
      ::dup2(devnull, STDIN_FILENO);
      ::dup2(devnull, STDOUT_FILENO);
    }
    ::close_range(3, ~0U, 0);  // every one, however many connections are open
    ::execv(args[0], args.data());
    _exit(127);
  }
  int status = 0;
  while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

EmbeddedPostgres::EmbeddedPostgres(EmbeddedPostgresOptions options) : options_(std::move(options)) {
  options_.data_dir = fs::absolute(options_.data_dir);
}

std::string EmbeddedPostgres::password() const {
  std::ifstream in(password_file());
  std::string pw;
  std::getline(in, pw);
  return pw;
}

std::filesystem::path EmbeddedPostgres::socket_dir() const {
  return options_.data_dir / "run";
}

std::filesystem::path EmbeddedPostgres::socket_path() const {
  return socket_dir() / (".s.PGSQL." + std::to_string(options_.port));
}

bool EmbeddedPostgres::socket_fits() const {
  // An address longer than sun_path cannot be bound, and pg_ctl's command line is a shell's, where
  // the directory stands in single quotes.
  return socket_path().string().size() < sizeof(sockaddr_un::sun_path) &&
         socket_dir().string().find('\'') == std::string::npos;
}

std::string EmbeddedPostgres::url_for(const std::string& database) const {
  std::error_code ec;
  if (socket_fits() && fs::exists(socket_path(), ec)) {
    return fmt::format("postgresql://liftoff:{}@/{}?host={}&port={}", password(), database,
                       boost::urls::encode(socket_dir().string(), boost::urls::unreserved_chars),
                       options_.port);
  }
  return tcp_url(options_.port, database);
}

std::string EmbeddedPostgres::tcp_url(unsigned short port, const std::string& database) const {
  return fmt::format("postgresql://liftoff:{}@127.0.0.1:{}/{}", password(), port, database);
}

std::string EmbeddedPostgres::url() const {
  return url_for(options_.database);
}

Result<void> EmbeddedPostgres::init() {
  std::error_code ec;
  fs::create_directories(options_.data_dir, ec);
  if (ec)
    return make_error(Errc::unavailable,
                      "cannot create " + options_.data_dir.string() + ": " + ec.message());
  auto user = postgres_user();
  if (::geteuid() == 0 && !user) {
    return make_error(
        Errc::unavailable,
        "running as root needs the 'postgres' system user (apt install postgresql-15)");
  }
  if (!fs::exists(password_file())) {
    std::ofstream out(password_file());
    out << random_password() << "\n";
    out.close();
    fs::permissions(password_file(), fs::perms::owner_read | fs::perms::owner_write);
  }
  // initdb reads the password from a file; as root, postgres must be able to read it and traverse.
  auto pwfile = options_.data_dir / "pg.pwfile";
  {
    std::ofstream out(pwfile);
    out << password() << "\n";
  }
  fs::permissions(pwfile, fs::perms::owner_read | fs::perms::owner_write);
  if (user) {
    ::chown(options_.data_dir.c_str(), user->uid, user->gid);
    ::chown(pwfile.c_str(), user->uid, user->gid);
    // Every ancestor must be traversable by postgres.
    for (auto p = options_.data_dir.parent_path(); !p.empty() && p != p.root_path();
         p = p.parent_path()) {
      struct stat st {};
      if (::stat(p.c_str(), &st) == 0 && (st.st_mode & S_IXOTH) == 0) {
        fs::remove(pwfile, ec);
        return make_error(Errc::unavailable,
                          "the postgres user cannot reach " + options_.data_dir.string() + " (" +
                              p.string() + " is not world-traversable); set data_dir elsewhere");
      }
    }
  }
  int rc = run_program({(options_.bin_dir / "initdb").string(), "-D", cluster_dir().string(), "-U",
                        "liftoff", "--auth=scram-sha-256", "--pwfile=" + pwfile.string(), "-E",
                        "UTF8", "--locale=C.UTF-8", "--no-instructions"},
                       true);
  fs::remove(pwfile, ec);
  if (rc != 0)
    return make_error(Errc::unavailable, "initdb failed with status " + std::to_string(rc));

  std::ofstream conf(cluster_dir() / "postgresql.conf", std::ios::app);
  conf << "\n# Liftoff embedded cluster\n"
       << "listen_addresses = '127.0.0.1'\n"
       << "port = " << options_.port << "\n"
       << "unix_socket_directories = ''\n"
       << "max_connections = 200\n"
       << "logging_collector = off\n";
  auto pages = ::sysconf(_SC_PHYS_PAGES);
  auto page_size = ::sysconf(_SC_PAGESIZE);
  std::uint64_t ram = pages > 0 && page_size > 0 ? static_cast<std::uint64_t>(pages) *
                                                       static_cast<std::uint64_t>(page_size)
                                                 : 0;
  for (const auto& s : memory_settings(ram)) conf << s << "\n";
  // Less WAL per write: page images compressed (halves the WAL of a record create after a
  // checkpoint, measured), and checkpoints every 15 minutes rather than every 1 GB of WAL, which a
  // busy server wrote in about a minute, each one making the next write of every page log a full
  // image of it. Crash recovery replays at most max_wal_size.
  // Statement statistics for `liftoff db advise` (pg_stat_statements, with PostgreSQL; pg_qualstats
  // when Debian's postgresql-15-pg-qualstats is installed, sampling 1% of statements' predicates).
  auto libraries = std::string("pg_stat_statements");
  if (fs::exists(options_.bin_dir.parent_path() / "lib" / "pg_qualstats.so"))
    libraries += ", pg_qualstats";
  conf << "shared_preload_libraries = '" << libraries << "'\n";
  if (libraries.find("pg_qualstats") != std::string::npos)
    conf << "pg_qualstats.sample_rate = 0.01\n";
  conf << "wal_compression = lz4\n"
       << "max_wal_size = 4GB\n"
       << "min_wal_size = 1GB\n"
       << "checkpoint_timeout = 15min\n";
  for (const auto& s : options_.settings) conf << s << "\n";
  conf.close();
  if (user) chown_tree(cluster_dir(), *user);
  return {};
}

std::vector<std::string> memory_settings(std::uint64_t ram_bytes) {
  constexpr std::uint64_t kMiB = 1024 * 1024;
  auto ram_mib = ram_bytes / kMiB;
  auto buffers_mib = std::clamp<std::uint64_t>(ram_mib / 4, 128, 8192);
  auto cache_mib = std::max<std::uint64_t>(ram_mib / 2, buffers_mib);
  return {fmt::format("shared_buffers = {}MB", buffers_mib),
          fmt::format("effective_cache_size = {}MB", cache_mib)};
}

bool EmbeddedPostgres::running() const {
  if (!fs::exists(cluster_dir() / "postmaster.pid")) return false;
  return run_program(
             {(options_.bin_dir / "pg_ctl").string(), "status", "-D", cluster_dir().string()},
             true) == 0;
}

Result<void> EmbeddedPostgres::start_server() {
  if (!port_free(options_.port)) {
    return make_error(Errc::unavailable,
                      "port " + std::to_string(options_.port) +
                          " on 127.0.0.1 is in use (another PostgreSQL?); set embedded_pg_port");
  }
  auto log = options_.data_dir / "postgres.log";
  if (auto user = postgres_user()) {
    int fd = ::open(log.c_str(), O_CREAT | O_WRONLY | O_APPEND, 0600);
    if (fd >= 0) {
      ::fchown(fd, user->uid, user->gid);
      ::close(fd);
    }
  }
  // Besides 127.0.0.1, a Unix socket in data_dir/run, which url() prefers: the same host's
  // connections skip TCP (a round trip costs both sides less CPU; pgbench -S measured 25-50%
  // more transactions per second over it here). Passed at start, so older clusters get it too.
  std::string server_options = "-p " + std::to_string(options_.port);
  std::error_code ec;
  bool socket = socket_fits();
  if (socket) {
    fs::create_directories(socket_dir(), ec);
    socket = fs::is_directory(socket_dir(), ec);
  }
  if (socket) {
    fs::permissions(socket_dir(), fs::perms::owner_all, ec);
    if (auto user = postgres_user()) ::chown(socket_dir().c_str(), user->uid, user->gid);
    server_options += " -k '" + socket_dir().string() + "'";
  }
  int rc = run_program({(options_.bin_dir / "pg_ctl").string(), "start", "-w", "-t", "60", "-D",
                        cluster_dir().string(), "-l", log.string(), "-o", server_options},
                       true);
  if (rc != 0) {
    return make_error(Errc::unavailable,
                      "the embedded PostgreSQL did not start (see " + log.string() + ")");
  }
  spdlog::info("embedded PostgreSQL listening on 127.0.0.1:{}{}", options_.port,
               socket ? " and " + socket_path().string() : std::string());
  return {};
}

std::vector<EmbeddedPostgres> EmbeddedPostgres::replicas() const {
  std::vector<EmbeddedPostgres> out;
  for (unsigned i = 1; i <= options_.replicas; ++i) {
    out.emplace_back(EmbeddedPostgresOptions{options_.data_dir / ("replica-" + std::to_string(i)),
                                             static_cast<std::uint16_t>(options_.port + i),
                                             options_.database,
                                             options_.bin_dir,
                                             {},
                                             0});
  }
  return out;
}

Result<void> EmbeddedPostgres::clone_from(const EmbeddedPostgres& primary,
                                          const std::string& slot) {
  std::error_code ec;
  fs::create_directories(options_.data_dir, ec);
  if (ec)
    return make_error(Errc::unavailable,
                      "cannot create " + options_.data_dir.string() + ": " + ec.message());
  // The replica is the primary's copy: same role, same password.
  {
    std::ofstream out(password_file());
    out << primary.password() << "\n";
  }
  fs::permissions(password_file(), fs::perms::owner_read | fs::perms::owner_write);
  if (auto user = postgres_user()) ::chown(options_.data_dir.c_str(), user->uid, user->gid);
  spdlog::info("copying the embedded PostgreSQL into {} (pg_basebackup)", cluster_dir().string());
  // -R writes the standby's primary_conninfo (with the slot) into its postgresql.auto.conf.
  int rc = run_program({(options_.bin_dir / "pg_basebackup").string(), "-d",
                        primary.tcp_url(primary.options().port, "postgres"), "-D",
                        cluster_dir().string(), "-X", "stream", "-S", slot, "-R", "-c", "fast"},
                       true);
  if (rc != 0) {
    fs::remove_all(cluster_dir(), ec);
    return make_error(Errc::unavailable, "pg_basebackup failed with status " + std::to_string(rc));
  }
  return {};
}

Result<void> EmbeddedPostgres::follow(const EmbeddedPostgres& primary, const std::string& slot) {
  // postgresql.auto.conf without the lines pg_basebackup -R (or an earlier follow) wrote, then
  // ours: the primary's port is read at every start, never frozen at the copy.
  auto conf = cluster_dir() / "postgresql.auto.conf";
  std::string kept;
  {
    std::ifstream in(conf);
    for (std::string line; std::getline(in, line);) {
      if (line.starts_with("primary_conninfo") || line.starts_with("primary_slot_name")) continue;
      kept += line + "\n";
    }
  }
  kept += fmt::format(
      "primary_conninfo = 'host=127.0.0.1 port={} user=liftoff password={} dbname=postgres'\n"
      "primary_slot_name = '{}'\n",
      primary.options().port, primary.password(), slot);
  auto next = conf;
  next += ".next";
  {
    std::ofstream out(next, std::ios::trunc);
    out << kept;
    if (!out.flush()) return make_error(Errc::unavailable, "cannot write " + next.string());
  }
  fs::permissions(next, fs::perms::owner_read | fs::perms::owner_write);
  if (auto user = postgres_user()) ::chown(next.c_str(), user->uid, user->gid);
  std::error_code ec;
  fs::rename(next, conf, ec);
  if (ec)
    return make_error(Errc::unavailable, "cannot replace " + conf.string() + ": " + ec.message());
  return {};
}

Result<void> EmbeddedPostgres::start() {
  if (!fs::exists(cluster_dir() / "PG_VERSION")) {
    spdlog::info("initializing the embedded PostgreSQL in {}", cluster_dir().string());
    if (auto ok = init(); !ok) return ok;
  }
  if (!running()) {
    if (auto ok = start_server(); !ok) return ok;
  }
  // Create the application database on first start, and a new replica's slot before its copy
  // (blocking libpq is fine here: no event loop yet).
  std::unique_ptr<PGconn, decltype(&PQfinish)> conn(PQconnectdb(url_for("postgres").c_str()),
                                                    &PQfinish);
  if (PQstatus(conn.get()) != CONNECTION_OK) {
    return make_error(Errc::unavailable, "cannot connect to the embedded PostgreSQL: " +
                                             std::string(PQerrorMessage(conn.get())));
  }
  const char* params[] = {options_.database.c_str()};
  PGresult* exists = PQexecParams(conn.get(), "SELECT 1 FROM pg_database WHERE datname = $1", 1,
                                  nullptr, params, nullptr, nullptr, 0);
  bool missing = PQresultStatus(exists) == PGRES_TUPLES_OK && PQntuples(exists) == 0;
  PQclear(exists);
  if (missing) {
    char* ident =
        PQescapeIdentifier(conn.get(), options_.database.c_str(), options_.database.size());
    PGresult* created = PQexec(conn.get(), ("CREATE DATABASE " + std::string(ident)).c_str());
    PQfreemem(ident);
    bool ok = PQresultStatus(created) == PGRES_COMMAND_OK;
    std::string message = PQresultErrorMessage(created);
    PQclear(created);
    if (!ok && message.find("already exists") == std::string::npos) {
      return make_error(Errc::unavailable,
                        "cannot create database " + options_.database + ": " + message);
    }
  }
  auto standbys = replicas();
  for (std::size_t i = 0; i < standbys.size(); ++i) {
    auto& replica = standbys[i];
    auto slot = "liftoff_replica_" + std::to_string(i + 1);
    if (!fs::exists(replica.cluster_dir() / "PG_VERSION")) {
      // Its slot first, so that the primary keeps the WAL from the backup on.
      const char* slot_param[] = {slot.c_str()};
      PGresult* created =
          PQexecParams(conn.get(),
                       "SELECT pg_create_physical_replication_slot($1) WHERE NOT EXISTS "
                       "(SELECT 1 FROM pg_replication_slots WHERE slot_name = $1)",
                       1, nullptr, slot_param, nullptr, nullptr, 0);
      bool ok = PQresultStatus(created) == PGRES_TUPLES_OK;
      std::string message = PQresultErrorMessage(created);
      PQclear(created);
      if (!ok) return make_error(Errc::unavailable, "cannot create slot " + slot + ": " + message);
      if (auto copied = replica.clone_from(*this, slot); !copied) return copied;
    }
    if (!replica.running()) {
      if (auto ok = replica.follow(*this, slot); !ok) return ok;
      if (auto ok = replica.start_server(); !ok) return ok;
    }
  }
  return {};
}

Result<void> EmbeddedPostgres::stop() {
  for (auto& replica : replicas()) {
    if (auto ok = replica.stop(); !ok) return ok;
  }
  if (!running()) return {};
  int rc = run_program({(options_.bin_dir / "pg_ctl").string(), "stop", "-w", "-m", "fast", "-D",
                        cluster_dir().string()},
                       true);
  if (rc != 0)
    return make_error(Errc::unavailable, "pg_ctl stop failed with status " + std::to_string(rc));
  return {};
}

}  // namespace liftoff::db
