--- Time full training steps (forward, backward, AdamW) of the Llama
-- backbone in icl.
--   lua5.4 bench/llama_step.lua [size] [pe] [steps] [warmup] [serve]
--   size: standard (16 layers, hidden 256, 8 heads) | toy (2 layers, hidden 64, 2 heads)
-- Batch 64, 51 examples (102 tokens), D = 20. Each timed step is timed on
-- its own and the line reports the median step (a neighbour's burst on the
-- shared machine slows single steps; the median ignores them, the mean
-- does not), the same statistic as bench/torch_llama_step.py. Prints:
--   icl <size> <pe> <steps/s> <ms/step> loss=<last loss> mean=<mean ms/step>
-- plus, with ICL_BENCH_PROFILE=1, the time of the forward, backward and optimiser phases.
-- With "serve" (bench/interleave.py drives it): after the warm-up, print
-- "ready", then for each line n read from stdin time n steps and print their
-- milliseconds and the last loss on one line; stop at end of input.
local icl = require "icl"
local llama = require "icl.models.llama"

local size, pe = arg[1] or "standard", arg[2] or "rope"
local steps, warmup = tonumber(arg[3] or 5), tonumber(arg[4] or 1)
local threads = tonumber(os.getenv("ICL_NUM_THREADS") or 2)
icl.set_num_threads(threads)

local cfg = llama.preset("standard")
if size == "toy" then
  cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads = 64, 2, 2
elseif size ~= "standard" then
  error("size must be standard or toy")
end
local m = icl.model(cfg, {rope_scaling = {type = pe}}, {n_dims = 20, seed = 1})
local opt = m:optimizer({lr = 3e-4, weight_decay = 0.01})
local B, N, D = 64, 51, 20
icl.manual_seed(7)
local xs, ys = icl.randn({B, N, D}), icl.randn({B, N})

local now = require("icl.core").wall_time -- monotonic wall clock (os.clock sums CPU time over threads)

for _ = 1, warmup do
  m:loss_step(xs, ys, "mse")
  opt:step()
end
local function timed_step()
  local t0 = now()
  local l = m:loss_step(xs, ys, "mse")
  opt:step()
  l = l:item() -- waits for the step (a GPU run is asynchronous)
  return now() - t0, l
end
if arg[5] == "serve" then
  io.write("ready\n")
  io.flush()
  for line in io.lines() do
    local out, l = {}, 0
    for i = 1, tonumber(line) do
      local t
      t, l = timed_step()
      out[i] = string.format("%.3f", t * 1000)
    end
    io.write(table.concat(out, " "), string.format(" loss=%.4f\n", l))
    io.flush()
  end
  return
end
local times, loss = {}, nil
for i = 1, steps do
  times[i], loss = timed_step()
end
local total = 0
for _, t in ipairs(times) do total = total + t end
table.sort(times)
local n = #times
local dt = n % 2 == 1 and times[(n + 1) // 2] or (times[n // 2] + times[n // 2 + 1]) / 2
io.write(string.format("icl %s %s %.4f %.1f loss=%.4f mean=%.1f\n", size, pe, 1 / dt, dt * 1000, loss,
                       total / n * 1000))
if os.getenv("ICL_BENCH_PROFILE") then
  local t1 = now()
  for _ = 1, steps do m:forward(xs, ys) end
  local tf = (now() - t1) / steps
  local t2 = now()
  for _ = 1, steps do m:predict(xs, ys) end
  local ti = (now() - t2) / steps
  io.write(string.format("  forward(train) %.1f ms, predict %.1f ms, backward+opt ~ %.1f ms\n", tf * 1000, ti * 1000,
                         (dt - tf) * 1000))
end
