-- The task registry from Lua: built-in tasks, a Lua-defined task (the
-- example in experiments/tasks/), baselines, determinism, errors, and a
-- small training run on the Lua task.
local icl = require "icl"

local SRC = os.getenv("ICL_SOURCE_DIR") or "."

local function same(a, b)
  local ta, tb = a:totable(), b:totable()
  local function eq(x, y)
    if type(x) ~= "table" then return x == y end
    if #x ~= #y then return false end
    for i = 1, #x do if not eq(x[i], y[i]) then return false end end
    return true
  end
  return eq(ta, tb)
end

local function mean(t) return t:mean():item() end

describe("built-in tasks", function()
  it("expose the same fields and methods", function()
    for _, name in ipairs(icl.tasks.list()) do
      if icl.tasks.baselines(name) then
        local ok, t = pcall(icl.task, name, {n_dims = 6})
        assert.is_true(ok, tostring(t))
        assert.equals(name, t.name)
        assert.equals(6, t.n_dims)
        assert.is_truthy(t.data == "gaussian" or t.data == "boolean" or not t.builtin)
        assert.is_truthy(t.loss == "mse" or t.loss == "bce")
        local xs, ys = t:sample(3, 5, {seed = 1, stream = 2})
        assert.same({3, 5, 6}, xs:shape())
        assert.same({3, 5}, ys:shape())
        assert.same({3, 5}, t:metric(ys, ys):shape())
        assert.is_true(#t:baselines() >= 1)
      end
    end
  end)

  it("have the loss, metric and baselines of the spec", function()
    local lr = icl.task("linear_regression", {n_dims = 20})
    assert.equals("mse", lr.loss)
    assert.equals("squared_error", lr.metric_name)
    assert.equals("gaussian", lr.data)
    assert.same({"least_squares", "nn_3", "averaging"}, lr:baselines())
    assert.same({"least_squares", "nn_3", "averaging", "lasso_0.01"}, icl.baselines("sparse_linear_regression"))
    local conj = icl.task("conjunction")
    assert.equals(20, conj.n_dims)
    assert.equals("bce", conj.loss)
    assert.equals("accuracy", conj.metric_name)
    assert.equals("boolean", conj.data)
    assert.same({"nn_1", "averaging", "null"}, conj:baselines())
    assert.same({"nn_3", "averaging", "null"}, icl.baselines("parity"))
  end)

  it("are deterministic in (seed, stream) and differ across streams", function()
    local t = icl.task("dnf", {n_dims = 10})
    local x1, y1 = t:sample(4, 7, {seed = 9, stream = 100})
    local x2, y2 = t:sample(4, 7, {seed = 9, stream = 100})
    assert.is_true(same(x1, x2) and same(y1, y2))
    local x3 = t:sample(4, 7, {seed = 9, stream = 101})
    assert.is_false(same(x1, x3))
    -- sample_into reuses buffers and gives the same data
    local xb, yb = icl.zeros({4, 7, 10}), icl.zeros({4, 7})
    t:sample_into(xb, yb, {seed = 9, stream = 100})
    assert.is_true(same(x1, xb) and same(y1, yb))
    -- chunks with prompt_offset = one call
    local xa, ya = t:sample(2, 7, {seed = 9, stream = 100, prompt_offset = 2})
    assert.is_true(same(xa, x1:narrow(1, 3, 2)) and same(ya, y1:narrow(1, 3, 2)))
  end)

  it("zero-pad Gaussian inputs past n_dims_truncated; Boolean ones ignore it", function()
    local t = icl.task("linear_regression", {n_dims = 8})
    local xs = t:sample(5, 4, {seed = 3, n_dims_truncated = 3})
    assert.equals(0, xs:narrow(3, 4, 5):abs():sum():item())
    assert.is_true(xs:narrow(3, 1, 3):abs():sum():item() > 0)
    local b = icl.task("majority", {n_dims = 8})
    local xb = b:sample(5, 4, {seed = 3, n_dims_truncated = 3})
    assert.equals(5 * 4 * 8, xb:abs():sum():item())
    local bt = icl.task("majority", {n_dims = 8, truncate_boolean = true})
    local xt = bt:sample(5, 4, {seed = 3, n_dims_truncated = 3})
    assert.equals(0, xt:narrow(3, 4, 5):abs():sum():item())
  end)

  it("reject unknown tasks, options and bad arguments with the valid choices", function()
    local ok, err = pcall(icl.task, "linear_regresion")
    assert.is_false(ok)
    assert.matches("unknown task 'linear_regresion'", err, 1, true)
    assert.matches("sparse_thres", err, 1, true)
    ok, err = pcall(icl.task, "relu_2nn_regression", {n_dims = 4, hiden = 3})
    assert.is_false(ok)
    assert.matches("unknown option 'hiden'", err, 1, true)
    assert.matches("hidden", err, 1, true)
    local t = icl.task("linear_regression", {n_dims = 4})
    ok, err = pcall(t.sample, t, 2, 3, {seed = 1, n_dims_truncated = 9})
    assert.is_false(ok)
    assert.matches("n_dims_truncated", err, 1, true)
    ok, err = pcall(t.run_baseline, t, "knn_3", t:sample(1, 3, {seed = 1}))
    assert.is_false(ok)
    assert.matches("nn_<k>", err, 1, true)
    ok, err = pcall(icl.baselines, "nope")
    assert.is_false(ok)
  end)

  it("run their default baselines; least squares fits noiseless linear data", function()
    local t = icl.task("linear_regression", {n_dims = 5})
    local xs, ys = t:sample(16, 12, {seed = 4})
    local m = t:evaluate_baselines(xs, ys)
    for _, b in ipairs(t:baselines()) do assert.same({16, 12}, m[b]:shape()) end
    -- past D points least squares is exact
    assert.is_true(m.least_squares:narrow(2, 7, 6):max():item() < 1e-6)
    assert.equals(0, m.least_squares:narrow(2, 1, 1):sub(ys:narrow(2, 1, 1):square()):abs():max():item())
    local c = icl.task("parity", {n_dims = 6})
    local bx, by = c:sample(8, 10, {seed = 4})
    local acc = c:metric(c:run_baseline("null", bx, by), by)
    assert.equals(mean(by:lt(0)), mean(acc)) -- the null classifier is right exactly on the -1 labels
  end)

  it("apply the evaluation quirk as an option", function()
    local a = icl.task("conjunction", {n_dims = 20})
    local q = icl.task("conjunction", {n_dims = 20, independent_label_function = true})
    local xa, ya = a:sample(2000, 5, {seed = 1})
    local xq, yq = q:sample(2000, 5, {seed = 1})
    assert.is_true(same(xa, xq))
    assert.is_true(mean(ya:gt(0)) > 0.3)
    assert.is_true(mean(yq:gt(0)) < 0.06)
  end)
end)

describe("a Lua-defined task", function()
  local name = icl.tasks.load(SRC .. "/experiments/tasks/sign_of_sum.lua")

  it("registers beside the built-ins", function()
    assert.equals("sign_of_sum", name)
    local found = false
    for _, n in ipairs(icl.tasks.list()) do found = found or n == name end
    assert.is_true(found)
    assert.same({"nn_3", "averaging", "null", "first_example"}, icl.baselines(name))
    local ok, err = pcall(icl.task, name, {n_dims = 5, flip = 1})
    assert.is_false(ok)
    assert.matches("flip_prob", err, 1, true)
    ok, err = pcall(icl.register_task, "parity", {})
    assert.is_false(ok)
    assert.matches("built-in", err, 1, true)
  end)

  it("samples deterministically with the built-in interface", function()
    local t = icl.task(name, {n_dims = 5})
    assert.equals("bce", t.loss)
    assert.equals("accuracy", t.metric_name)
    assert.equals("boolean", t.data)
    local x1, y1 = t:sample(6, 9, {seed = 5, stream = 1})
    local x2, y2 = t:sample(6, 9, {seed = 5, stream = 1})
    local x3, y3 = t:sample(6, 9, {seed = 5, stream = 2})
    assert.is_true(same(x1, x2) and same(y1, y2))
    assert.is_false(same(x1, x3) and same(y1, y3))
    -- the named sampler is the engine's: same inputs as a built-in Boolean task without forcing
    local px = icl.task("parity", {n_dims = 5}):sample(6, 9, {seed = 5, stream = 1})
    assert.is_true(same(x1, px))
    -- labels are +-1
    assert.equals(6 * 9, y1:abs():sum():item())
    local xb, yb = icl.zeros({6, 9, 5}), icl.zeros({6, 9})
    t:sample_into(xb, yb, {seed = 5, stream = 1})
    assert.is_true(same(x1, xb) and same(y1, yb))
    -- prompt chunks draw different functions
    local _, ya = t:sample(200, 3, {seed = 5, prompt_offset = 0})
    local _, yb2 = t:sample(200, 3, {seed = 5, prompt_offset = 200})
    assert.is_false(same(ya, yb2))
  end)

  it("runs its baselines, including the Lua one", function()
    local t = icl.task(name, {n_dims = 7})
    local xs, ys = t:sample(64, 20, {seed = 8})
    local m = t:evaluate_baselines(xs, ys)
    assert.equals(1, mean(m.first_example:narrow(2, 2, 19)))
    assert.equals(0, mean(m.first_example:narrow(2, 1, 1))) -- sign(0) counts as wrong
    assert.is_true(mean(m.averaging:narrow(2, 5, 16)) > 0.65) -- measured 0.75
    local null_acc = mean(m.null)
    assert.is_true(null_acc > 0.3 and null_acc < 0.7)
  end)

  it("can be written inline, with its own input sampler and bare baseline functions", function()
    icl.register_task("scaled_linear", {
      loss = "mse",
      options = {scale = 2},
      sample_function = function(self, B, draw)
        return icl.randn({B, self.n_dims, 1}, {seed = draw.seed_for("w")}) * self.options.scale
      end,
      evaluate = function(self, w, xs) return xs:matmul(w):squeeze(3) end,
      baselines = {"least_squares", function(xs, ys) return ys * 0 end},
    })
    local t = icl.task("scaled_linear", {n_dims = 4, scale = 3})
    assert.equals("gaussian", t.data)
    assert.equals("squared_error", t.metric_name)
    assert.same({"least_squares", "lua_2"}, t:baselines())
    local xs, ys = t:sample(5, 9, {seed = 2, stream = 3, n_dims_truncated = 2})
    -- the named Gaussian sampler: the built-in linear_regression's inputs
    local lx = icl.task("linear_regression", {n_dims = 4}):sample(5, 9, {seed = 2, stream = 3, n_dims_truncated = 2})
    assert.is_true(same(xs, lx))
    local m = t:evaluate_baselines(xs, ys)
    assert.is_true(m.least_squares:narrow(2, 4, 6):max():item() < 1e-5) -- rank 2 after truncation
    assert.is_true(same(m.lua_2, ys:square()))
    -- a custom input sampler
    icl.register_task("uniform_inputs", {
      loss = "mse", data = "uniform",
      sample_x = function(self, B, N, draw) return icl.rand({B, N, self.n_dims}, {seed = draw.seed_for("x")}) end,
      sample_function = function() return nil end,
      evaluate = function(self, _, xs) return xs:sum(3) end,
    })
    local u = icl.task("uniform_inputs", {n_dims = 3})
    assert.equals("uniform", u.data)
    local ux, uy = u:sample(2, 4, {seed = 1})
    assert.is_true(ux:min():item() >= 0 and ux:max():item() < 1)
    assert.same({2, 4}, uy:shape())
  end)

  it("trains a small MLP whose loss falls clearly", function()
    -- an in-context MLP: position i sees x_i, y_{i-1} x_{i-1} and y_{i-1},
    -- enough to read off the prompt's sign from one example
    local D, B, N = 5, 32, 16
    local t = icl.task(name, {n_dims = D})
    local nn, optim = icl.nn, icl.optim
    local model = nn.Sequential({nn.Linear(2 * D + 1, 32, {seed = 1}), nn.SiLU(), nn.Linear(32, 1, {seed = 2})})
    local opt = optim.adamw_for(model, {lr = 1e-2, weight_decay = 0})
    local lossf = nn.BCEWithLogitsLoss()
    local function batch(step)
      local xs, ys = t:sample(B, N, {seed = 11, stream = step})
      local prev, cur = xs:narrow(2, 1, N - 1), xs:narrow(2, 2, N - 1)
      local yprev = ys:narrow(2, 1, N - 1):unsqueeze(3)
      local feat = icl.cat({cur, prev * yprev, yprev}, 3):reshape({B * (N - 1), 2 * D + 1})
      return feat, ys:narrow(2, 2, N - 1):reshape({B * (N - 1), 1})
    end
    local losses = {}
    for step = 0, 299 do
      local feat, target = batch(step)
      model:zero_grad()
      local pred = model:forward(feat)
      local l = lossf:forward(pred, target)
      model:backward(feat, lossf:backward(pred, target))
      opt:step()
      losses[#losses + 1] = l:item()
    end
    local function avg(a, b)
      local s = 0
      for i = a, b do s = s + losses[i] end
      return s / (b - a + 1)
    end
    local first, last = avg(1, 20), avg(281, 300)
    assert.is_true(first > 0.6, "initial loss " .. first)
    assert.is_true(last < 0.5 * first, string.format("loss %.3f -> %.3f", first, last))
    -- held-out prompts (another stream range): accuracy well above chance
    local feat, target = batch(1000000)
    local acc = mean(model:forward(feat):sign():eq(target))
    assert.is_true(acc > 0.85, "held-out accuracy " .. acc)
  end)
end)
