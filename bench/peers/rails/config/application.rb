# A Rails 6.1 API app from Debian's packages (ruby-rails, puma, ruby-pg), set up as a competent team
# would run it in production: API-only, eager loading, class caching, quiet logs, a connection pool
# sized to Puma's threads, prepared statements.
require "logger"
require "rails"
require "active_record/railtie"
require "action_controller/railtie"

class PeerApp < Rails::Application
  config.load_defaults 6.1
  config.api_only = true
  config.eager_load = true
  config.cache_classes = true
  config.consider_all_requests_local = false
  config.secret_key_base = ENV.fetch("SECRET_KEY_BASE", "peer-benchmark-secret-not-used-for-sessions")
  config.logger = Logger.new($stdout, level: Logger::WARN)
  config.log_level = :warn
  config.active_record.dump_schema_after_migration = false
  config.hosts.clear
  config.paths["config/database"] = File.expand_path("database.yml", __dir__)
  config.paths["app/controllers"] = File.expand_path("../app/controllers", __dir__)
  config.paths["app/models"] = File.expand_path("../app/models", __dir__)
  config.eager_load_paths += [File.expand_path("../app/controllers", __dir__),
                              File.expand_path("../app/models", __dir__)]
end
