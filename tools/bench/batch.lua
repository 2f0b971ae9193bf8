-- wrk script: POST /v1/l/batch with a realistic body (1 trace + 4 observations, about 3 KB),
-- fresh ids on every request. Token from XTRACE_BENCH_TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("XTRACE_BENCH_TOKEN")

local function hex(n) return string.format("%0" .. n .. "x", math.random(0, 16 ^ math.min(n, 7) - 1)) end
local function uuid()
  return hex(7) .. hex(1) .. "-" .. hex(4) .. "-4" .. hex(3) .. "-8" .. hex(3) .. "-" .. hex(6) .. hex(6)
end

function init(args)
  math.randomseed(os.time() * 1000 + tonumber(tostring({}):sub(8), 16) % 1000)
end

local question = string.rep("Summarize the incident report and list the follow-up actions. ", 5)
local answer = string.rep("The outage was caused by an expired certificate on the gateway. ", 3)

local function observation(trace, i, parent)
  return string.format([[{"id":"%s","traceId":"%s","type":"%s","name":"step-%d",
"startTime":"2026-01-01T00:00:0%d.000Z","endTime":"2026-01-01T00:00:0%d.500Z",
"model":"gpt-4o-mini","modelParameters":{"temperature":0.2,"max_tokens":512},
"input":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"%s"}],
"output":{"role":"assistant","content":"%s"},
"usage":{"input":312,"output":88,"total":400,"unit":"TOKENS"},"promptTokens":312,
"completionTokens":88,"totalTokens":400,"level":"DEFAULT","parentObservationId":%s,
"metadata":{"step_type":"llm","run_id":"r-1"}}]], uuid(), trace, i == 1 and "SPAN" or "GENERATION",
    i, i, i, question, answer, parent and ('"' .. parent .. '"') or "null")
end

request = function()
  local trace = uuid()
  local obs = {}
  for i = 1, 4 do obs[i] = observation(trace, i, nil) end
  local body = string.format([[{"trace":{"id":"%s","name":"support-chat","userId":"user-%d",
"sessionId":"session-%d","tags":["bench","prod"],"release":"v1.2.3","timestamp":"2026-01-01T00:00:00Z",
"metadata":{"turn_id":"t-1","customer":"acme"},"input":"%s"},"observations":[%s]}]],
    trace, math.random(1, 1000), math.random(1, 5000), question, table.concat(obs, ","))
  return wrk.format(nil, nil, nil, body)
end
