--- A position encoding written in Lua: a learnable per-head decay,
--   bias_h(i, j) = -softplus(a_h) * (i - j)      (j <= i)
-- i.e. ALiBi whose slopes are learned (through softplus, so they stay
-- positive). The model calls forward once per layer and forward pass, and
-- backward with G = the batch-summed gradient of the loss with respect to
-- the logits [H, T, T]:
--   dL/da_h = sum_ij G_h(i, j) * (-(i - j)) * sigmoid(a_h).
-- The parameter `a` lives in the model's flat buffer
-- (layers.{l}.self_attn.decay.a), so the model's optimiser trains it.
--
-- Use it:
--   local decay = dofile("experiments/pe/decay_bias.lua")
--   local m = icl.model(icl.models.llama.preset("standard"),
--                       {rope_scaling = {type = "lua"}, lua_bias = decay.spec{heads = 8}},
--                       {n_dims = 20})
local icl = require "icl"

local decay = {}

--- the [T, T] matrix of distances i - j (negative above the diagonal, where G is 0)
local function distances(T)
  local i = icl.arange(T):reshape(T, 1)
  local j = icl.arange(T):reshape(1, T)
  return i - j
end

--- spec{heads = H, init = slope0}: a_h starts at softplus^-1(slope0 * 2^-(h-1)), ALiBi-like
function decay.spec(o)
  o = o or {}
  local H = assert(o.heads, "decay.spec: heads required")
  local s0 = o.init or 0.5
  local cache = {}
  return {
    name = "decay",
    per_layer = true,
    params = {{name = "a", shape = {H}, init = function(_, shape)
      local t = icl.zeros(shape)
      local v = {}
      for h = 1, H do
        local s = s0 * 2 ^ -(h - 1)
        v[h] = math.log(math.exp(s) - 1) -- softplus^-1
      end
      return icl.tensor(v)
    end}},
    forward = function(_, T, p)
      cache[T] = cache[T] or distances(T)
      local slope = p.a:softplus():reshape(H, 1, 1)
      return -(slope * cache[T]:reshape(1, T, T))
    end,
    backward = function(_, G, p, g)
      local T = G:shape()[2]
      cache[T] = cache[T] or distances(T)
      -- sum over (i, j) of G * (-(i - j)), per head
      local s = (G * cache[T]:reshape(1, T, T)):reshape(H, T * T):sum(2)
      g.a:sub_(s * p.a:sigmoid())
    end,
  }
end

return decay
