-- The Mamba backbone through icl.model: config mapping, errors, parameter
-- names, a few hundred training steps on in-context linear regression, and
-- prediction at 8x the training length.
local icl = require "icl"

local function tiny(opts)
  local cfg = {type = "ssm", family = "Mamba", max_length = {"inf"}, hidden_size = 32, state_size = 8,
               num_hidden_layers = 2}
  return icl.model(cfg, {}, opts or {n_dims = 4, T_c = 8, seed = 3})
end

-- y = <x, w> / sqrt(D) with w ~ N(0, I) per prompt: the zero predictor scores 1
local function regression_batch(B, N, D, seed)
  local xs = icl.randn({B, N, D}, {seed = seed})
  local w = icl.randn({B, D, 1}, {seed = seed + 1000000})
  local ys = xs:matmul(w):reshape(B, N) / math.sqrt(D)
  return xs, ys
end

describe("icl.model (Mamba)", function()
  it("builds the published standard preset", function()
    local m = icl.model({type = "ssm", family = "Mamba", max_length = {"inf"}, hidden_size = 256,
                         state_size = 16, num_hidden_layers = 32}, {}, {n_dims = 20})
    local c = m:config()
    assert.are.same({256, 16, 32, 2, 4, 16, 64, 512},
                    {c.hidden, c.state, c.layers, c.expand, c.conv, c.dt_rank, c.chunk, c.inner})
    assert.are.equal("mamba", m:family())
    -- about 14M non-embedding parameters (experiments.md §5.6)
    local n = m:num_params() - 256 * 20 - 256
    assert.is_true(n > 13e6 and n < 15e6, tostring(n))
    m:free()
  end)

  it("names parameters like HF MambaModel, without A_log/D weight decay", function()
    local m = tiny()
    local by = {}
    for _, p in ipairs(m:param_list()) do by[p.name] = p end
    assert.are.same({64, 1, 4}, by["layers.1.mixer.conv1d.weight"].shape)
    assert.are.same({128, 32}, by["layers.0.mixer.in_proj.weight"].shape)
    assert.are.same({2 + 16, 64}, by["layers.0.mixer.x_proj.weight"].shape)
    assert.are.same({64, 8}, by["layers.0.mixer.A_log"].shape)
    assert.is_false(by["layers.0.mixer.A_log"].decay)
    assert.is_false(by["layers.1.mixer.D"].decay)
    assert.is_true(by["layers.0.mixer.in_proj.weight"].decay)
    assert.is_not_nil(by["norm_f.weight"])
    assert.is_not_nil(by["layers.1.norm.weight"])
    m:free()
  end)

  it("rejects a position encoding, sweeps, unknown keys and attention analysis", function()
    assert.has_error(function() tiny():attention() end,
                     "model:attention: attention analysis does not apply to Mamba (attention-free)")
    local ok, err = pcall(icl.model, {family = "Mamba", hidden_size = 8}, {pe = "rope"}, {n_dims = 2})
    assert.is_false(ok)
    assert.is_truthy(tostring(err):find("Mamba has no position encoding", 1, true))
    ok, err = pcall(icl.model, {family = "Mamba", hidden_size = {256, 512}}, {}, {n_dims = 2})
    assert.is_truthy(tostring(err):find("sweep", 1, true))
    ok, err = pcall(icl.model, {family = "Mamba", hidden_size = 8, heads = 2}, {}, {n_dims = 2})
    assert.is_truthy(tostring(err):find("unknown model config key 'heads'", 1, true))
    ok, err = pcall(icl.model, {family = "Mamba", hidden_size = 8}, {}, {n_dims = 2, T_c = 0})
    assert.is_false(ok)
  end)

  it("builds from a validated run table (icl.config)", function()
    local run = require("icl.config").load({model = {family = "Mamba", hidden_size = 16, num_hidden_layers = 1},
                                            task = {name = "linear_regression", curriculum = {
                                              dims = {start = 2, ["end"] = 3, increment = 1, interval = 10},
                                              points = {start = 5, ["end"] = 7, increment = 1, interval = 10}}}})
    local model, patch = run.model, run.patch
    -- the validated patch is filled with defaults and says rope_scaling.type = "none"
    assert.are.equal("none", patch.rope_scaling.type)
    local m = icl.model(model, patch, {n_dims = 3})
    assert.are.same({16, 16, 1, 1}, {m:config().hidden, m:config().state, m:config().layers, m:config().dt_rank})
    m:free()
    local ok, err = pcall(icl.model, model, {rope_scaling = {type = "rope"}}, {n_dims = 3})
    assert.is_truthy(tostring(err):find("Mamba has no position encoding", 1, true))
    model.use_bias = true
    ok, err = pcall(icl.model, model, patch, {n_dims = 3})
    assert.is_truthy(tostring(err):find("use_bias", 1, true))
  end)

  it("keeps memory linear in B*T*E: checkpoints instead of every state", function()
    local m = icl.model({family = "Mamba", hidden_size = 256, state_size = 16, num_hidden_layers = 32}, {},
                        {n_dims = 20})
    local saved = m:workspace(64, 102)
    local every_state = 64 * 102 * 512 * 16 * 32
    assert.is_true(saved < every_state / 4, string.format("%d vs %d", saved, every_state))
    local saved_inf = m:workspace(64, 816, false)
    assert.are.equal(0, saved_inf)
    m:free()
  end)

  it("learns in-context regression and predicts at 8x the training length", function()
    icl.set_num_threads(2)
    local B, N, D = 32, 12, 4
    local m = tiny({n_dims = D, T_c = 8, seed = 11})
    local opt = m:optimizer {lr = 3e-3, weight_decay = 0.0}
    local losses = {}
    for step = 1, 300 do
      local xs, ys = regression_batch(B, N, D, step)
      losses[step] = m:loss_step(xs, ys, "mse"):item()
      opt:step()
    end
    local function mean(a, b)
      local s = 0
      for i = a, b do s = s + losses[i] end
      return s / (b - a + 1)
    end
    local first, last = mean(1, 20), mean(281, 300)
    print(string.format("\n  mamba tiny: loss %.3f (first 20 steps) -> %.3f (last 20)", first, last))
    assert.is_true(first > 0.6, "initial loss " .. first)
    assert.is_true(last < 0.7 * first, string.format("loss %.3f -> %.3f did not fall clearly", first, last))
    -- 8x the training length: finite predictions, and causal (the first N agree with a short prompt)
    local xs, ys = regression_batch(B, 8 * N, D, 999)
    local pred = m:predict(xs, ys)
    assert.are.same({B, 8 * N}, pred:shape())
    assert.is_false(pred:has_nonfinite())
    local short = m:predict(xs:narrow(2, 1, N):contiguous(), ys:narrow(2, 1, N):contiguous())
    local diff = (pred:narrow(2, 1, N) - short):abs():max():item()
    assert.is_true(diff < 1e-4, "prefix predictions differ by " .. diff)
    local err_long = ((pred - ys) ^ 2):mean():item()
    print(string.format("  mamba tiny: squared error at 8x length (%d examples) %.3f", 8 * N, err_long))
    m:free()
  end)
end)
