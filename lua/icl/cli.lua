--- The `icl` command: train, eval, attn, atk, info, compare, sweep.
-- Each subcommand is a thin layer over a Lua module, so anything the CLI
-- does can be scripted the same way.
local argparse = require "argparse"

local cli = {}

local function device_arg(cmd)
  cmd:option("--device", "cpu or cuda (default: cuda when a GPU is present, else cpu).")
     :choices({"cpu", "cuda"})
  cmd:option("--threads", "CPU threads (default: all cores).")
     :convert(tonumber)
end

local function parser()
  local p = argparse("icl", "In-context function learning: train, evaluate and analyse models.")
  p:command_target("command")
  p:require_command(true)

  local tr = p:command("train", "Train a model from a config, or resume a run (docs/runner.md).")
  tr:argument("config", "Config file (YAML).")
    :args("?")
  tr:option("--set", "Override a config value, e.g. --set training.max_steps=100 (repeatable). With --resume " ..
            "only keys that keep the run the same run: training.max_steps, the logging/eval/save cadence, eval.*.")
    :count("*")
  tr:option("--resume", "Continue the run in this directory from its newest valid checkpoint, bit for bit. " ..
            "Repeated: the runs of a group (--seeds) continue together.")
    :argname("<run_dir>"):count("*")
  tr:option("--run-dir", "Write the run here instead of models/<task>/<dims>/<date>/<uid>/ (an existing run " ..
            "directory with the same config is resumed). With --seeds: once per seed, in order.")
    :count("*")
  tr:option("--seeds", "Train these seeds of the config (e.g. 0,1,2) as one group in this process: one run " ..
            "directory each, stepping together (docs/runner.md, \"Grouped runs\").")
  tr:flag("--no-eval", "Skip the evaluation after training.")
  tr:option("--progress-every", "Seconds between progress lines when stderr is not a terminal (default 10).")
    :convert(tonumber)
  device_arg(tr)

  local ev = p:command("eval", "OOD-length evaluation of a trained run (standard.png, ood_length.png, JSON).")
  ev:argument("run", "Run directory.")
  ev:option("--n-prompts", "Prompts per setting (default 1280).")
    :convert(tonumber)
  ev:option("--ood-factor", "Evaluate up to this multiple of the training length (default 8).")
    :convert(tonumber)
  ev:flag("--no-baselines", "Skip the baselines.")
  device_arg(ev)

  local at = p:command("attn", "Attention analyses of a run (avg_attention_score.png, per-head plots, ...).")
  at:argument("run", "Run directory.")
  device_arg(at)

  local ak = p:command("atk", "Duplicated-data attacks and lost-in-the-middle of a run.")
  ak:argument("run", "Run directory.")
  device_arg(ak)

  local inf = p:command("info", "What a run is: config, parameter count, steps done, metrics.")
  inf:argument("run", "Run directory.")

  local cmp = p:command("compare", "Overlay several runs in one figure and tabulate their summaries.")
  cmp:argument("runs", "Run directories."):args("+")
  cmp:option("--out", "Output directory for the figure and table (default: comparison/).")

  local sw = p:command("sweep", "Run a grid of experiments locally or on Slurm.")
  sw:argument("spec", "Sweep spec (YAML or Lua).")
  sw:flag("--status", "Report progress from the run directories and exit.")
  sw:flag("--slurm", "Submit as a Slurm job array instead of running locally.")
  sw:option("--jobs", "Concurrent runs on this machine (default: from the spec, else 1).")
    :convert(tonumber)
  sw:flag("--summary", "Build the summary table and figures from finished cells and exit.")
  sw:flag("--retry-failed", "Run failed cells again (they are skipped otherwise).")
  sw:flag("--dry-run", "Show the cells and what would run (or the sbatch command) without starting anything.")
  sw:flag("--json", "With --status: print the status as JSON.")
  sw:option("--cell", "Train only this cell (0-based index); what each Slurm array task runs.")
    :convert(tonumber):hidden(true)
  return p
end

local function fail(msg)
  io.stderr:write("icl: ", tostring(msg), "\n")
  os.exit(1)
end

-- the error message without the position of the Lua code that raised it (the config loader
-- reports FILE:LINE of the YAML itself)
local function plain(msg)
  return (tostring(msg):gsub("^[^\n]-%.lua:%d+: ", ""))
end

local function load_config(path, overrides)
  local ok, run = pcall(require("icl.config").load, path, {overrides = overrides})
  if not ok then fail(plain(run)) end
  return run
end

local handlers = {}

