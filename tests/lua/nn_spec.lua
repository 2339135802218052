-- Modules, losses, optimiser and the gradient checker from Lua.
local icl = require "icl"
local nn, optim = icl.nn, icl.optim

-- loss = sum(module(x) * R); d loss / d output = R
local function check_module(m, shape_in, shape_out, tol)
  local x = icl.randn(shape_in, {seed = 1})
  local r = icl.randn(shape_out, {seed = 2})
  m:zero_grad()
  m:forward(x)
  local gx = m:backward(x, r)
  local function f() return (m:forward(x) * r):sum():item() end
  local rep = icl.gradcheck(f, x, gx)
  assert.is_true(rep.max_rel < (tol or 1e-3), m:kind() .. " input grad rel err " .. rep.max_rel)
  for _, p in ipairs(m:parameters()) do
    local pr = icl.gradcheck(f, p.value, p.grad)
    assert.is_true(pr.max_rel < (tol or 1e-3), m:kind() .. " " .. p.name .. " rel err " .. pr.max_rel)
  end
end

describe("C modules pass finite-difference checks from Lua", function()
  it("Linear", function() check_module(nn.Linear(5, 4, {seed = 1}), {3, 5}, {3, 4}) end)
  it("Linear without bias", function() check_module(nn.Linear(5, 4, {bias = false}), {2, 3, 5}, {2, 3, 4}) end)
  it("RMSNorm", function() check_module(nn.RMSNorm(6), {4, 6}, {4, 6}) end)
  it("SiLU", function() check_module(nn.SiLU(), {4, 3}, {4, 3}) end)
  it("SwiGLU", function() check_module(nn.SwiGLU(4, 8, {seed = 3}), {5, 4}, {5, 4}) end)
  it("Sequential", function()
    check_module(nn.Sequential{nn.Linear(3, 6), nn.RMSNorm(6), nn.SwiGLU(6, 12)}, {4, 3}, {4, 6})
  end)
end)

describe("a Lua-defined module", function()
  -- y = x * scale (per feature), written with tensor ops
  local function Scale(d)
    return nn.Module{
      name = "Scale",
      params = {{name = "scale", shape = {d}, init = function(t) t:copy(icl.randn({d}, {seed = 5})) end}},
      forward = function(self, x) return x * self.p.scale end,
      backward = function(self, x, gy)
        self.g.scale:add_((gy * x):reshape({-1, d}):sum(1))
        return gy * self.p.scale
      end,
    }
  end
  it("follows the protocol and checks out", function()
    check_module(Scale(4), {3, 4}, {3, 4})
  end)
  it("sits in a Sequential with C modules and trains in one flat buffer", function()
    local model = nn.Sequential{nn.Linear(2, 8, {seed = 1}), Scale(8), nn.SiLU(), nn.Linear(8, 1, {seed = 2})}
    local value, grad = nn.flatten(model)
    assert.equal(model:numel(), value:numel())
    local opt = optim.AdamW(value, grad, {lr = 0.02, weight_decay = 0})
    local x = icl.randn({64, 2}, {seed = 7})
    local y = x:narrow(2, 1, 1) * 2 - x:narrow(2, 2, 1)
    local crit = nn.MSELoss()
    local first, last
    for step = 1, 150 do
      model:zero_grad()
      local pred = model:forward(x)
      local loss = crit:forward(pred, y):item()
      model:backward(x, crit:backward(pred, y))
      opt:step()
      first = first or loss
      last = loss
    end
    assert.is_true(last < 0.05 * first, ("loss %g -> %g"):format(first, last))
  end)
end)

describe("losses", function()
  it("mse and bce values and gradients", function()
    local p = icl.tensor{0.5, -1, 2}
    local y = icl.tensor{1, -1, 1}
    local l, g = icl.nn.mse_loss(p, y)
    assert.is_true(math.abs(l:item() - (0.25 + 0 + 1) / 3) < 1e-6)
    assert.is_true(math.abs(g:totable()[3] - 2 / 3) < 1e-6)
    local b = icl.nn.bce_with_logits_loss(p, y):item()
    local want = (math.log(1 + math.exp(-0.5)) + math.log(1 + math.exp(-1)) + math.log(1 + math.exp(-2))) / 3
    assert.is_true(math.abs(b - want) < 1e-6)
    assert.has_error(function() icl.nn.mse_loss(p, icl.zeros{2}) end)
  end)
end)

describe("AdamW", function()
  it("schedule and clipping are reported", function()
    local v, g = icl.ones{10}, icl.full({10}, 3)
    local opt = optim.AdamW(v, g, {lr = 1, schedule = "linear", warmup = 2, total_steps = 4, max_grad_norm = 1})
    opt:step()
    local s = opt:scalars()
    assert.equal(0, s.lr) -- HF's linear schedule: step 0 has lr 0
    assert.equal(1, s.steps)
    assert.is_true(math.abs(s.grad_norm - math.sqrt(90)) < 1e-4)
    assert.is_true(math.abs(s.clip - 1 / math.sqrt(90)) < 1e-6)
    opt:step()
    assert.equal(0.5, opt:scalars().lr)
  end)
  it("rejects unknown options", function()
    local ok, err = pcall(optim.AdamW, icl.zeros{2}, icl.zeros{2}, {learning_rate = 1})
    assert.is_false(ok)
    assert.matches("unknown option 'learning_rate'", err)
  end)
end)
