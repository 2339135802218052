-- Foundation benchmark, icl side: GEMMs at the standard model's shapes and
-- one RMSNorm + SwiGLU + Linear block forward+backward. Prints JSON lines
-- that foundation.sh joins with the PyTorch numbers.
local icl = require "icl"
local threads = tonumber(os.getenv("ICL_NUM_THREADS") or "2")
icl.set_num_threads(threads)
local wall = require("icl.core").wall_time

local function median(t) table.sort(t); return t[(#t + 1) // 2] end
local function bench(fn, reps)
  fn(); fn()
  local ts = {}
  for i = 1, reps do
    local t0 = wall()
    fn()
    ts[i] = wall() - t0
  end
  return median(ts)
end

local rows = 64 * 102
local gemms = {
  {"[6528,256]x[256,1024]", rows, 256, 1024},
  {"[6528,1024]x[1024,256]", rows, 1024, 256},
  {"[1024,6528]x[6528,256] (weight grad)", 1024, rows, 256},
}
for _, g in ipairs(gemms) do
  local a = icl.randn({g[2], g[3]}, {seed = 1})
  local b = icl.randn({g[3], g[4]}, {seed = 2})
  local t = bench(function() a:matmul(b) end, 20)
  print(string.format('{"what":"gemm %s","seconds":%.6g,"gflops":%.2f}', g[1], t, 2 * g[2] * g[3] * g[4] / t / 1e9))
end

local nn = icl.nn
local block = nn.Sequential{nn.RMSNorm(256), nn.SwiGLU(256, 1024, {seed = 1}), nn.Linear(256, 256, {bias = false})}
nn.flatten(block)
local x = icl.randn({64, 102, 256}, {seed = 3})
local gy = icl.randn({64, 102, 256}, {seed = 4})
local flops = 2 * rows * (256 * 2048 + 1024 * 256 + 256 * 256) * 3
local t = bench(function()
  block:zero_grad()
  block:forward(x)
  block:backward(x, gy)
end, 10)
print(string.format('{"what":"RMSNorm+SwiGLU+Linear fwd+bwd","seconds":%.6g,"gflops":%.2f}', t, flops / t / 1e9))
