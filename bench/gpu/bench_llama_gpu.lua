--- Training steps per second of icl on the GPU: the standard in-context Llama
-- (16 layers, hidden 256, 8 heads, batch 64, 51 points = 102 tokens, D = 20,
-- linear regression sampled on the GPU every step) through the captured
-- training step (models/train_step.h: sample, forward, loss, backward,
-- AdamW as one CUDA graph replay), for each position encoding.
--
--   lua5.4 bench/gpu/bench_llama_gpu.lua [--pe nope,alibi,fire,dynamic-yarn] [--steps 100] [--reps 5]
--                                        [--strict] [--no-graphs] [--json FILE] [--device cpu]
-- (--device cpu: the tiny preset at batch 8, to check the script without a GPU)
--
-- Per encoding: 3 warm-up steps (eager, capture, replay), then --reps runs of
-- --steps steps, each closed by reading the loss back (a synchronisation);
-- steps/s is the median over the runs. MFU = achieved FLOP/s over peak, with
-- the FLOPs of the model counted by hand (GEMMs and attention, forward and
-- backward = 3x forward; attention counted over the full T x T square as
-- eager PyTorch computes it; element-wise work not counted), printed against
-- the H100 SXM datasheet's dense TF32 peak (~495 TFLOP/s, what the GEMMs use
-- unless --strict) and its FP32 peak (~67 TFLOP/s).
-- One line per encoding:
--   icl-gpu <pe> <tf32|fp32> <steps/s> <ms/step> mfu_tf32=<%> mfu_fp32=<%> 50k=<s> graphs=<on|off>
local icl = require "icl"
local core = require "icl.core"

local opts = {pe = "nope,alibi,fire,dynamic-yarn", steps = 100, reps = 5, device = "cuda"}
local i = 1
while i <= #arg do
  local a = arg[i]
  if a == "--strict" or a == "--no-graphs" then opts[a:sub(3)] = true
  elseif a == "--pe" or a == "--steps" or a == "--reps" or a == "--json" or a == "--device" then
    opts[a:sub(3)] = arg[i + 1]
    i = i + 1
  else
    error("bench_llama_gpu: unknown argument " .. a)
  end
  i = i + 1
end
local steps, reps = tonumber(opts.steps), tonumber(opts.reps)

local cpu = opts.device == "cpu"
if not cpu and not icl.cuda_available() then
  print("bench_llama_gpu: no GPU, skipping (" .. tostring(icl.cuda_why()) .. ")")
  os.exit(0)
end

local B, N, D = cpu and 8 or 64, 51, 20
local T = 2 * N
local HID, LAYERS, HEADS, FF = 256, cpu and 2 or 16, cpu and 4 or 8, 1024
local PEAK_TF32, PEAK_FP32 = 495e12, 67e12

--- FLOPs of one training step (see the header)
local function step_flops()
  local bt = B * T
  local gemm = 2 * bt * (4 * HID * HID + 3 * HID * FF) * LAYERS + 2 * bt * D * HID + 2 * bt * HID
  local attn = 4 * B * HEADS * T * T * (HID // HEADS) * LAYERS
  return 3 * (gemm + attn)
end

local function median(t)
  table.sort(t)
  local n = #t
  return n % 2 == 1 and t[(n + 1) // 2] or 0.5 * (t[n // 2] + t[n // 2 + 1])
end

local json_out = opts.json and assert(io.open(opts.json, "a"))
local llama = require "icl.models.llama"

local eval8 -- the 8x-length evaluation's outcome of the last bench()

local function bench(pe)
  local cfg = llama.preset(cpu and "tiny" or "standard")
  local ok, m = pcall(icl.model, cfg, {rope_scaling = {type = pe}}, {n_dims = D, device = opts.device, seed = 1})
  if not ok then return nil, tostring(m) end
  local opt = m:optimizer({lr = 3e-4, weight_decay = 0.01})
  local task = icl.task("linear_regression", {n_dims = D})
  local st = core._train_step(m, opt, task._sampler, {batch = B, max_points = N, seed = 7, loss = "mse",
                                                      graphs = not opts["no-graphs"]})
  local done = 0
  local function run(k)
    for _ = 1, k do st:run(N, D) end
    done = done + k
    return st:loss(done - 1) -- reads the ring: waits for the device
  end
  run(3)
  local rates, loss = {}, nil
  for _ = 1, reps do
    local t0 = core.wall_time()
    loss = run(steps)
    rates[#rates + 1] = steps / (core.wall_time() - t0)
  end
  -- evaluation at 8x the training length on the same model (inference-only
  -- arena: no training activations of that length), then training resumes
  local L8 = 8 * N
  local ex, ey = core.zeros({B, L8, D}, {device = opts.device}), core.zeros({B, L8}, {device = opts.device})
  task:sample_into(ex, ey, {seed = 7, stream = 1 << 40, n_dims_truncated = D, device = opts.device})
  local t8 = core.wall_time()
  local ok8, e8 = pcall(function() return m:predict(ex, ey):sum():item() end)
  eval8 = ok8 and string.format("eval8x=ok(%.2fs)", core.wall_time() - t8) or
          ("eval8x=FAILED(" .. tostring(e8):gsub("%s+", "_") .. ")")
  run(2)
  local s = st:stats()
  st:free()
  m:free()
  return median(rates), loss, s
end

local flops = step_flops()
local mode = opts.strict and "fp32" or "tf32"
core.set_strict_fp32(opts.strict or false)
print(string.format("# %s Llama on %s, batch %d x %d tokens, %.1f GFLOP per step (GEMMs + attention, fwd + bwd)",
                    cpu and "tiny" or "standard", opts.device, B, T,
                    flops / 1e9))
for pe in opts.pe:gmatch("[^,]+") do
  local rate, loss, s = bench(pe)
  if not rate then
    print(string.format("icl-%s %s %s n/a (%s)", cpu and "cpu" or "gpu", pe, mode, loss))
  else
    local mfu16, mfu32 = 100 * flops * rate / PEAK_TF32, 100 * flops * rate / PEAK_FP32
    print(string.format("icl-%s %s %s %.2f %.3f mfu_tf32=%.1f%% mfu_fp32=%.1f%% 50k=%.0fs graphs=%s nodes=%d loss=%.4f %s",
                        cpu and "cpu" or "gpu", pe, mode, rate, 1000 / rate, mfu16, mfu32, 50000 / rate, s.graphs and "on" or "off(" ..
                        s.why_off .. ")", s.nodes, loss, eval8))
    if json_out then
      json_out:write(string.format('{"impl": "icl", "pe": "%s", "mode": "%s", "steps_per_s": %.4f, "mfu_tf32": %.4f, ' ..
                                   '"mfu_fp32": %.4f, "graphs": %s}\n', pe, mode, rate, mfu16 / 100, mfu32 / 100,
                                   tostring(s.graphs)))
    end
  end
end
if json_out then json_out:close() end
