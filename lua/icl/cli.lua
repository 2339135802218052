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
  tr:option("--resume", "Continue the run in this directory from its newest valid checkpoint, bit for bit.")
    :argname("<run_dir>")
  tr:option("--run-dir", "Write the run here instead of models/<task>/<dims>/<date>/<uid>/ (an existing run " ..
            "directory with the same config is resumed).")
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

function handlers.train(a)
  local icl = require "icl"
  if a.threads then icl.set_num_threads(a.threads) end
  local train = require "icl.train"
  local io_ = require "icl.io"
  local run, dir
  if a.resume then
    dir = a.resume:gsub("/+$", "")
    if a.config and a.config:gsub("/+$", "") ~= dir then
      fail("train: give either a config file or --resume RUN_DIR, not both (a resumed run keeps its own config)")
    end
    if a.run_dir then fail("train: --run-dir and --resume both name a run directory; give one") end
    if not io_.file_exists(dir) then fail("train --resume: " .. dir .. ": no such directory") end
    if not io_.file_exists(dir .. "/config.yaml") then fail(dir .. " is not a run directory (no config.yaml)") end
    train.check_resume_overrides(a.set)
    run = load_config(dir .. "/config.yaml", a.set)
  else
    if not a.config then fail("train: give a config file (or --resume RUN_DIR)") end
    local exists, kind = io_.file_exists(a.config)
    if not exists then fail("train: " .. a.config .. ": no such config file") end
    if kind == "directory" then
      if io_.file_exists(a.config .. "/config.yaml") then
        fail("train: " .. a.config .. " is a run directory; to continue it, use icl train --resume " .. a.config)
      end
      fail("train: " .. a.config .. " is a directory, not a config file")
    end
    run = load_config(a.config, a.set)
    dir = a.run_dir
  end
  for _, w in ipairs(run._meta and run._meta.warnings or {}) do io.stderr:write("note: ", w, "\n") end
  local res = train.run(run, {run_dir = dir, resume = a.resume ~= nil, device = a.device, evaluate = not a.no_eval,
                              progress_every = a.progress_every})
  print(res.run_dir)
end

local function analysis(name, fn)
  return function(a)
    local icl = require "icl"
    if a.threads then icl.set_num_threads(a.threads) end
    if a.device == "cuda" and not icl.cuda_available() then
      fail("device 'cuda' was asked for but no CUDA device is available" ..
           (icl.cuda_compiled() and "" or " (this build of icl has no CUDA backend)") .. "; use --device cpu")
    end
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
