-- Several runs of one shape in one process vs the same runs one by one
-- (issue "sweeps", many runs per machine). Same models, same data, same
-- number of steps; prints steps/s of both and the ratio.
-- usage: lua5.4 bench/group_cpu.lua [K=2] [steps=200] [size=toy|tiny|standard]
-- Set GOMP_SPINCOUNT=1000 as bin/icl does: on a busy machine OpenMP's default long spin slows the
-- one-by-one runs (a barrier per op) far more than the group, and the ratio would flatter grouping.
local icl = require "icl"
local K = tonumber(arg[1] or "2")
local steps = tonumber(arg[2] or "200")
local size = arg[3] or "toy"
local sizes = {
  toy = {hidden_size = 64, num_hidden_layers = 4, num_attention_heads = 4, N = 21, D = 5},
  tiny = {hidden_size = 256, num_hidden_layers = 2, num_attention_heads = 4, N = 51, D = 20},
  standard = {hidden_size = 256, num_hidden_layers = 16, num_attention_heads = 8, N = 51, D = 20},
}
local z = sizes[size]
local B = 64
local task = icl.task("linear_regression", {n_dims = z.D})
local function make(k)
  local m = icl.model({family = "Llama2", hidden_size = z.hidden_size, num_hidden_layers = z.num_hidden_layers,
                       num_attention_heads = z.num_attention_heads, max_length = {2 * z.N}},
                      {rope_scaling = {type = "nope"}}, {n_dims = z.D, seed = k})
  return m, m:optimizer{lr = 1e-3, weight_decay = 0}
end

-- one by one: each run alone with every thread
local t0 = icl.wall_time()
for k = 1, K do
  local m, opt = make(k)
  local xs, ys = icl.zeros{B, z.N, z.D}, icl.zeros{B, z.N}
  for s = 0, steps - 1 do
    task:sample_into(xs, ys, {seed = k, stream = s})
    m:loss_step(xs, ys, "mse")
    opt:step()
  end
end
local t_seq = icl.wall_time() - t0

-- grouped: all K runs advance together, one run per core
local models, opts, xs, ys, draws, losses = {}, {}, {}, {}, {}, {}
for k = 1, K do
  models[k], opts[k] = make(k)
  xs[k], ys[k] = icl.zeros{B, z.N, z.D}, icl.zeros{B, z.N}
  losses[k] = icl.zeros{}
end
t0 = icl.wall_time()
for s = 0, steps - 1 do
  for k = 1, K do draws[k] = {B = B, N = z.N, seed = k, stream = s} end
  icl.group_step(models, opts, task._sampler, xs, ys, draws, "mse", losses)
end
local t_group = icl.wall_time() - t0
print(string.format("%s size, %d runs x %d steps, %d threads: one by one %.2f run-steps/s, grouped %.2f run-steps/s, " ..
  "ratio %.2fx", size, K, steps, icl.num_threads(), K * steps / t_seq, K * steps / t_group, t_seq / t_group))
