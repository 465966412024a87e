# Enqueues jobs into the Sidekiq peer in batches of 1,000 (push_bulk: one Redis round trip per
# batch, as Liftoff's `jobs enqueue` writes 5,000 per statement):
#   REDIS_URL=redis://... ruby push.rb noop|mark COUNT
require_relative "jobs"

kind, count = ARGV[0], Integer(ARGV[1])
klass = kind == "mark" ? MarkJob : NoopJob
(0...count).each_slice(1000) do |slice|
  args = kind == "mark" ? slice.map { |i| [i] } : slice.map { [] }
  Sidekiq::Client.push_bulk("class" => klass, "args" => args)
end
