-- Sweeps: spec loading and checking, grid expansion (stable ids and
-- directories), trainer argv, status from run directories, the summary's
-- statistics, the Slurm scripts and submission (with a stand-in sbatch),
-- and --cell.
local core = require "icl.core"
local fx = require "sweep_fixture"
local specm = require "icl.sweep.spec"
local grid = require "icl.sweep.grid"
local sweep = require "icl.sweep"
local summary = require "icl.sweep.summary"
local status = require "icl.sweep.status"
local slurm = require "icl.sweep.slurm"
local json = require "icl.sweep.json"

local function base(dir, t)
  t = t or {}
  local s = {tasks = {"linear_regression", "majority"}, encodings = {"nope", "rope"}, sizes = {"tiny"}, seeds = 2,
             overrides = {"training.max_steps=4"}}
  for k, v in pairs(t) do s[k] = v end
  return fx.spec(dir, s)
end

describe("sweep spec", function()
  local dir
  before_each(function() dir = fx.tmpdir() end)
  after_each(function() fx.rm(dir) end)

  it("normalises a Lua spec with defaults", function()
    local s = specm.load(base(dir, {overrides = {["training.max_steps"] = 4, ["training.learning_rate"] = 3e-4}}))
    assert.are.equal("spec", s.name) -- from the file name
    assert.are.same({0, 1}, s.seeds)
    assert.are.same({"training.learning_rate=0.0003", "training.max_steps=4"}, s.overrides)
    assert.are.equal(dir .. "/out/spec", s.sweep_dir)
    assert.is_true(s.eval)
    assert.are.equal(1, s.per_gpu)
    assert.is_nil(s.device)
  end)

  it("rejects what it does not understand, naming the problem", function()
    local cases = {
      {{bogus = 1}, "unknown key bogus"},
      {{tasks = {}}, "'tasks' must be a non%-empty list"},
      {{seeds = {1, 1}}, "'seeds' lists 1 twice"},
      {{overrides = {"no-equals"}}, "is not key=value"},
      {{overrides = {"training.seed=3"}}, "must not set training.seed"},
      {{sizes = {"huge"}}, "unknown size 'huge'"},
      {{encodings = {"mamba"}}, "size 'tiny' has no mamba preset"},
      {{slurm = {partitions = "x"}}, "unknown key partitions in slurm"},
      {{device = "tpu"}, "'device' must be cpu, cuda or auto"},
      {{jobs = 0}, "'jobs' must be a positive integer"},
      {{name = "a b"}, "'name' must be"},
    }
    for _, case in ipairs(cases) do
      local path = base(dir, case[1])
      local ok, err = pcall(specm.load, path)
      assert.is_false(ok, "accepted " .. case[2])
      assert.is_truthy(tostring(err):find(case[2]), tostring(err) .. " should say " .. case[2])
    end
  end)

  it("accepts extra size presets", function()
    local s = specm.load(base(dir, {encodings = {"mamba"}, sizes = {"tiny"},
      size_presets = {tiny = {mamba = {"model.hidden_size=64", "model.num_hidden_layers=2"}}}}))
    local cells = grid.expand(s)
    assert.are.same({"model.hidden_size=64", "model.num_hidden_layers=2", "training.max_steps=4", "training.seed=0"},
      cells[1].overrides)
  end)

  it("reads the shipped YAML specs (toy and the paper's grid)", function()
    if not specm.yaml_reader() then
      pending("no YAML reader (icl.yaml or lyaml) in this build")
      return
    end
    local s, cells = sweep.load(fx.root .. "/configs/sweeps/paper.yaml", {check_configs = false})
    assert.are.equal("paper", s.name)
    assert.are.equal(7 * 6 * 1 * 3, #cells)
    assert.are.same({"nope", "alibi", "fire", "dynamic_yarn", "rope", "mamba"}, s.encodings)
    assert.are.equal("cuda", s.device)
    assert.are.equal("gpu:1", s.slurm.gres)
    assert.are.equal("parity/mamba-standard-s2", cells[#cells].id)
    local toy, tcells = sweep.load(fx.root .. "/configs/sweeps/toy.yaml", {check_configs = false})
    assert.are.equal(9, #tcells)
    assert.are.equal(2, toy.jobs)
  end)

  it("gives the same cells for a YAML spec and the same spec in Lua", function()
    if not specm.yaml_reader() then
      pending("no YAML reader in this build")
      return
    end
    local lua_path = base(dir)
    local yaml_path = dir .. "/spec.yaml"
    fx.write(yaml_path, string.format([[
# same as the Lua spec
tasks: [linear_regression, majority]
encodings: [nope, rope]
sizes: [tiny]
seeds: 2
overrides:
  - training.max_steps=4
output_dir: %s/out
config: "%s/cfg/{task}/{encoding}.yaml"
]], dir, dir))
    local _, a = sweep.load(lua_path)
    local _, b = sweep.load(yaml_path)
    assert.are.same(a, b)
  end)
end)

describe("sweep grid", function()
  local dir
  before_each(function() dir = fx.tmpdir() end)
  after_each(function() fx.rm(dir) end)

  it("expands tasks × encodings × sizes × seeds with stable ids and directories", function()
    local path = base(dir, {name = "g", sizes = {"tiny", "small"}})
    local s, cells = sweep.load(path)
    assert.are.equal(2 * 2 * 2 * 2, #cells)
    local ids = {}
    for i, c in ipairs(cells) do
      assert.are.equal(i - 1, c.index)
      ids[#ids + 1] = c.id
    end
    assert.are.same({"linear_regression/nope-tiny-s0", "linear_regression/nope-tiny-s1",
                     "linear_regression/nope-small-s0", "linear_regression/nope-small-s1"},
                    {ids[1], ids[2], ids[3], ids[4]})
    assert.are.equal("majority/rope-small-s1", ids[16])
    assert.are.equal(dir .. "/out/g/majority/rope-small-s1", cells[16].dir)
    assert.are.equal(dir .. "/cfg/majority/rope.yaml", cells[16].config)
    -- a second expansion (a rerun, an array task) means the same cells
    local _, again = sweep.load(path)
    assert.are.same(cells, again)
    assert.are.equal(s.sweep_dir, dir .. "/out/g")
  end)

  it("builds the trainer's argv without a shell", function()
    local s, cells = sweep.load(base(dir, {device = "cpu", eval = false}))
    local argv = grid.train_argv(s, cells[2], {"icl", "train"})
    assert.are.same({"icl", "train", dir .. "/cfg/linear_regression/nope.yaml",
      "--set", "model.hidden_size=256", "--set", "model.num_hidden_layers=2", "--set", "model.num_attention_heads=4",
      "--set", "training.max_steps=4", "--set", "training.seed=1",
      "--run-dir", dir .. "/out/spec/linear_regression/nope-tiny-s1", "--device", "cpu", "--no-eval"}, argv)
  end)

  it("lists every missing config", function()
    local path = base(dir)
    os.remove(dir .. "/cfg/majority/rope.yaml")
    os.remove(dir .. "/cfg/majority/nope.yaml")
    local ok, err = pcall(sweep.load, path)
    assert.is_false(ok)
    assert.is_truthy(err:find("2 config files not found", 1, true))
    assert.is_truthy(err:find(dir .. "/cfg/majority/rope.yaml", 1, true))
  end)

  it("writes Slurm array ranges", function()
    assert.are.equal("0-3,5,7-9", grid.ranges({0, 1, 2, 3, 5, 7, 8, 9}))
    assert.are.equal("4", grid.ranges({4}))
    assert.are.equal("", grid.ranges({}))
  end)
end)

describe("sweep summary", function()
  it("takes the scalar summaries of ood_length.json, not its curves", function()
    assert.are.same({band_in = 0.5, ["nested.x"] = 2},
      summary.scalars({positions = {1, 2}, summary = {band_in = 0.5, curve = {1, 2}, nested = {x = 2}}}))
    assert.are.same({a = 1, ["b.c"] = 3}, summary.scalars({a = 1, mean = {0.1, 0.2}, b = {c = 3}, name = "x"}))
  end)

  it("computes mean and sample std", function()
    local m, s = summary.mean_std({1, 2, 3})
    assert.are.equal(2, m)
    assert.are.equal(1, s)
    m, s = summary.mean_std({5})
    assert.are.equal(5, m)
    assert.is_nil(s)
  end)

  it("encodes JSON with sorted keys and no NaN", function()
    assert.are.equal('{"a":[1, 2.5],"b":{"c":null,"d":"x\\n"}}',
      json.encode({b = {c = 0 / 0, d = "x\n"}, a = {1, 2.5}}))
    assert.are.same({a = {1, 2.5}}, json.decode('{"a": [1, 2.5]}'))
  end)
end)

-- a cell directory in a given state, as a trainer would leave it
local function fake_cell(c, st, extra)
  os.execute("mkdir -p " .. c.dir)
  if st then
    st.host = st.host or core.hostname()
    fx.write(c.dir .. "/status.json", json.encode(st))
  end
  for name, text in pairs(extra or {}) do fx.write(c.dir .. "/" .. name, text) end
end

describe("sweep status", function()
  local dir, sleeper
  before_each(function() dir = fx.tmpdir() end)
  after_each(function()
    if sleeper then core.kill(sleeper, "KILL"); core.waitpid(sleeper); sleeper = nil end
    fx.rm(dir)
  end)

  it("reads each cell's state from its run directory", function()
    local s, cells = sweep.load(base(dir, {seeds = 4}))
    sleeper = core.spawn({"sleep", "30"})
    fake_cell(cells[1], {state = "finished", step = 4, max_steps = 4},
      {["ood_length.json"] = '{"summary": {"band_in": 0.25}}'})
    fake_cell(cells[2], {state = "failed", step = 2, max_steps = 4, error = "NaN at step 2"}, {["train.log"] = "x\n"})
    fake_cell(cells[3], {state = "running", step = 3, max_steps = 4}, {["run.lock"] = "999999999\n"}) -- dead owner
    fake_cell(cells[4], {state = "running", step = 1, max_steps = 4}, {["run.lock"] = sleeper .. "\n"})
    fake_cell(cells[5], nil, {["attempts.jsonl"] = '{"event":"start","attempt":1}\n' ..
      '{"event":"end","attempt":1,"ok":false,"code":3,"error":"exit 3: Segmentation fault"}\n'})
    local col = status.collect(s, cells)
    local states = {}
    for i = 1, 5 do states[i] = col.cells[i].info.state end
    assert.are.same({"finished", "failed", "interrupted", "running", "failed"}, states)
    assert.are.same({finished = 1, failed = 2, interrupted = 1, running = 1, pending = 11}, col.counts)
    assert.are.equal(sleeper, col.cells[4].info.holder.pid)
    assert.are.equal("exit 3: Segmentation fault", col.cells[5].info.error)
    local text = status.render(s, cells, col)
    assert.is_truthy(text:find("finished 1 · running 1 · interrupted 1 · failed 2 · pending 11", 1, true))
    assert.is_truthy(text:find("NaN at step 2", 1, true))
    assert.is_truthy(text:find("log: " .. cells[2].dir .. "/train.log", 1, true))
    assert.is_truthy(text:find("steps 10/64", 1, true))
    local t = status.to_table(s, cells, col)
    assert.is_false(t.done)
    assert.are.equal("failed", t.cells[2].state)
  end)

  it("trusts another host's lock record only while its lock is held", function()
    local s, cells = sweep.load(base(dir, {tasks = {"majority"}, encodings = {"nope"}, seeds = 1}))
    local c = cells[1]
    fake_cell(c, {state = "running", step = 2, max_steps = 4, host = "node7"},
      {["sweep.lock"] = json.encode({pid = 4242, sweep_pid = 4240, host = "node7"})})
    assert.are.equal("interrupted", status.collect(s, cells).cells[1].info.state) -- a stale record
    local lock = assert(core.lock_file(c.dir .. "/sweep.lock")) -- as if node7 held it
    local info = status.collect(s, cells).cells[1].info
    assert.are.equal("running", info.state)
    assert.are.equal("node7", info.holder.host)
    assert.is_true(info.holder.remote)
    lock:release()
  end)

  it("builds summary.md and summary.json as mean ± std over seeds", function()
    local s, cells = sweep.load(base(dir, {seeds = 3, tasks = {"majority"}, encodings = {"nope"}}))
    for i, v in ipairs({1, 2, 3}) do
      fake_cell(cells[i], {state = "finished", step = 4, max_steps = 4},
        {["ood_length.json"] = json.encode({mean = {1, 2}, summary = {band_in = v, effective_length = 10 * v}})})
    end
    local data, md = summary.build(s, cells)
    local g = data.groups[1]
    assert.are.equal(3, g.finished)
    assert.are.equal(2, g.metrics.band_in.mean)
    assert.are.equal(1, g.metrics.band_in.std)
    assert.are.equal(3, g.metrics.band_in.n)
    local text = fx.read(md)
    assert.is_truthy(text:find("| nope | tiny | 3/3 | 0 | 3 | 2 ± 1 | 20 ± 10 |", 1, true), text)
    local j = json.decode(fx.read(dir .. "/out/spec/summary.json"))
    assert.are.equal(20, j.groups[1].metrics.effective_length.mean)
    assert.are.equal(3, #j.cells)
  end)
end)

describe("sweep on Slurm (stand-in sbatch) and --cell", function()
  local dir
  before_each(function() dir = fx.tmpdir() end)
  after_each(function() fx.rm(dir) end)

  local function fake_sbatch()
    local path = dir .. "/sbatch"
    fx.write(path, string.format([[#!/bin/sh
echo "$*" >> %s/sbatch.calls
n=$(wc -l < %s/sbatch.calls)
echo "$((4240 + n))"
]], dir, dir))
    os.execute("chmod +x " .. path)
    return path
  end

  it("reads the job id from sbatch --parsable, past warnings", function()
    assert.are.equal("123", slurm.job_id("123\n"))
    assert.are.equal("77", slurm.job_id("sbatch: warning: something 5\n77;cluster1\n"))
    assert.is_nil(slurm.job_id("sbatch: error: Batch job submission failed\n"))
  end)

  it("writes the array script with the spec's resources", function()
    local s = specm.load(base(dir, {slurm = {partition = "gpu", time = "01:00:00", cpus_per_task = 4, mem = "8G",
                                              gres = "gpu:1", array_limit = 3, extra = {"--account=lab"}}}))
    local text = slurm.array_script(s, {0, 1, 2, 5}, {"lua5.4", "/x/bin/icl"}, {cwd = "/work dir"})
    for _, want in ipairs({"#SBATCH --array=0-2,5%3", "#SBATCH --partition=gpu", "#SBATCH --time=01:00:00",
                           "#SBATCH --cpus-per-task=4", "#SBATCH --mem=8G", "#SBATCH --gres=gpu:1",
                           "#SBATCH --account=lab", "#SBATCH --chdir='/work dir'",
                           "#SBATCH --output=" .. s.sweep_dir .. "/slurm/cell-%a.out",
                           "exec lua5.4 /x/bin/icl sweep " .. s.path .. ' --cell "$SLURM_ARRAY_TASK_ID"'}) do
      assert.is_truthy(text:find(want, 1, true), "missing: " .. want .. "\n" .. text)
    end
  end)

  it("submits only the cells that need work, then a summary job after the array", function()
    local path = base(dir, {slurm = {array_limit = 2}})
    local _, cells = sweep.load(path)
    fake_cell(cells[1], {state = "finished", step = 4, max_steps = 4})
    fake_cell(cells[2], {state = "failed", step = 2, max_steps = 4, error = "boom"})
    local env = {ICL_SWEEP_SBATCH = fake_sbatch()}
    local code, out = fx.run(dir, {path, "--slurm", "--dry-run"}, env)
    assert.are.equal(0, code, out)
    assert.is_nil(fx.read(dir .. "/sbatch.calls"))
    code, out = fx.run(dir, {path, "--slurm"}, env)
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("submitted array job 4241 (tasks 2-7, at most 2 at once), summary job 4242", 1, true),
      out)
    local calls = fx.read(dir .. "/sbatch.calls")
    assert.is_truthy(calls:find("--parsable " .. dir .. "/out/spec/slurm/sweep.sbatch", 1, true), calls)
    assert.is_truthy(calls:find("--dependency=afterany:4241 " .. dir .. "/out/spec/slurm/summary.sbatch", 1, true))
    assert.is_truthy(fx.read(dir .. "/out/spec/slurm/sweep.sbatch"):find("#SBATCH --array=2-7%2", 1, true))
    assert.is_truthy(fx.read(dir .. "/out/spec/grid.json"))
    code, out = fx.run(dir, {path, "--slurm", "--retry-failed"}, env)
    assert.are.equal(0, code, out)
    assert.is_truthy(fx.read(dir .. "/out/spec/slurm/sweep.sbatch"):find("#SBATCH --array=1-7%2", 1, true))
    local st = fx.run(dir, {path, "--status"}, env)
    assert.are.equal(0, st)
  end)

  it("--cell trains exactly one cell, once", function()
    local path = base(dir)
    local code, out = fx.run(dir, {path, "--cell", "2"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("cell 2 linear_regression/rope-tiny-s0: finished", 1, true), out)
    local _, cells = sweep.load(path)
    for i, c in ipairs(cells) do
      local starts, finishes = fx.trainer_log(c.dir)
      assert.are.equal(i == 3 and 1 or 0, finishes, c.id)
      assert.are.equal(i == 3 and 1 or 0, #starts, c.id)
    end
    code, out = fx.run(dir, {path, "--cell", "2"})
    assert.are.equal(0, code)
    assert.is_truthy(out:find("already finished", 1, true), out)
    code, out = fx.run(dir, {path, "--cell", "99"})
    assert.are_not.equal(0, code)
    assert.is_truthy(out:find("the grid has cells 0..7", 1, true), out)
    code, out = fx.run(dir, {path, "--cell", "3"}, {FAKE_FAIL = "rope-tiny-s1"})
    assert.are.equal(1, code, out)
    assert.is_truthy(out:find("FAILED: training stopped: fake failure at step 2", 1, true), out)
  end)

  it("group: seeds: one array task per group of seeds; --cell trains its group in one process", function()
    local path = base(dir, {group = "seeds", slurm = {array_limit = 2}})
    local _, cells = sweep.load(path)
    fake_cell(cells[6], {state = "finished", step = 4, max_steps = 4}) -- majority/nope-tiny-s1
    local env = {ICL_SWEEP_SBATCH = fake_sbatch()}
    local code, out = fx.run(dir, {path, "--slurm"}, env)
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("7 of 8 cells to submit as one job array of 4 tasks (group: seeds", 1, true), out)
    assert.is_truthy(fx.read(dir .. "/out/spec/slurm/sweep.sbatch"):find("#SBATCH --array=0,2,4,6%2", 1, true))
    local groups = require("icl.sweep.json").decode(fx.read(dir .. "/out/spec/slurm/groups.json")).groups
    assert.are.same({["0"] = {0, 1}, ["2"] = {2, 3}, ["4"] = {4}, ["6"] = {6, 7}}, groups)
    code, out = fx.run(dir, {path, "--cell", "2"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("cell 3 linear_regression/rope-tiny-s1: started (pid", 1, true), out)
    assert.is_truthy(out:find("one process for 2 cells)", 1, true), out)
    assert.is_truthy(out:find("cell 2 linear_regression/rope-tiny-s0: finished", 1, true), out)
    assert.is_truthy(out:find("cell 3 linear_regression/rope-tiny-s1: finished", 1, true), out)
    for i, c in ipairs(cells) do
      local _, finishes = fx.trainer_log(c.dir)
      assert.are.equal((i == 3 or i == 4) and 1 or 0, finishes, c.id)
    end
    code, out = fx.run(dir, {path, "--cell", "2"})
    assert.are.equal(0, code, out)
    assert.is_truthy(out:find("cell 2 linear_regression/rope-tiny-s0: already finished", 1, true), out)
    assert.is_truthy(out:find("cell 3 linear_regression/rope-tiny-s1: already finished", 1, true), out)
    -- without group, no groups.json is left to mislead a later --cell
    fx.run(dir, {base(dir, {slurm = {array_limit = 2}}), "--slurm"}, env)
    assert.is_nil(fx.read(dir .. "/out/spec/slurm/groups.json"))
  end)

  it("--cell refuses a grid that changed since submission", function()
    local path = base(dir)
    local code, out = fx.run(dir, {path, "--slurm", "--dry-run"}, {ICL_SWEEP_SBATCH = fake_sbatch()})
    assert.are.equal(0, code, out)
    base(dir, {encodings = {"rope", "nope"}}) -- reorders the cells
    code, out = fx.run(dir, {path, "--cell", "0"})
    assert.are_not.equal(0, code)
    assert.is_truthy(out:find("the spec changed since grid.json was written", 1, true), out)
  end)
end)
