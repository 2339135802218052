--- sign_of_sum: an example task defined in Lua.
-- Boolean inputs x in {-1,+1}^D; one random sign s per prompt (s = -1 with
-- probability flip_prob); y = s * sign(sum_j x_j + 0.5), so labels are +-1
-- and never 0. One labelled example reveals s, so an in-context learner can
-- reach accuracy 1 from position 1 on; the "first_example" baseline does
-- exactly that.
--
-- Use:  icl.tasks.load("experiments/tasks/sign_of_sum.lua")
--       local t = icl.task("sign_of_sum", {n_dims = 20})
-- It has the interface of the built-in tasks (sample, sample_into, metric,
-- baselines, run_baseline), so the model trainer uses it unchanged.
local icl = require "icl"

-- g(x) = sign(sum_j x_j + 0.5): [B, N]
local function sum_sign(xs)
  return (xs:sum(3) + 0.5):sign()
end

return {
  name = "sign_of_sum",
  description = "y = s * sign(sum(x) + 0.5), one random sign s per prompt",
  sample_x = "boolean", -- the engine's Boolean sampler (deterministic in seed/stream)
  loss = "bce",
  metric = "accuracy",
  options = {flip_prob = 0.5},

  -- the function of each prompt: its sign s, [B, 1]
  sample_function = function(self, B, draw)
    local u = icl.rand({B, 1}, {seed = draw.seed_for("sign"), device = draw.device})
    return 1 - u:lt(self.options.flip_prob) * 2 -- -1 where u < flip_prob, else +1
  end,

  evaluate = function(self, s, xs, draw)
    return sum_sign(xs) * s
  end,

  baselines = {
    "nn_3", "averaging", "null",
    {
      name = "first_example", -- read s off example 0: y_i = y_0 g(x_0) g(x_i), 0 at position 0
      fn = function(xs, ys)
        local g = sum_sign(xs)
        local s = ys:narrow(2, 1, 1) * g:narrow(2, 1, 1)
        local pred = (g * s):contiguous()
        pred:narrow(2, 1, 1):fill(0)
        return pred
      end,
    },
  },
}
