--- Progress reporting for long runs: on a terminal a live line redrawn in
-- place (step, loss, lr, steps/s, ETA, curriculum stage); otherwise plain
-- lines every `every` seconds, so logs stay readable under nohup or Slurm.
local core = require "icl.core"

local progress = {}
progress.__index = progress

local function fmt_time(s)
  if s ~= s or s == math.huge then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end
progress.fmt_time = fmt_time

--- progress.new{total = steps, start = step, out = io.stderr, every = 10, tty = nil (auto), label = "train"}
function progress.new(opts)
  local self = setmetatable({}, progress)
  self.total = opts.total
  self.start = opts.start or 0
  self.out = opts.out or io.stderr
  self.every = opts.every or 10
  self.label = opts.label or "train"
  if opts.tty == nil then self.tty = core.isatty(2) and self.out == io.stderr else self.tty = opts.tty end
  self.t0 = core.wall_time()
  self.last_print = -math.huge
  return self
end

--- update(step, fields): fields = {loss=, lr=, stage=}; prints when due
function progress:update(step, f, force)
  local now = core.wall_time()
  local done = step - self.start
  local rate = done > 0 and done / (now - self.t0) or 0
  local eta = rate > 0 and (self.total - step) / rate or math.huge
  local line = string.format("%s step %d/%d  loss %s  lr %s  %.2f steps/s  ETA %s%s", self.label, step, self.total,
    f.loss and string.format("%.5g", f.loss) or "-", f.lr and string.format("%.3g", f.lr) or "-", rate,
    fmt_time(eta), f.stage and ("  " .. f.stage) or "")
  if self.tty then
    self.out:write("\r\27[K" .. line)
    self.out:flush()
  elseif force or now - self.last_print >= self.every then
    self.out:write(line .. "\n")
    self.out:flush()
    self.last_print = now
  end
  self.rate = rate
end

--- a line that must not be overwritten (evaluation results, warnings)
function progress:note(text)
  if self.tty then self.out:write("\r\27[K") end
  self.out:write(text .. "\n")
  self.out:flush()
end

function progress:finish(text)
  if self.tty then self.out:write("\r\27[K") end
  if text then self.out:write(text .. "\n") end
  self.out:flush()
end

return progress
