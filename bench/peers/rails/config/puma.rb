# Puma as recommended for production: a worker per core, 5 threads each, the app preloaded.
workers Integer(ENV.fetch("WEB_CONCURRENCY", 2))
threads_count = Integer(ENV.fetch("RAILS_MAX_THREADS", 5))
threads threads_count, threads_count
bind "tcp://127.0.0.1:#{ENV.fetch('PORT', 3000)}"
environment "production"
preload_app!
on_worker_boot { ActiveRecord::Base.establish_connection }
