-- wrk script for bench/run-records. Environment:
--   TOKEN     bearer token
--   BASE      /v1/orgs/<org>/collections/tickets/records
--   MODE      get | list | create | create_spread | update
--   IDS_FILE  record ids, one per line (get)
--   BASES_FILE  records paths of collections in other orgs, one per line (create_spread)
--   PATHS_FILE  paths of records, one per line (update: a merge patch of one at random)
local token = os.getenv("TOKEN")
local base = os.getenv("BASE")
local mode = os.getenv("MODE")
local ids = {}
local bases = {}
if mode == "get" then
  for line in io.lines(os.getenv("IDS_FILE")) do ids[#ids + 1] = line end
elseif mode == "create_spread" then
  for line in io.lines(os.getenv("BASES_FILE")) do bases[#bases + 1] = line end
elseif mode == "update" then
  for line in io.lines(os.getenv("PATHS_FILE")) do ids[#ids + 1] = line end
end
wrk.headers["Authorization"] = "Bearer " .. token
wrk.headers["Content-Type"] = "application/json"
local counter = 0

request = function()
  if mode == "get" then
    return wrk.format("GET", base .. "/" .. ids[math.random(#ids)])
  elseif mode == "update" then
    return wrk.format("PATCH", ids[math.random(#ids)], nil,
                      string.format('{"priority":%d}', math.random(0, 99)))
  elseif mode == "list" then
    -- 20 newest of one priority (an indexed field): about 1% of the collection matches.
    return wrk.format("GET", base .. "?limit=20&filter=priority%20%3D%20" .. math.random(0, 99))
  else
    counter = counter + 1
    local body = string.format('{"title":"bench %d","status":"open","priority":%d}', counter,
                               math.random(0, 99))
    if mode == "create_spread" then return wrk.format("POST", bases[math.random(#bases)], nil, body) end
    return wrk.format("POST", base, nil, body)
  end
end

-- Any non-2xx answer is an error of the run (a fast wrong answer is not throughput).
local failures = 0
response = function(status, headers, body)
  if status < 200 or status > 299 then failures = failures + 1 end
end

done = function(summary, latency, requests)
  io.write(string.format("non2xx %d\n", summary.errors.status))
end
