-- wrk script: POST /v1/metrics/batch with 100 points per request (GPU metrics of 8 GPUs x 12
-- names, plus 4 node metrics), distinct timestamps per request. Token from XTRACE_BENCH_TOKEN.
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "Bearer " .. os.getenv("XTRACE_BENCH_TOKEN")

local counter = 0
function init(args)
  math.randomseed(os.time() * 1000 + tonumber(tostring({}):sub(8), 16) % 1000)
  counter = math.random(0, 1000000000)
end

local names = {"gpu_util", "gpu_mem_used", "gpu_mem_total", "gpu_temp", "gpu_power", "gpu_sm_clock",
               "gpu_mem_clock", "gpu_pcie_rx", "gpu_pcie_tx", "gpu_ecc_errors", "gpu_fan", "gpu_throttle"}

request = function()
  counter = counter + 1
  local f = math.floor
  local ts = string.format("2026-01-%02dT%02d:%02d:%02d.%03dZ", 1 + f(counter / 86400000) % 28,
    f(counter / 3600000) % 24, f(counter / 60000) % 60, f(counter / 1000) % 60, counter % 1000)
  local points = {}
  for gpu = 0, 7 do
    for _, name in ipairs(names) do
      points[#points + 1] = string.format(
        '{"name":"%s","labels":{"host":"node-%d","gpu":"%d"},"value":%.3f,"timestamp":"%s"}',
        name, counter % 16, gpu, math.random() * 100, ts)
    end
  end
  for _, name in ipairs({"node_cpu", "node_mem", "node_net_rx", "node_net_tx"}) do
    points[#points + 1] = string.format(
      '{"name":"%s","labels":{"host":"node-%d"},"value":%.3f,"timestamp":"%s"}',
      name, counter % 16, math.random() * 100, ts)
  end
  return wrk.format(nil, nil, nil, '{"metrics":[' .. table.concat(points, ",") .. ']}')
end
