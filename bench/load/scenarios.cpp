#include "load/scenarios.hpp"

#include <fmt/format.h>

#include <stdexcept>

namespace liftoff::load {
namespace {

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

class Me final : public Scenario {
 public:
  explicit Me(std::string token) : auth_("Bearer " + std::move(token)) {}
  std::string name() const override { return "me"; }
  Request next(std::mt19937_64&) override { return {"GET", "/v1/me", "", auth_}; }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "\"memberships\"");
  }

 private:
  std::string auth_;
};

class RecordGet final : public Scenario {
 public:
  RecordGet(std::string token, std::string records, std::vector<std::string> ids)
      : auth_("Bearer " + std::move(token)), records_(std::move(records)), ids_(std::move(ids)) {}
  std::string name() const override { return "get"; }
  Request next(std::mt19937_64& rng) override {
    const auto& id = ids_[rng() % ids_.size()];
    return {"GET", records_ + "/" + id, "", auth_};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    // The answer is the record asked for: its id is the last segment of the target.
    auto id = std::string_view(request.target).substr(request.target.rfind('/') + 1);
    return expect(status, 200, body, "{\"id\":\"" + std::string(id) + "\"");
  }

 private:
  std::string auth_, records_;
  std::vector<std::string> ids_;
};

class RecordList final : public Scenario {
 public:
  RecordList(std::string token, std::string records)
      : auth_("Bearer " + std::move(token)), records_(std::move(records)) {}
  std::string name() const override { return "list"; }
  Request next(std::mt19937_64& rng) override {
    // 20 newest of one priority (an indexed field): about 1% of the seeded collection.
    return {"GET", fmt::format("{}?limit=20&filter=priority%20%3D%20{}", records_, rng() % 100), "",
            auth_};
  }
  std::optional<std::string> check(const Request&, int status,
                                   std::string_view body) const override {
    return expect(status, 200, body, "{\"records\":[");
  }

 private:
  std::string auth_, records_;
};

class RecordCreate final : public Scenario {
 public:
  RecordCreate(std::string token, std::string records)
      : auth_("Bearer " + std::move(token)), records_(std::move(records)) {}
  std::string name() const override { return "create"; }
  Request next(std::mt19937_64& rng) override {
    auto n = rng();
    return {"POST", records_,
            fmt::format(R"({{"title":"bench {}","status":"open","priority":{}}})", n % 1000000,
                        n % 100),
            auth_};
  }
  std::optional<std::string> check(const Request& request, int status,
                                   std::string_view body) const override {
    // The stored record carries the title it was sent with.
    auto title = request.body.substr(10, request.body.find('"', 10) - 10);
    return expect(status, 201, body, "\"title\":\"" + title + "\"");
  }

 private:
  std::string auth_, records_;
};

void need(bool present, std::string_view scenario, std::string_view option) {
  if (!present)
    throw std::invalid_argument(fmt::format("scenario {} needs --{}", scenario, option));
}

}  // namespace

const std::vector<std::string>& scenario_names() {
  static const std::vector<std::string> names = {"healthz", "me", "get", "list", "create"};
  return names;
}

std::unique_ptr<Scenario> make_scenario(std::string_view name, const ScenarioOptions& o) {
  if (name == "healthz") return std::make_unique<Healthz>();
  if (name != "me" && name != "get" && name != "list" && name != "create") return nullptr;
  need(!o.token.empty(), name, "token");
  if (name == "me") return std::make_unique<Me>(o.token);
  need(!o.records.empty(), name, "records");
  if (name == "list") return std::make_unique<RecordList>(o.token, o.records);
  if (name == "create") return std::make_unique<RecordCreate>(o.token, o.records);
  need(!o.ids.empty(), name, "ids");
  return std::make_unique<RecordGet>(o.token, o.records, o.ids);
}

}  // namespace liftoff::load
