-- The Llama family from Lua: building from published-style configs, presets
-- and parameter counts, attention capture, and a position encoding written
-- in Lua (experiments/pe/decay_bias.lua) that trains and gradient-checks.
local icl = require "icl"
local llama = require "icl.models.llama"

local src = os.getenv("ICL_SOURCE_DIR") or "."

local function batch(B, N, D, seed)
  icl.manual_seed(seed)
  return icl.randn({B, N, D}), icl.randn({B, N})
end

describe("llama family", function()
  it("builds the presets with the published parameter counts", function()
    local m = icl.model(llama.preset("standard"), {}, {n_dims = 20})
    assert.are.equal(24983040, m:num_params({published = true}))
    local c = m:param_counts()
    assert.are.equal(24983040, c.published)
    assert.are.equal(24983040 - 32000 * 256, c.engine)
    assert.are.equal(m:num_params(), c.engine)
    m:free()
    local s = icl.model(llama.preset("small"), {}, {n_dims = 20})
    assert.is_true(math.abs(s:num_params({published = true}) - 12.39e6) < 1e4)
    s:free()
    local l = icl.model(llama.preset("large"), {}, {n_dims = 20})
    assert.is_true(math.abs(l:num_params({published = true}) - 83.52e6) < 1e4)
    l:free()
  end)

  it("maps the published patch names", function()
    local cfg = llama.preset("tiny")
    cfg.hidden_size, cfg.num_attention_heads = 32, 4
    for _, t in ipairs({"none", "rope", "linear", "dynamic", "yarn", "dynamic-yarn", "nope", "alibi", "fire"}) do
      local m = icl.model(cfg, {rope_scaling = {type = t}}, {n_dims = 4})
      local info = m:pe_info()
      assert.are.equal(8, info.factor)
      assert.are.equal(102, info.max_length)
      if t == "fire" then assert.are.same({32, 1}, m:get("layers.1.self_attn.fire.mlp.0.weight"):shape()) end
      m:free()
    end
    assert.has_error(function() icl.model(cfg, {rope_scaling = {type = "rotary"}}, {n_dims = 4}) end)
    assert.has_error(function() icl.model(cfg, {}, {n_dims = 4, colour = 1}) end)
    local sweep = llama.preset("tiny")
    sweep.hidden_size = {256, 512}
    assert.has_error(function() icl.model(sweep, {}, {n_dims = 4}) end)
  end)

  it("uses the dynamic-yarn readings and the factor from the patch", function()
    local cfg = llama.preset("tiny")
    cfg.hidden_size, cfg.num_hidden_layers, cfg.max_length = 32, 1, {8}
    local xs, ys = batch(1, 10, 3, 1) -- 20 tokens
    local m = icl.model(cfg, {rope_scaling = {type = "dynamic-yarn", factor = 4}}, {n_dims = 3})
    m:predict(xs, ys)
    assert.are.equal(2.5, m:pe_info().last_scale)
    local c = icl.model(cfg, {rope_scaling = {type = "dynamic-yarn", factor = 4}}, {n_dims = 3, dynamic_yarn = "code"})
    c:predict(xs, ys)
    assert.are.equal(1, c:pe_info().last_scale) -- 20 <= 4 * 8
  end)

  it("hands out attention probabilities", function()
    local cfg = llama.preset("tiny")
    cfg.hidden_size = 32
    local m = icl.model(cfg, {rope_scaling = {type = "alibi"}}, {n_dims = 3, seed = 3})
    local xs, ys = batch(2, 6, 3, 2)
    local att, pred = m:attention(xs, ys, {layers = {2}, query = "all"})
    assert.is_nil(att[1])
    assert.are.same({2, 4, 12, 12}, att[2]:shape())
    local sums = att[2]:sum(4)
    assert.is_true((sums - 1):abs():max():item() < 1e-5)
    local last = m:attention(xs, ys, {layers = {1, 2}, query = "last"})
    assert.are.same({2, 4, 1, 12}, last[2]:shape())
    assert.is_true((last[2]:select(3, 1) - att[2]:select(3, 12)):abs():max():item() == 0)
    assert.is_true((pred - m:predict(xs, ys)):abs():max():item() == 0)
  end)
end)

