--- Crash-safe checkpoints of a training run (docs/runner.md).
-- A checkpoint is two files, each written atomically (temp file, fsync,
-- rename, fsync of the directory):
--   checkpoint-<step>.safetensors  the model's tensors (HF names), the optimiser's
--                                  moments and scalars; checksummed (XXH64); its
--                                  metadata holds the run state and the config
--   checkpoint-<step>.json         the run state again: step, curriculum stage,
--                                  RNG streams, thread count, device
-- The JSON is written last and is the commit record: a checkpoint without it
-- does not exist. Loading verifies the tensors' checksums and that the commit
-- record is byte for byte the state stored inside the checksummed tensor
-- file, so a flipped bit in either file is found. Nothing is ever deleted
-- except by pruning (older than the newest `keep`); unusable or uncommitted
-- files are moved to <run>/unusable/.
local core = require "icl.core"
local io_ = require "icl.io"
local json = require "icl.json"

local ckpt = {}

ckpt.FORMAT = "icl-checkpoint/1"

local function base(run_dir, step) return string.format("%s/checkpoint-%08d", run_dir, step) end
ckpt.base = base

--- steps of the committed checkpoints in run_dir (those with a commit record), ascending
function ckpt.list(run_dir)
  local steps = {}
  for _, name in ipairs(io_.list_dir(run_dir) or {}) do
    local s = name:match("^checkpoint%-(%d+)%.json$")
    if s then steps[#steps + 1] = tonumber(s) end
  end
  table.sort(steps)
  return steps
end

--- The model's and optimiser's tensors, by name.
local function tensors_of(model, opt)
  local t = {}
  for _, p in ipairs(model:param_list()) do t[p.name] = model:get(p.name) end
  local st = opt:state()
  t["optimizer.m"], t["optimizer.v"], t["optimizer.scalars"] = st.m, st.v, st.scalars
  return t
end

-- a test hook: ICL_FAULT_SAVE_PAUSE=<seconds> sleeps between the tensor file and the commit
-- record, so that a test can kill a trainer inside that window (tests/lua/runner_resume_spec.lua)
local function fault_pause()
  local s = tonumber(os.getenv("ICL_FAULT_SAVE_PAUSE") or "")
  if s and s > 0 then core.sleep(s) end
end

--- Save a checkpoint; returns its base path. Refuses non-finite parameters or
-- moments (the last good checkpoint must stay the newest). After the commit,
-- keeps the newest `keep` checkpoints up to this step (never one newer than it).
-- opts.config: the resolved config text, stored in the tensor file's metadata.
function ckpt.save(run_dir, step, model, opt, state, keep, opts)
  local value = model:flat()
  local st = opt:state()
  if value:has_nonfinite() or st.m:has_nonfinite() or st.v:has_nonfinite() then
    error(string.format("checkpoint: parameters or optimiser moments contain NaN/Inf at step %d; not saving " ..
      "(the last good checkpoint is kept)", step), 2)
  end
  local b = base(run_dir, step)
  local s = {}
  for k, v in pairs(state) do s[k] = v end
  s.step = step
  s.format = ckpt.FORMAT
  s.tensors = b:match("[^/]+$") .. ".safetensors"
  s.saved_at = os.date("!%Y-%m-%dT%H:%M:%SZ")
  local text = json.encode(s)
  io_.save(b .. ".safetensors", tensors_of(model, opt), {format = ckpt.FORMAT, step = tostring(step), state = text,
                                                        config = opts and opts.config or nil})
  fault_pause()
  io_.write_file_atomic(b .. ".json", text .. "\n")
  if keep and keep > 0 then ckpt.prune(run_dir, step, keep) end
  return b
end

--- Remove all but the newest `keep` checkpoints at or below `step`. The commit
-- record goes first, so a crash mid-prune leaves no half checkpoint.
function ckpt.prune(run_dir, step, keep)
  local older = {}
  for _, s in ipairs(ckpt.list(run_dir)) do
    if s <= step then older[#older + 1] = s end
  end
  for i = 1, #older - keep do
    io_.remove(base(run_dir, older[i]) .. ".json")
    io_.remove(base(run_dir, older[i]) .. ".safetensors")
  end
end

-- Ctrl-C ("interrupted!") caught by a pcall here must not make a checkpoint look damaged
local function pass_interrupt(ok, err, ...)
  if not ok and tostring(err):find("interrupted!$") then error(err, 0) end
  return ok, err, ...
end

--- Read and verify one checkpoint: state, tensors, metadata; or nil, message.
function ckpt.read(run_dir, step, opts)
  local b = base(run_dir, step)
  local okr, text = pass_interrupt(pcall(io_.read_file, b .. ".json"))
  if not okr then return nil, b .. ".json: cannot be read (" .. tostring(text) .. ")" end
  local ok, state = pass_interrupt(pcall(json.decode, text))
  if not ok or type(state) ~= "table" then
    return nil, b .. ".json: not a valid checkpoint state (" .. tostring(state) .. ")"
  end
  if state.step ~= step then
    return nil, string.format("%s.json: says step %s, its name says %d", b, tostring(state.step), step)
  end
  local ok2, tensors, meta = pass_interrupt(pcall(io_.load, b .. ".safetensors", {device = opts and opts.device,
                                                                                  require_checksum = true}))
  if not ok2 then return nil, tostring(tensors) end
  if meta.state and meta.state .. "\n" ~= text and meta.state ~= text then
    return nil, b .. ".json: does not match the state stored in " .. b:match("[^/]+$") ..
      ".safetensors (the commit record was modified or damaged)"
  end
  if meta.format and meta.format ~= ckpt.FORMAT then
    return nil, string.format("%s.safetensors: format '%s', this icl reads '%s'", b, meta.format, ckpt.FORMAT)
  end
  return state, tensors, meta
end

--- The newest valid checkpoint: state, tensors, warnings (list of strings),
-- bad (list of the steps that were newer but unusable, each {step =, why =}), metadata.
function ckpt.latest(run_dir, opts)
  local warnings, bad = {}, {}
  local steps = ckpt.list(run_dir)
  for i = #steps, 1, -1 do
    local state, tensors, meta = ckpt.read(run_dir, steps[i], opts)
    if state then return state, tensors, warnings, bad, meta end
    warnings[#warnings + 1] = string.format("checkpoint at step %d is not usable: %s", steps[i], tensors)
    bad[#bad + 1] = {step = steps[i], why = tensors}
  end
  return nil, nil, warnings, bad
end

local function move_aside(run_dir, name)
  local dst_dir = run_dir .. "/unusable"
  io_.mkdir_p(dst_dir)
  local dst, k = dst_dir .. "/" .. name, 1
  while io_.file_exists(dst) do
    k = k + 1
    dst = string.format("%s/%s.%d", dst_dir, name, k)
  end
  io_.rename(run_dir .. "/" .. name, dst)
  return dst
end

--- Move an unusable checkpoint's files to <run>/unusable/ (kept for inspection,
-- out of the way of pruning and of the next save at that step).
function ckpt.quarantine(run_dir, step)
  local name = base(run_dir, step):match("[^/]+$")
  local moved = {}
  for _, ext in ipairs({".json", ".safetensors"}) do
    if io_.file_exists(run_dir .. "/" .. name .. ext) then moved[#moved + 1] = move_aside(run_dir, name .. ext) end
  end
  return moved
end

--- Leftovers of an interrupted save: temporary files of dead writers
-- (<file>.tmp.<pid>) are removed; tensor files without a commit record (the
-- save was killed between the two files) are moved to <run>/unusable/.
-- Returns a list of what was done (strings).
function ckpt.clean(run_dir)
  local done = {}
  local names = io_.list_dir(run_dir) or {}
  local committed = {}
  for _, n in ipairs(names) do
    local s = n:match("^checkpoint%-(%d+)%.json$")
    if s then committed[s] = true end
  end
  for _, n in ipairs(names) do
    local pid = tonumber(n:match("%.tmp%.(%d+)$") or "")
    if pid and pid ~= core.getpid() and not core.pid_alive(pid) then
      io_.remove(run_dir .. "/" .. n)
      done[#done + 1] = "removed the temporary file " .. n .. " of an interrupted write"
    end
    local s = n:match("^checkpoint%-(%d+)%.safetensors$")
    if s and not committed[s] then
      done[#done + 1] = string.format("moved %s (a save that never committed) to %s", n, move_aside(run_dir, n))
    end
  end
  return done
end

--- Copy a checkpoint's tensors into model and optimiser (shapes checked).
function ckpt.restore(tensors, model, opt)
  local known = {["optimizer.m"] = true, ["optimizer.v"] = true, ["optimizer.scalars"] = true}
  for _, p in ipairs(model:param_list()) do
    known[p.name] = true
    local t = tensors[p.name]
    if not t then error("checkpoint: tensor '" .. p.name .. "' is missing (a checkpoint of another model?)", 2) end
    model:set(p.name, t)
  end
  for name in pairs(tensors) do
    if not known[name] then
      error("checkpoint: tensor '" .. name .. "' is not part of this model (another model?)", 2)
    end
  end
  local st = opt:state()
  for _, k in ipairs({"m", "v", "scalars"}) do
    local t = tensors["optimizer." .. k]
    if not t then error("checkpoint: optimizer." .. k .. " is missing", 2) end
    if t:numel() ~= st[k]:numel() then
      error(string.format("checkpoint: optimizer.%s has %d elements, the model needs %d (different model?)", k,
        t:numel(), st[k]:numel()), 2)
    end
    st[k]:copy(t:reshape(st[k]:shape()))
  end
  return true
end

return ckpt
