class Org < ApplicationRecord
end
