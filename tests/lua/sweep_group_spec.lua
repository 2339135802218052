-- Sweeps with `group: seeds` (docs/sweeps.md, "Grouped cells"): the seeds of one task, encoding and
-- size train in one `icl train --seeds` process (the real trainer, on the runner specs' tiny model);
-- every cell keeps its own directory, lock, attempt records and status, and ends as the same run
-- trained alone with --threads 1.
local R = require "runner_util"
local fx = require "sweep_fixture"
local json = require "icl.json"
local U = R.U

local function attempts(dir)
  local out = {}
  for line in (U.read(dir .. "/attempts.jsonl") or ""):gmatch("[^\n]+") do out[#out + 1] = json.decode(line) end
  return out
end

describe("sweep with group: seeds", function()
  local dir, cfg, spec, cells
  setup(function()
    dir = U.tmpdir()
    -- the tiny model's config as the template's linear_regression/nope.yaml
    assert(os.execute("mkdir -p " .. dir .. "/real/linear_regression"))
    cfg = R.config(dir .. "/real/linear_regression", {max_steps = 20, save_steps = 10, save_total_limit = 3}, "nope")
    spec = fx.spec(dir, {name = "g", tasks = {"linear_regression"}, encodings = {"nope"}, sizes = {"mini"},
                         seeds = {0, 1, 2}, config = dir .. "/real/{task}/{encoding}.yaml", size_presets = {mini = {llama = {"model.hidden_size=16"}}},
                         device = "cpu", eval = false, jobs = 1, group = "seeds"})
    cells = {}
    for s = 0, 2 do cells[s] = string.format("%s/out/g/linear_regression/nope-mini-s%d", dir, s) end
  end)
  teardown(function() U.rmrf(dir) end)

  it("--dry-run shows one trainer for the three seeds", function()
    local code, out = R.icl({"sweep", spec, "--dry-run"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("group of 3:", 1, true), out)
    assert.is_truthy(out:find("--seeds 0,1,2 --run-dir " .. cells[0] .. " --run-dir " .. cells[1], 1, true), out)
    assert.is_nil(out:find("training.seed=", 1, true), out)
  end)

  it("trains the seeds in one process; each cell is the run trained alone", function()
    local code, out = R.icl({"sweep", spec}, {timeout = 300})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("in one process", 1, true), out)
    local pid
    for s = 0, 2 do
      assert.are.equal("finished", require("icl.rundir").read_status(cells[s]).state)
      local a = attempts(cells[s])
      assert.are.equal(2, #a, cells[s])
      assert.are.equal("start", a[1].event)
      assert.are.equal(3, #a[1].group)
      assert.is_true(a[2].ok)
      pid = pid or a[1].pid
      assert.are.equal(pid, a[1].pid)
      assert.are.equal(3, R.records(cells[s], "start")[1].group)
    end
    assert.is_truthy(U.read(cells[1] .. "/train.log"):find("its output is in " .. cells[0] .. "/train.log", 1, true))
    local alone = dir .. "/alone1"
    local c2, o2 = R.icl({"train", cfg, "--set", "model.hidden_size=16", "--set", "training.seed=1", "--run-dir",
                          alone, "--threads", "1", "--no-eval"})
    assert.are.equal(0, c2, o2)
    for _, step in ipairs({10, 20}) do
      local same, why = R.same_tensors(R.final_checkpoint(alone, step), R.final_checkpoint(cells[1], step))
      assert.is_true(same, why)
    end
    -- a rerun finds every cell finished and starts nothing
    code, out = R.icl({"sweep", spec})
    assert.are.equal(0, code, out)
    assert.is_nil(out:find("start ", 1, true), out)
    assert.are.equal(2, #attempts(cells[2]))
  end)

  it("refuses an unknown group value", function()
    local bad = fx.spec(dir, {name = "b", tasks = {"linear_regression"}, encodings = {"nope"}, sizes = {"mini"},
                              seeds = {0}, config = dir .. "/real/{task}/{encoding}.yaml", size_presets = {mini = {llama = {"model.hidden_size=16"}}},
                              group = "encodings"}, "bad")
    local code, out = R.icl({"sweep", bad, "--dry-run"})
    assert.are.equal(1, code)
    assert.is_truthy(out:find("'group' must be seeds or none", 1, true), out)
  end)
end)
