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

  local tr = p:command("train", "Train a model from a config (or resume a run).")
  tr:argument("config", "Config file (YAML) or run directory (with --resume).")
    :args("?")
  tr:option("--set", "Override a config value, e.g. --set training.max_steps=100 (repeatable).")
    :count("*")
  tr:option("--resume", "Resume the run in this directory from its newest valid checkpoint.")
  tr:option("--run-dir", "Write the run here instead of models/<task>/<dims>/<date>/<uid>/.")
  tr:flag("--no-eval", "Skip the evaluation after training.")
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

local handlers = {}

function handlers.train(a)
  local icl = require "icl"
  if a.threads then icl.set_num_threads(a.threads) end
  local config = require "icl.config"
  local run, dir
  if a.resume then
    dir = a.resume
    local cfg = dir .. "/config.yaml"
    if not require("icl.io").file_exists(cfg) then fail(dir .. " is not a run directory (no config.yaml)") end
    run = config.load(cfg, {overrides = a.set})
  else
    if not a.config then fail("train: give a config file (or --resume RUN_DIR)") end
    run = config.load(a.config, {overrides = a.set})
    dir = a.run_dir
  end
  local res = require("icl.train").run(run, {run_dir = dir, device = a.device, evaluate = not a.no_eval})
  print(res.run_dir)
end

local function analysis(name, fn)
  return function(a)
    local icl = require "icl"
    if a.threads then icl.set_num_threads(a.threads) end
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
