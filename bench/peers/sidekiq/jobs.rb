# The Sidekiq peer of bench/run-jobs: Debian's ruby-sidekiq (6.4) against a private redis-server.
#   NoopJob  does nothing (the throughput runs).
#   MarkJob  records its argument in a Redis set and counts its runs (the kill -9 run: a job that
#            never ran is missing from the set; a job run twice counts twice in bench:runs).
require "sidekiq"

# As a team tuning for speed would run it: no per-job log lines (Sidekiq logs each job's start and
# end at INFO), no deprecation notices of Debian's redis-rb 4.8 on every push.
Redis.silence_deprecations = true if Redis.respond_to?(:silence_deprecations=)

Sidekiq.configure_server do |config|
  config.redis = { url: ENV.fetch("REDIS_URL") }
  config.logger.level = Logger::WARN
end
Sidekiq.configure_client { |config| config.redis = { url: ENV.fetch("REDIS_URL") } }

class NoopJob
  include Sidekiq::Job
  sidekiq_options retry: 20

  def perform; end
end

class MarkJob
  include Sidekiq::Job
  sidekiq_options retry: 20

  def perform(i)
    Sidekiq.redis do |redis|
      redis.multi do |transaction|
        transaction.sadd("bench:done", i)
        transaction.incr("bench:runs")
      end
    end
  end
end
