-- Every file of the published configuration tree loads: task configs fully validated, fragments
-- validated as the section their directory names (sweep lists allowed).
local config = require "icl.config"
local yaml = require "icl.yaml"
local U = require "spec_util"

local root = U.published_dir()

describe("the published config tree", function()
  if not root then
    it("is not on this machine", function() pending("published-configs not found (set ICL_PUBLISHED_CONFIGS)") end)
    return
  end
  local files = U.walk(root)

  it("has the files we expect", function()
    assert.is_true(#files >= 120, "found " .. #files)
  end)

  for _, rel in ipairs(files) do
    it("loads " .. rel, function()
      local path = root .. "/" .. rel
      local raw = yaml.load(path)
      if rel:match("^tasks/") or rel == "toy_task.yaml" then
        local run = config.load(path)
        local fam = run.model.family
        assert.is_true(fam == "Llama2" or fam == "Mamba" or fam == "GPT2")
        if fam == "GPT2" then assert.is_false(run._meta.implemented) end
        assert.is_string(run._meta.pe)
        -- the dumped run loads back to the same run
        local again = config.load(yaml.parse(config.dump(run)))
        local a, b = config.deepcopy(run), config.deepcopy(again)
        a._meta, b._meta = nil, nil
        assert.is_true(U.deep_equal(a, b))
      elseif rel:match("^base_model/") then
        config.validate_section("model", raw, {allow_sweep = true})
      elseif rel:match("^patch/") then
        config.validate_section("patch", raw)
      elseif rel:match("^hyperparams/curriculum/") then
        config.validate_section("curriculum", raw)
      elseif rel:match("^hyperparams/training_args") then
        local t = config.validate_section("training", raw)
        assert.are.equal(3e-4, t.learning_rate)
        assert.are.equal(0.0, t.weight_decay)
      elseif rel:match("^logging/") then
        config.validate_section("wandb", raw)
      elseif rel:match("^sweep/") then
        config.load_sweep(path)
      else
        error("no rule for " .. rel)
      end
    end)
  end
end)
