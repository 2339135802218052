--- Speed of the task library on the CPU.
--   LUA_PATH="lua/?.lua;lua/?/init.lua;;" LUA_CPATH="build/lua/?.so;;" lua5.4 bench/bench_tasks.lua [threads] [what]
-- what: "sampling" (part 1 only), a task name (part 2 for that task only), default both
-- 1. drawing one training batch (64 x 51 x 20, sample_into: no allocation)
--    per task, best and median of 100 draws, and the best with 1 thread;
-- 2. every default baseline of every task over 1280 prompts x 408 points
--    (the ood_length evaluation, D = 20), one run each.
local icl = require "icl"
local T = icl.core._tasks
local now = T.wall_time

local threads = tonumber(arg and arg[1]) or icl.num_threads()
icl.set_num_threads(threads)
local D, B, N = 20, 64, 51
local EP, EN = 1280, 408

local function median(t)
  table.sort(t)
  return t[(#t + 1) // 2]
end

print(string.format("icl task benchmark: %d threads, D = %d", icl.num_threads(), D))
print()
local REPS = 100
print(string.format("sampling one training batch %d x %d x %d (sample_into), %d draws each", B, N, D, REPS))
print(string.format("| %-26s | %12s | %12s | %12s |", "task", "best ms", "median ms", "1 thread ms"))
print("|" .. string.rep("-", 28) .. "|" .. string.rep("-", 14) .. "|" .. string.rep("-", 14) .. "|" ..
      string.rep("-", 14) .. "|")
local xs, ys = icl.zeros({B, N, D}), icl.zeros({B, N})
local function time_draws(t, nthreads)
  icl.set_num_threads(nthreads)
  local times = {}
  for rep = 1, REPS do
    local t0 = now()
    t:sample_into(xs, ys, {seed = 1, stream = rep, n_dims_truncated = D})
    times[#times + 1] = (now() - t0) * 1e3
  end
  icl.set_num_threads(threads)
  return math.min(table.unpack(times)), median(times)
end
for _, name in ipairs(icl.tasks.list()) do
  local t = icl.task(name, {n_dims = D})
  t:sample_into(xs, ys, {seed = 1, stream = 0}) -- sizes the workspace
  local best, med = time_draws(t, threads)
  local best1 = time_draws(t, 1)
  print(string.format("| %-26s | %12.3f | %12.3f | %12.3f |", name, best, med, best1))
end

print()
print(string.format("default baselines over %d prompts x %d points (D = %d), seconds", EP, EN, D))
print(string.format("| %-26s | %-14s | %8s | %8s |", "task", "baseline", "seconds", "task sum"))
print("|" .. string.rep("-", 28) .. "|" .. string.rep("-", 16) .. "|" .. string.rep("-", 10) .. "|" ..
      string.rep("-", 10) .. "|")
local only = arg and arg[2]
if only == "sampling" then return end
for _, name in ipairs(icl.tasks.list()) do
  if not only or only == name then
    local t = icl.task(name, {n_dims = D})
    local exs, eys = t:sample(EP, EN, {seed = 7, stream = 1 << 40})
    local sum = 0
    for i, b in ipairs(t:baselines()) do
      local t0 = now()
      local pred = t:run_baseline(b, exs, eys)
      local dt = now() - t0
      sum = sum + dt
      pred:free()
      print(string.format("| %-26s | %-14s | %8.2f | %8s |", i == 1 and name or "", b, dt,
                          i == #t:baselines() and string.format("%.2f", sum) or ""))
    end
    exs:free()
    eys:free()
  end
end
