local icl = require "icl"
local config = require "icl.config"
local yaml = require "icl.yaml"
local U = require "spec_util"

local CONFIGS = U.source_dir .. "/configs"

local function section_of(rel)
  if rel:match("^base_model/") then return "model" end
  if rel:match("^patch/") then return "patch" end
  if rel:match("^hyperparams/curriculum/") then return "curriculum" end
  if rel:match("^hyperparams/training_args") then return "training" end
  if rel:match("^hyperparams/eval") then return "eval" end
  if rel:match("^logging/") then return "wandb" end
  if rel:match("^sweep/") then return "sweep" end
  if rel:match("^sweeps/") then return "sweep_spec" end
  return "run"
end

--- load one file of a config tree the way its place in the tree says
local function load_any(root, rel)
  local path = root .. "/" .. rel
  local kind = section_of(rel)
  if kind == "run" then return config.load(path), kind end
  if kind == "sweep" then return config.load_sweep(path), kind end
  if kind == "sweep_spec" then return require("icl.sweep.spec").load(path), kind end
  return config.validate_section(kind, yaml.load(path), {allow_sweep = true, name = path}), kind
end
config._load_any = load_any

describe("icl.config", function()
  local dir
  before_each(function()
    dir = U.tmpdir()
    icl.io.mkdir_p(dir .. "/sub")
    U.write(dir .. "/sub/patch.yaml", "name: alibi\nrope_scaling:\n  type: alibi\n")
    U.write(dir .. "/base.yaml", string.format([[
model:
  !include %s/base_model/llama/standard.yaml
patch:
  !include sub/patch.yaml
task:
  data: gaussian
  name: linear_regression
  curriculum:
    !include %s/hyperparams/curriculum/dim-16_pts-50.yaml
training:
  max_steps: 100
]], CONFIGS, CONFIGS))
  end)
  after_each(function() U.rmrf(dir) end)

  local function with(text)
    U.write(dir .. "/t.yaml", text)
    return dir .. "/t.yaml"
  end

  it("loads every file of configs/", function()
    local files = U.walk(CONFIGS)
    assert.is_true(#files >= 120)
    local runs = 0
    for _, rel in ipairs(files) do
      local ok, res = pcall(load_any, CONFIGS, rel)
      assert.is_true(ok, rel .. ": " .. tostring(res))
      if section_of(rel) == "run" then
        runs = runs + 1
        assert.are.equal(0, #res._meta.warnings, rel .. ": " .. table.concat(res._meta.warnings, "; "))
      end
    end
    assert.is_true(runs >= 14 * 7 + 2)
  end)

  it("gives every task config the paper preset", function()
    local S = config.schema
    for _, task in ipairs(S.TASKS) do
      for _, pe in ipairs({"alibi", "dynamic_yarn", "fire", "nope", "rope", "yarn", "mamba"}) do
        local run = config.load(string.format("%s/tasks/%s/%s.yaml", CONFIGS, task, pe))
        assert.are.equal(task, run.task.name)
        assert.are.same({start = 4, ["end"] = 16, increment = 1, interval = 2000}, run.task.curriculum.dims)
        assert.are.same({start = 10, ["end"] = 50, increment = 2, interval = 2000}, run.task.curriculum.points)
        assert.are.equal(16, run.task.n_dims)
        local want = ({dynamic_yarn = "dynamic-yarn", mamba = "none"})[pe] or pe
        assert.are.equal(want, run._meta.pe)
        if pe ~= "mamba" then assert.are.same({100}, run.model.max_length) end
      end
    end
    local paper = config.load(CONFIGS .. "/presets/paper.yaml")
    assert.are.equal(0.0, paper._meta.optimizer.weight_decay)
    assert.are.equal(1.0, paper._meta.optimizer.max_grad_norm)
    assert.are.equal(1500, paper._meta.optimizer.warmup_steps)
    local toy = config.load(CONFIGS .. "/toy_task.yaml")
    assert.are.equal(64, toy.model.hidden_size)
    assert.is_true(toy.training.max_steps <= 6000) -- a few minutes on 2 cores
  end)

  it("applies faithful_code to the optimiser settings", function()
    local run = config.load(dir .. "/base.yaml", {overrides = {"training.faithful_code=true"}})
    assert.are.equal(0.01, run._meta.optimizer.weight_decay)
    assert.are.equal(0.0, run._meta.optimizer.max_grad_norm)
    assert.are.equal(1e-8, run._meta.optimizer.eps)
    assert.are.same(run._meta.optimizer, config.optimizer(run))
  end)

  it("names file, line, key and choices for a bad choice", function()
    local p = with("patch:\n  name: x\n  rope_scaling:\n    type: alibii\n")
    U.write(dir .. "/t2.yaml", U.read(dir .. "/base.yaml"):gsub("!include sub/patch.yaml", "!include t.yaml"))
    local e = U.error_of(config.load, dir .. "/t2.yaml")
    assert.truthy(e:find(p .. ":4: patch.patch: unknown key", 1, true) or e:find(p, 1, true), e)
    U.write(dir .. "/sub/patch.yaml", "name: alibi\nrope_scaling:\n  type: alibii\n")
    e = U.error_of(config.load, dir .. "/base.yaml")
    assert.are.equal(dir .. "/sub/patch.yaml:3: patch.rope_scaling.type: 'alibii' is not one of: rope, nope, alibi, fire, " ..
                     "yarn, dynamic-yarn, linear, dynamic, none (did you mean 'alibi'?)", e)
  end)

  it("suggests the closest key for a typo and lists valid keys", function()
    U.write(dir .. "/t.yaml", U.read(dir .. "/base.yaml") .. "  learning_rat: 0.1\n")
    local e = U.error_of(config.load, dir .. "/t.yaml")
    assert.truthy(e:find(dir .. "/t.yaml:12: training.learning_rat: unknown key (did you mean 'learning_rate'?)", 1, true), e)
    assert.truthy(e:find("valid keys: adam_beta1", 1, true))
    e = U.error_of(config.load, with("modle: {}\n"))
    assert.truthy(e:find("t.yaml:1: modle: unknown section (did you mean 'model'?)", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"model.hiden_size=3"}})
    assert.truthy(e:find("--set model.hiden_size=3: model.hiden_size: unknown key (did you mean 'hidden_size'?)", 1, true), e)
  end)

  it("reports wrong types and out-of-range values", function()
    local e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"training.max_steps=lots"}})
    assert.truthy(e:find("training.max_steps: expected an integer, got string 'lots'", 1, true), e)
    U.write(dir .. "/t.yaml", U.read(dir .. "/base.yaml") .. "  warmup_ratio: 1.5\n  faithful_code: 1\n")
    e = U.error_of(config.load, dir .. "/t.yaml")
    assert.truthy(e:find("t.yaml:13: training.faithful_code: expected true or false, got integer 1", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"training.warmup_ratio=1.5"}})
    assert.truthy(e:find("above the maximum", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"model.num_attention_heads=7"}})
    assert.truthy(e:find("do not divide", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"task.data=boolean"}})
    assert.truthy(e:find("does not match task linear_regression", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"task.n_dims=8"}})
    assert.truthy(e:find("below the curriculum", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"model.max_length=[inf]"}})
    assert.truthy(e:find("only valid for Mamba", 1, true), e)
  end)

  it("reports a missing include, an include cycle and a syntax error with file and line", function()
    U.write(dir .. "/t.yaml", (U.read(dir .. "/base.yaml"):gsub("sub/patch.yaml", "sub/nope.yaml")))
    local e = U.error_of(config.load, dir .. "/t.yaml")
    assert.truthy(e:find(dir .. "/t.yaml:4: patch: !include 'sub/nope.yaml': cannot open", 1, true), e)
    U.write(dir .. "/sub/patch.yaml", "name: alibi\nrope_scaling: !include ../base.yaml\n")
    e = U.error_of(config.load, dir .. "/base.yaml")
    assert.truthy(e:find(dir .. "/sub/patch.yaml:2: patch.rope_scaling: !include '../base.yaml' creates an include cycle", 1, true), e)
    U.write(dir .. "/sub/patch.yaml", "name: alibi\nrope_scaling:\n  type: [alibi\n")
    e = U.error_of(config.load, dir .. "/base.yaml")
    assert.truthy(e:find(dir .. "/sub/patch.yaml:4", 1, true) and e:find("syntax error", 1, true), e)
    e = U.error_of(config.load, dir .. "/missing.yaml")
    assert.truthy(e:find("missing.yaml", 1, true), e)
  end)

  it("applies --set overrides before validation", function()
    local run = config.load(dir .. "/base.yaml", {overrides = {"training.max_steps=7", "patch.rope_scaling.type=fire",
                                                               "patch.fire.mlp_width=max_length", "model.max_length=[64, 128]",
                                                               "eval.settings=[standard]", "wandb.entity=me"}})
    assert.are.equal(7, run.training.max_steps)
    assert.are.equal("fire", run._meta.pe)
    assert.are.equal("max_length", run.patch.fire.mlp_width)
    assert.are.same({64, 128}, run.model.max_length)
    assert.are.same({"standard"}, run.eval.settings)
    assert.are.equal("me", run.wandb.entity)
    assert.are.equal("--set training.max_steps=7", config.where(run, "training.max_steps"))
    assert.are.equal(dir .. "/sub/patch.yaml:1", config.where(run, "patch.name"))
    local e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"training"}})
    assert.truthy(e:find("expected key.path=value", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"training.max_steps.x=1"}})
    assert.truthy(e:find("not a mapping", 1, true), e)
    e = U.error_of(config.load, dir .. "/base.yaml", {overrides = {"training.max_steps=[1"}})
    assert.truthy(e:find("not valid YAML", 1, true), e)
    -- a config without a patch section gets one from an override
    local r2 = config.load(CONFIGS .. "/tasks/parity/rope.yaml", {overrides = {"patch.rope_scaling.type=nope"}})
    assert.are.equal("nope", r2._meta.pe)
  end)

  it("accepts Lua tables, and the run table itself", function()
    local t = {model = {family = "Llama2", hidden_size = 64, num_hidden_layers = 2, num_attention_heads = 4},
               task = {name = "majority", curriculum = {dims = {start = 5, ["end"] = 5, increment = 0, interval = 1},
                                                         points = {start = 11, ["end"] = 11, increment = 0, interval = 1}}}}
    local run = config.load(t)
    assert.are.equal("boolean", run.task.data)
    assert.are.same({22}, run.model.max_length)
    assert.are.equal(256, run.model.intermediate_size)
    assert.is_nil(t.patch) -- the caller's table is not modified
    local again = config.load(run)
    local a, b = config.deepcopy(run), config.deepcopy(again)
    a._meta, b._meta = nil, nil
    assert.is_true(U.deep_equal(a, b))
    local e = U.error_of(config.load, {task = t.task, model = {family = "Llama2"}}, {name = "my table"})
    assert.truthy(e:find("my table: model.hidden_size: missing (required)", 1, true), e)
    e = U.error_of(config.load, t, {overides = {}})
    assert.truthy(e:find("unknown option", 1, true), e)
  end)

  it("dumps a run that loads back to the same run", function()
    for _, f in ipairs({"/presets/paper.yaml", "/toy_task.yaml", "/tasks/cnf/mamba.yaml", "/tasks/majority/alibi.yaml"}) do
      local run = config.load(CONFIGS .. f, {overrides = {"training.seed=5", "wandb.entity='x y: z'"}})
      local text = config.dump(run)
      U.write(dir .. "/dumped.yaml", text)
      local back = config.load(dir .. "/dumped.yaml")
      local a, b = config.deepcopy(run), config.deepcopy(back)
      a._meta, b._meta = nil, nil
      local ok, why = U.deep_equal(a, b)
      assert.is_true(ok, f .. ": " .. tostring(why))
      assert.are.equal(text:gsub("^#[^\n]*\n", ""), config.dump(back):gsub("^#[^\n]*\n", ""))
    end
  end)

  it("marks GPT-2 as not buildable and handles sweep lists", function()
    local gpt = config.load(with(string.format("model: !include %s/base_model/gpt/standard.yaml\ntask:\n  name: linear_regression\n" ..
                                               "  curriculum: !include %s/hyperparams/curriculum/dim-20_pts-50.yaml\n", CONFIGS, CONFIGS)))
    assert.is_false(gpt._meta.implemented)
    local e = U.error_of(config.check_buildable, gpt)
    assert.truthy(e:find("GPT-2 backbone not implemented; the study reports Llama only", 1, true), e)
    local p = with(string.format("model: !include %s/base_model/llama/llama.yaml\ntask:\n  name: parity\n" ..
                                 "  curriculum: !include %s/hyperparams/curriculum/dim-20_pts-50.yaml\n", CONFIGS, CONFIGS))
    e = U.error_of(config.load, p)
    assert.truthy(e:find("model.hidden_size: is a list of sweep choices [256, 512]", 1, true), e)
    local sweep = config.load(p, {allow_sweep = true})
    assert.are.same({"model.hidden_size", "model.num_attention_heads", "model.num_hidden_layers", "model.rope_scaling.type"}, sweep._meta.sweep)
    assert.truthy(U.error_of(config.check_buildable, sweep):find("expand", 1, true))
    local runs = config.expand(config.load(p, {allow_sweep = true, overrides = {"model.num_attention_heads=4"}}))
    assert.are.equal(2 * 3 * 3, #runs)
    for _, r in ipairs(runs) do
      assert.are.equal(0, #r._meta.sweep)
      assert.are.equal(4 * r.model.hidden_size, r.model.intermediate_size)
    end
  end)

  it("documents every schema key in docs/config.md", function()
    local doc = U.read(U.source_dir .. "/docs/config.md")
    local S = config.schema
    local missing = {}
    local function walk(prefix, fields)
      for k, f in pairs(fields) do
        local p = prefix .. k
        if not doc:find("`" .. p .. "`", 1, true) then missing[#missing + 1] = p end
        if f.type == "map" then walk(p .. ".", f.fields) end
      end
    end
    walk("model.", S.model_common)
    walk("model.", S.model_llama)
    walk("model.", S.model_mamba)
    walk("model.", S.model_gpt2)
    walk("patch.", S.patch.fields)
    walk("task.", S.task.fields)
    walk("training.", S.training.fields)
    walk("wandb.", S.wandb.fields)
    walk("eval.", S.eval.fields)
    walk("sweep.", S.sweep.fields)
    if not doc:find("`output_dir`", 1, true) then missing[#missing + 1] = "output_dir" end
    table.sort(missing)
    assert.are.same({}, missing)
  end)
end)
