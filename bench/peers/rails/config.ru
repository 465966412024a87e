# The Rails peer: what a Liftoff user runs today, serving the same endpoints over the same data.
require_relative "config/environment"
run Rails.application
