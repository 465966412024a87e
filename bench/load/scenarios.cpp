#include "load/scenarios.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <functional>
#include <stdexcept>

namespace liftoff::load {
namespace {

// Who sends a request, and about what.
struct Target {
  std::string authorization;
  std::string records;    // records path of the sender's org
  std::string record_id;  // a record in it
  std::string email;      // the sender's (login)
  std::string org_owner;  // authorization of the owner of the sender's org (audit)
  std::string org;        // the org's id
};
using Picker = std::function<Target(std::mt19937_64&)>;

std::optional<std::string> expect(int status, int wanted, std::string_view body,
                                  std::string_view must_contain) {
  if (status != wanted) return "status " + std::to_string(status);
  if (body.find(must_contain) == std::string_view::npos) return "unexpected body";
  return std::nullopt;
}

class Healthz final : public Scenario {
 public:
  std::string name() const override { return "healthz"; }
  Request next(std::mt19937_64&) override { return {"GET", "/healthz", "", ""}; }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "ok");
  }
};

// A scenario whose requests come from a picker.
class Picked : public Scenario {
 public:
  explicit Picked(Picker pick) : pick_(std::move(pick)) {}

 protected:
  Picker pick_;
};

class Me final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "me"; }
  Request next(std::mt19937_64& rng) override {
    return {"GET", "/v1/me", "", pick_(rng).authorization};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "\"memberships\"");
  }
};

class RecordGet final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "get"; }
  Request next(std::mt19937_64& rng) override {
    auto t = pick_(rng);
    return {"GET", t.records + "/" + t.record_id, "", t.authorization};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    // The answer is the record asked for: its id is the last segment of the target.
    auto id = std::string_view(request.target).substr(request.target.rfind('/') + 1);
    return expect(status, 200, body, "{\"id\":\"" + std::string(id) + "\"");
  }
};

class RecordList final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "list"; }
  Request next(std::mt19937_64& rng) override {
    // 20 newest of one priority (an indexed field): about 1% of a seeded collection.
    auto t = pick_(rng);
    return {"GET", fmt::format("{}?limit=20&filter=priority%20%3D%20{}", t.records, rng() % 100),
            "", t.authorization};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "{\"records\":[");
  }
};

class RecordCreate final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "create"; }
  Request next(std::mt19937_64& rng) override {
    auto t = pick_(rng);
    auto n = rng();
    return {"POST", t.records,
            fmt::format(R"({{"title":"bench {}","status":"open","priority":{}}})", n % 1000000,
                        n % 100),
            t.authorization};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    // The stored record carries the title it was sent with.
    auto title = request.body.substr(10, request.body.find('"', 10) - 10);
    return expect(status, 201, body, "\"title\":\"" + title + "\"");
  }
};

class Login final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "login"; }
  Request next(std::mt19937_64& rng) override {
    return {"POST", "/v1/auth/login",
            fmt::format(R"({{"email":"{}","password":"{}"}})", pick_(rng).email, kBenchPassword),
            ""};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "\"token\":\"ls_");
  }
};

class RecordUpdate final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "update"; }
  Request next(std::mt19937_64& rng) override {
    auto t = pick_(rng);
    return {"PATCH", t.records + "/" + t.record_id,
            fmt::format(R"({{"priority":{}}})", rng() % 100), t.authorization};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, request.body.substr(1, request.body.size() - 2));
  }
};

class AuditList final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "audit"; }
  Request next(std::mt19937_64& rng) override {
    auto t = pick_(rng);
    return {"GET", "/v1/orgs/" + t.org + "/audit?limit=20", "", t.org_owner};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "{\"events\":[");
  }
};

class Search final : public Picked {
 public:
  using Picked::Picked;
  std::string name() const override { return "search"; }
  Request next(std::mt19937_64& rng) override {
    auto t = pick_(rng);
    return {"GET", fmt::format("{}?limit=20&q=ticket%20{}", t.records, rng() % 100), "",
            t.authorization};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "{\"records\":[");
  }
};

