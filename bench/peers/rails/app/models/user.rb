class User < ApplicationRecord
  has_many :memberships
end
