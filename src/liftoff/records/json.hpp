#pragma once
// The API's JSON forms of collections and records.
#include <boost/json/object.hpp>
#include <string>
#include <vector>

#include "liftoff/records/store.hpp"

namespace liftoff::records {

[[nodiscard]] boost::json::object collection_json(const Collection& collection);
// Appends {"id":…,"version":…,"created_at":…,"updated_at":…,"data":{…}} to `out`. The stored data
// text is copied as is, unless `fields` asks for a subset.
void append_record_json(std::string& out, const Record& record,
                        const std::vector<std::string>* fields = nullptr);
[[nodiscard]] std::string record_json(const Record& record);

}  // namespace liftoff::records
