--- Time full training steps (forward, backward, AdamW) of icl's Mamba
-- backbone in the in-context model, and the peak of a large sgemm.
--   lua5.4 bench/mamba_step.lua [layers] [steps] [warmup] [batch] [tokens] [T_c]
-- Defaults: the standard preset (hidden 256, state 16, 32 layers, expand 2,
-- conv 4), batch 64, 102 tokens (51 examples), D = 20, T_c = 64.
-- Prints one JSON line with steps/s (from the median step), the time and FLOP
-- rate of the projections (the model's phase profile), the backbone workspace
-- and the process's peak RSS. bench/sgemm_peak.lua measures the peak.
local icl = require "icl"

local layers = tonumber(arg[1] or 32)
local steps, warmup = tonumber(arg[2] or 3), tonumber(arg[3] or 1)
local B, T, Tc = tonumber(arg[4] or 64), tonumber(arg[5] or 102), tonumber(arg[6] or 64)
local D, N = 20, T // 2
local threads = tonumber(os.getenv("ICL_NUM_THREADS") or 2)
icl.set_num_threads(threads)

local function now()
  -- wall clock (os.clock is CPU time summed over threads)
  local f = io.popen("date +%s.%N")
  local t = tonumber(f:read("*l"))
  f:close()
  return t
end

local function rss_peak_mb()
  for line in io.lines("/proc/self/status") do
    local kb = line:match("^VmHWM:%s+(%d+)")
    if kb then return tonumber(kb) / 1024 end
  end
end

local m = icl.model({type = "ssm", family = "Mamba", max_length = {"inf"}, hidden_size = 256, state_size = 16,
                     num_hidden_layers = layers}, {}, {n_dims = D, seed = 1, T_c = Tc})
local opt = m:optimizer({lr = 3e-4, weight_decay = 0.01})
local xs, ys = icl.randn({B, N, D}, {seed = 7}), icl.randn({B, N}, {seed = 8})

for _ = 1, warmup do
  m:loss_step(xs, ys, "mse")
  opt:step()
end
m:profile(true)
local loss
local times = {}
for i = 1, steps do
  local t0 = now()
  loss = m:loss_step(xs, ys, "mse")
  opt:step()
  times[i] = now() - t0
end
local prof = m:profile()
-- the median step: the machine may be shared, and one disturbed step should not set the number
table.sort(times)
local dt = steps % 2 == 1 and times[(steps + 1) // 2] or (times[steps // 2] + times[steps // 2 + 1]) / 2
local rss = rss_peak_mb()
local saved, temp = m:workspace(B, T, true)

local proj_gflops = prof.gemm_flops / steps / 1e9
local proj_rate = prof.gemm_flops / prof.gemm / 1e9
io.write(string.format(
  '{"impl": "icl", "layers": %d, "batch": %d, "tokens": %d, "T_c": %d, "threads": %d, "steps": %d, ' ..
  '"steps_per_s": %.5f, "ms_per_step": %.1f, "ms_per_step_min": %.1f, "loss": %.5f, ' ..
  '"proj_gflop_per_step": %.1f, "proj_s_per_step": %.3f, "scan_s_per_step": %.3f, "conv_s_per_step": %.3f, ' ..
  '"other_s_per_step": %.3f, "proj_gflops": %.1f, ' ..
  '"workspace_saved_floats": %d, "workspace_temp_floats": %d, "rss_peak_mb": %.0f}\n',
  layers, B, T, Tc, threads, steps, 1 / dt, dt * 1e3, times[1] * 1e3, loss:item(), proj_gflops, prof.gemm / steps,
  prof.scan / steps, prof.conv / steps, prof.other / steps, proj_rate, saved, temp, rss))