// A B2B day: reads 80% (me 20, get 30, list 30), writes 15% (create 10, update 5), audit and
// search 5% (2.5 each), by weight, each answer checked by the part that asked.
class Mix final : public Scenario {
 public:
  explicit Mix(const Picker& pick) {
    add(20, std::make_unique<Me>(pick));
    add(30, std::make_unique<RecordGet>(pick));
    add(30, std::make_unique<RecordList>(pick));
    add(10, std::make_unique<RecordCreate>(pick));
    add(5, std::make_unique<RecordUpdate>(pick));
    add(2.5, std::make_unique<AuditList>(pick));
    add(2.5, std::make_unique<Search>(pick));
  }
  std::string name() const override { return "mix"; }
  Request next(std::mt19937_64& rng) override {
    double r = std::uniform_real_distribution<double>(0, total_)(rng);
    for (auto& [upto, part] : parts_) {
      if (r < upto || &part == &parts_.back().second) {
        auto request = part->next(rng);
        request.kind = part->name();
        return request;
      }
    }
    return {};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    for (const auto& [upto, part] : parts_) {
      if (part->name() == request.kind) {
        auto error = part->check(request, status, body);
        if (error) return request.kind + ": " + *error;
        return std::nullopt;
      }
    }
    return "unknown part";
  }

 private:
  void add(double weight, std::unique_ptr<Scenario> part) {
    total_ += weight;
    parts_.emplace_back(total_, std::move(part));
  }
  double total_ = 0;
  std::vector<std::pair<double, std::unique_ptr<Scenario>>> parts_;  // cumulative weight
};

void need(bool present, std::string_view scenario, std::string_view option) {
  if (!present)
    throw std::invalid_argument(fmt::format("scenario {} needs --{}", scenario, option));
}

}  // namespace

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> names = {"healthz", "me",    "get",   "list",   "create",
                                                 "update",  "login", "audit", "search", "mix"};
  return names;
}

std::unique_ptr<Scenario> make_scenario(std::string_view name, const ScenarioOptions& o) {
  const auto& names = scenario_names();
  if (std::find(names.begin(), names.end(), name) == names.end()) return nullptr;
  if (name == "healthz") return std::make_unique<Healthz>();
  Picker pick;
  if (o.dataset) {
    // A random user of the data set, their org, and a record of that org.
    const std::uint64_t first = std::min(o.skip_orgs * kUsersPerOrg, o.dataset->users - 1);
    pick = [d = *o.dataset, first](std::mt19937_64& rng) {
      auto user = first + rng() % (d.users - first);
      auto org = Dataset::org_of(user);
      return Target{
          "Bearer " + d.session_token(user),
          d.records_path(org),
          d.record_id(org, rng() % std::max<std::uint64_t>(1, d.records_in_org(org))).to_string(),
          d.user_email(user),
          "Bearer " + d.session_token(org * kUsersPerOrg),
          d.org_id(org).to_string()};
    };
  } else {
    need(name != "login" && name != "audit" && name != "mix", name, "run (a seeded data set)");
    need(!o.token.empty(), name, "token");
    need(name == "me" || !o.records.empty(), name, "records");
    need((name != "get" && name != "update") || !o.ids.empty(), name, "ids");
    pick = [auth = "Bearer " + o.token, records = o.records, ids = o.ids](std::mt19937_64& rng) {
      return Target{auth, records, ids.empty() ? "" : ids[rng() % ids.size()], "", "", ""};
    };
  }
  if (name == "me") return std::make_unique<Me>(std::move(pick));
  if (name == "get") return std::make_unique<RecordGet>(std::move(pick));
  if (name == "list") return std::make_unique<RecordList>(std::move(pick));
  if (name == "create") return std::make_unique<RecordCreate>(std::move(pick));
  if (name == "login") return std::make_unique<Login>(std::move(pick));
  if (name == "update") return std::make_unique<RecordUpdate>(std::move(pick));
  if (name == "audit") return std::make_unique<AuditList>(std::move(pick));
  if (name == "search") return std::make_unique<Search>(std::move(pick));
  if (name == "mix") return std::make_unique<Mix>(pick);
  return nullptr;
}

}  // namespace liftoff::load
