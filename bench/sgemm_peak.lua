--- The CPU's measured FLOP/s ceiling: a large sgemm (4096^3) through the
-- engine's GEMM (OpenBLAS, split over ICL_NUM_THREADS OpenMP threads).
-- Prints: peak <GFLOP/s>
local icl = require "icl"
icl.set_num_threads(tonumber(os.getenv("ICL_NUM_THREADS") or 2))
local function now()
  local f = io.popen("date +%s.%N")
  local t = tonumber(f:read("*l"))
  f:close()
  return t
end
local n = 4096
icl.manual_seed(1)
local a, b = icl.randn({n, n}), icl.randn({n, n})
local _ = a:matmul(b)
local best = math.huge
for _ = 1, 3 do
  local t0 = now()
  _ = a:matmul(b)
  best = math.min(best, now() - t0)
end
io.write(string.format("peak %.2f\n", 2 * n ^ 3 / best / 1e9))
