class Collection < ApplicationRecord
end
