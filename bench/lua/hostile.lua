-- wrk script for bench/run-noisy-neighbour: one tenant's heaviest reads, as fast as it can send
-- them. Environment:
--   TOKEN  bearer token of the hostile org's owner
--   BASE   /v1/orgs/<org>/collections/tickets/records (the org's million records)
-- Alternates an exact count over the whole collection and a `contains` filter no index serves
-- (both read every record). Answers are counted by status at the end: 200s ran, 429s were refused
-- by the org's rate limit or its scan queue, 504s ran out of time waiting their turn.
local token = os.getenv("TOKEN")
local base = os.getenv("BASE")
wrk.headers["Authorization"] = "Bearer " .. token
local n = 0

request = function()
  n = n + 1
  if n % 2 == 0 then return wrk.format("GET", base .. "?limit=1&count=exact") end
  return wrk.format("GET", base .. "?limit=20&filter=title%20contains%20%22zz" .. math.random(0, 9) .. "%22")
end

-- Answers by status, per thread (wrk copies globals of numbers between threads, not tables).
local known = {200, 402, 429, 503, 504}
response = function(status, headers, body)
  local key = "other"
  for _, k in ipairs(known) do
    if status == k then key = tostring(k) end
  end
  _G["n" .. key] = (_G["n" .. key] or 0) + 1
end

local threads = {}
setup = function(thread) threads[#threads + 1] = thread end
done = function(summary, latency, requests)
  local parts = {}
  for _, key in ipairs({"200", "402", "429", "503", "504", "other"}) do
    local total = 0
    for _, thread in ipairs(threads) do total = total + (thread:get("n" .. key) or 0) end
    if total > 0 then parts[#parts + 1] = key .. "=" .. total end
  end
  io.write("statuses " .. table.concat(parts, " ") .. "\n")
end