describe("a position encoding in Lua", function()
  local decay = dofile(src .. "/experiments/pe/decay_bias.lua")

  local function build(seed)
    local cfg = {family = "Llama2", hidden_size = 16, num_hidden_layers = 2, num_attention_heads = 4,
                 max_length = {8}, hidden_act = "silu", rope_theta = 10000}
    return icl.model(cfg, {rope_scaling = {type = "lua"}, lua_bias = decay.spec{heads = 4}},
                     {n_dims = 3, seed = seed, initializer_range = 0.3})
  end

  it("declares its parameters in the model and matches ALiBi at ALiBi's slopes", function()
    local m = build(1)
    local a = m:get("layers.0.self_attn.decay.a")
    assert.are.same({4}, a:shape())
    assert.is_true(math.abs(a:softplus():totable()[2] - 0.25) < 1e-6)
    -- set softplus(a) to ALiBi's slopes for 4 heads: the two models agree
    local slopes = {2 ^ -2, 2 ^ -4, 2 ^ -6, 2 ^ -8}
    local inv = {}
    for h = 1, 4 do inv[h] = math.log(math.exp(slopes[h]) - 1) end
    local cfg = {family = "Llama2", hidden_size = 16, num_hidden_layers = 2, num_attention_heads = 4,
                 max_length = {8}, hidden_act = "silu", rope_theta = 10000}
    local al = icl.model(cfg, {rope_scaling = {type = "alibi"}}, {n_dims = 3, seed = 1, initializer_range = 0.3})
    for _, p in ipairs(al:param_list()) do m:set(p.name, al:get(p.name)) end
    for l = 0, 1 do m:set("layers." .. l .. ".self_attn.decay.a", icl.tensor(inv)) end
    local xs, ys = batch(2, 9, 3, 5)
    assert.is_true((m:predict(xs, ys) - al:predict(xs, ys)):abs():max():item() < 1e-5)
  end)

  it("has exact parameter gradients (finite differences)", function()
    local m = build(2)
    local xs, ys = batch(2, 10, 3, 6) -- 20 tokens, past max_length 8
    m:loss_step(xs, ys, "mse")
    for l = 0, 1 do
      local name = "layers." .. l .. ".self_attn.decay.a"
      local g = m:grad(name):clone()
      assert.is_true(g:abs():max():item() > 1e-6)
      local r = icl.gradcheck(function()
        local e = m:predict(xs, ys) - ys
        return (e * e):mean()
      end, m:get(name), g, {eps = 3e-2}) -- float32 loss noise dominates below ~1e-2
      assert.is_true(r.max_rel < 1e-2, string.format("%s: max rel %g (num %g ana %g)", name, r.max_rel, r.numeric,
                                                      r.analytic))
    end
  end)

  it("trains with the model's optimiser", function()
    local m = build(3)
    local opt = m:optimizer({lr = 3e-3})
    local a0 = m:get("layers.1.self_attn.decay.a"):clone()
    local xs, ys = batch(4, 8, 3, 7)
    local first, last
    for step = 1, 8 do
      local loss = m:loss_step(xs, ys, "mse"):item()
      opt:step()
      first = first or loss
      last = loss
    end
    assert.is_true(last < first)
    assert.is_true((m:get("layers.1.self_attn.decay.a") - a0):abs():max():item() > 0)
  end)

  it("reports errors raised inside the Lua encoding", function()
    local cfg = {family = "Llama2", hidden_size = 16, num_hidden_layers = 1, num_attention_heads = 4,
                 max_length = {8}}
    local bad = {forward = function() error("boom") end}
    local m = icl.model(cfg, {rope_scaling = {type = "lua"}, lua_bias = bad}, {n_dims = 3})
    local xs, ys = batch(1, 3, 3, 8)
    local ok, err = pcall(function() return m:predict(xs, ys) end)
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("boom"))
  end)
end)
