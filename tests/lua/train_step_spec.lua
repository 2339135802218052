-- The training step in C (models/train_step.h) as the runner uses it: on the CPU a run through
-- core._train_step is the step-by-step Lua loop bit for bit (checkpoint tensors, every logged
-- loss, lr, gradient norm), also across a curriculum stage change and a resume; the binding's
-- errors; the message for --device cuda where there is no device.
local icl = require "icl"
local core = require "icl.core"
local train = require "icl.train"
local R = require "runner_util"
local U = R.U

local function run_here(run, opts)
  local f, _, close = R.capture()
  opts.out, opts.tty, opts.evaluate = f, false, false
  local res = train.run(run, opts)
  close()
  return res
end

describe("training step in C", function()
  local dir
  setup(function() dir = U.tmpdir() end)
  teardown(function() U.rmrf(dir) end)

  local function same_runs(a, b, step)
    local ok, why = R.same_tensors(R.final_checkpoint(a, step), R.final_checkpoint(b, step))
    assert.is_true(ok, why)
    assert.are.same(R.train_values(a), R.train_values(b))
  end

  for _, task in ipairs({"linear_regression", "sparse_parity"}) do
    it("equals the Lua loop bit for bit on the CPU (" .. task .. ", curriculum change at step 20)", function()
      local run = R.run(dir, {task = task, save_steps = 20})
      -- count the C steps made, to know that the first run really went through one
      local make, made = train.make_step, 0
      train.make_step = function(...)
        local st = make(...)
        if st then made = made + 1 end
        return st
      end
      local ok, a = pcall(run_here, run, {run_dir = dir .. "/c_" .. task})
      local ok2, b = pcall(run_here, run, {run_dir = dir .. "/lua_" .. task, train_step = false})
      train.make_step = make
      assert(ok, a)
      assert(ok2, b)
      assert.are.equal(1, made)
      same_runs(a.run_dir, b.run_dir, 40)
    end)
  end

  it("resumes through the C step as the loop does", function()
    local short = R.run(dir, {max_steps = 20, save_steps = 10})
    local longer = R.run(dir, {max_steps = 40, save_steps = 10}, "longer")
    for _, way in ipairs({"c", "lua"}) do
      local o = way == "lua" and false or nil
      run_here(short, {run_dir = dir .. "/r_" .. way, train_step = o})
      run_here(longer, {run_dir = dir .. "/r_" .. way, resume = true, train_step = o})
    end
    same_runs(dir .. "/r_c", dir .. "/r_lua", 40)
  end)

  it("is made only for built-in tasks", function()
    local run = R.run(dir, {})
    local B = train.build(run, {device = "cpu"})
    assert.is_not_nil(train.make_step(run, B.model, B.opt, B.task, {}))
    assert.is_nil(train.make_step(run, B.model, B.opt, B.task, {train_step = false}))
    assert.is_nil(train.make_step(run, B.model, B.opt, {builtin = false}, {}))
  end)

  it("checks its arguments", function()
    local run = R.run(dir, {})
    local B = train.build(run, {device = "cpu"})
    local st = train.make_step(run, B.model, B.opt, B.task, {})
    assert.has_error(function() st:run(10, 2) end) -- more points than the step was made for
    assert.has_error(function() st:run(5, 4) end)  -- d_t beyond n_dims
    st:run(5, 2)
    assert.is_true(st:loss(0) == st:loss(0) and st:loss(0) > 0)
    local s = st:stats()
    assert.are.equal(1, s.eager)
    assert.is_false(s.graphs)
    st:free()
    assert.has_error(function() st:run(5, 2) end, nil)
    assert.has_error(function() core._train_step(B.model, B.opt, B.task._sampler, {batch = 0, max_points = 5}) end)
  end)

  it("says why there is no CUDA device", function()
    if icl.cuda_available() then return end
    local msg = train.no_cuda_message()
    assert.truthy(msg:find("^no CUDA device: "))
    assert.truthy(msg:find("no CUDA device is available", 1, true))
    assert.truthy(msg:find("--device cpu", 1, true))
    local ok, err = pcall(train.device, R.run(dir, {}), "cuda")
    assert.is_false(ok)
    assert.are.equal(msg, err)
  end)
end)