-- "0,1,2" -> {0, 1, 2}
local function parse_seeds(text)
  local out, seen = {}, {}
  for item in tostring(text):gmatch("[^,]+") do
    local n = math.tointeger(tonumber(item:match("^%s*(.-)%s*$")))
    if not n or n < 0 then fail("train --seeds " .. text .. ": expected non-negative integers separated by commas") end
    if seen[n] then fail("train --seeds " .. text .. ": seed " .. n .. " is given twice") end
    out[#out + 1], seen[n] = n, true
  end
  if #out == 0 then fail("train --seeds: no seed given") end
  return out
end

-- the runs a train command names: {run =, dir =} each, and whether they are resumed
local function train_runs(a)
  local io_ = require "icl.io"
  local resume, run_dirs = a.resume or {}, a.run_dir or {}
  if type(resume) == "string" then resume = {resume} end
  if type(run_dirs) == "string" then run_dirs = {run_dirs} end
  local runs = {}
  if #resume > 0 then
    if a.seeds then fail("train: --seeds starts new runs; --resume continues runs, each with its own seed") end
    if #run_dirs > 0 then fail("train: --run-dir and --resume both name a run directory; give one") end
    if a.config and (#resume > 1 or a.config:gsub("/+$", "") ~= resume[1]:gsub("/+$", "")) then
      fail("train: give either a config file or --resume RUN_DIR, not both (a resumed run keeps its own config)")
    end
    require("icl.train").check_resume_overrides(a.set)
    for _, d in ipairs(resume) do
      local dir = d:gsub("/+$", "")
      if not io_.file_exists(dir) then fail("train --resume: " .. dir .. ": no such directory") end
      if not io_.file_exists(dir .. "/config.yaml") then fail(dir .. " is not a run directory (no config.yaml)") end
      runs[#runs + 1] = {run = load_config(dir .. "/config.yaml", a.set), dir = dir}
    end
    return runs, true
  end
  if not a.config then fail("train: give a config file (or --resume RUN_DIR)") end
  local exists, kind = io_.file_exists(a.config)
  if not exists then fail("train: " .. a.config .. ": no such config file") end
  if kind == "directory" then
    if io_.file_exists(a.config .. "/config.yaml") then
      fail("train: " .. a.config .. " is a run directory; to continue it, use icl train --resume " .. a.config)
    end
    fail("train: " .. a.config .. " is a directory, not a config file")
  end
  if not a.seeds then
    if #run_dirs > 1 then fail("train: --run-dir is given " .. #run_dirs .. " times; one run has one directory " ..
      "(several runs: --seeds)") end
    return {{run = load_config(a.config, a.set), dir = run_dirs[1]}}, false
  end
  local seeds = parse_seeds(a.seeds)
  for _, s in ipairs(a.set or {}) do
    if tostring(s):match("^%s*training%.seed%s*=") then
      fail("train: --set " .. s .. " and --seeds both set the seed; give the seeds with --seeds")
    end
  end
  if #run_dirs > 0 and #run_dirs ~= #seeds then
    fail(string.format("train: %d seeds but %d --run-dir; give one --run-dir per seed, or none", #seeds, #run_dirs))
  end
  for k, seed in ipairs(seeds) do
    local set = {}
    for i, s in ipairs(a.set or {}) do set[i] = s end
    set[#set + 1] = "training.seed=" .. seed
    runs[k] = {run = load_config(a.config, set), dir = run_dirs[k]}
  end
  return runs, false
end

function handlers.train(a)
  local icl = require "icl"
  if a.threads then icl.set_num_threads(a.threads) end
  local train = require "icl.train"
  local runs, resume = train_runs(a)
  local noted = {} -- the seeds of one config would repeat its notes
  for _, r in ipairs(runs) do
    for _, w in ipairs(r.run._meta and r.run._meta.warnings or {}) do
      if not noted[w] then io.stderr:write("note: ", w, "\n") end
      noted[w] = true
    end
  end
  local opts = {resume = resume, device = a.device, evaluate = not a.no_eval, progress_every = a.progress_every}
  if #runs == 1 and not a.seeds then
    opts.run_dir = runs[1].dir
    print(train.run(runs[1].run, opts).run_dir)
    return
  end
  local list, dirs = {}, {}
  for k, r in ipairs(runs) do list[k], dirs[k] = r.run, r.dir end
  if #dirs == #list then opts.run_dirs = dirs end
  local results = train.run_group(list, opts)
  local failed = {}
  for _, r in ipairs(results) do
    if r.failed then failed[#failed + 1] = r.run_dir .. ": " .. r.error else print(r.run_dir) end
  end
  if #failed > 0 then
    fail(string.format("%d of the group's %d runs failed (the others finished):\n  %s", #failed, #results,
      table.concat(failed, "\n  ")))
  end
end

local function analysis(name, fn)
  return function(a)
    local icl = require "icl"
    if a.threads then icl.set_num_threads(a.threads) end
    if a.device == "cuda" and not icl.cuda_available() then fail(require("icl.train").no_cuda_message()) end
    if a.run and not require("icl.io").file_exists(a.run .. "/config.yaml") then
      fail(a.run .. " is not a run directory (no config.yaml)")
    end
    local ok, mod = pcall(require, "icl." .. name)
    if not ok then fail(name .. ": not available in this build (" .. tostring(mod) .. ")") end
    mod[fn](a.run, a)
  end
end

handlers.eval = analysis("evaluate", "cli")
handlers.attn = analysis("attention", "cli")
handlers.atk = analysis("attacks", "cli")
handlers.compare = function(a) require("icl.compare").cli(a.runs, a) end
handlers.sweep = function(a) require("icl.sweep").cli(a.spec, a) end

function handlers.info(a)
  require("icl.info").print(a.run)
end

function cli.main(argv)
  local args = parser():parse(argv)
  local ok, err = xpcall(handlers[args.command], function(e)
    if os.getenv("ICL_DEBUG") then return debug.traceback(tostring(e), 2) end
    return e
  end, args)
  if not ok then fail(err) end
end

return cli
