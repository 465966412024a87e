# Liftoff's sessions: the token's SHA-256 is stored, never the token.
class UserSession < ApplicationRecord
  self.table_name = "sessions"
  belongs_to :user
end
