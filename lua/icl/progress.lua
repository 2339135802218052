--- Progress reporting for long runs: on a terminal a live line redrawn in
-- place (step, loss, lr, steps/s, ETA, curriculum stage), at most every
-- `redraw` seconds; otherwise the same line as plain text every `every`
-- seconds, so logs stay readable under nohup or Slurm.
--
--   local p = progress.new{total = 2000, start = 0, out = io.stderr, every = 10, tty = nil (auto)}
--   if p:due() then p:update(step, {loss = l, lr = lr, stage = "dims 3/5 points 15/21"}) end
--   p:note("eval step 250: ...")    -- a line that stays (clears the live line first)
--   p:finish("trained 2000 steps in 2m10s")
--   progress.line{label =, step =, total =, loss =, lr =, rate =, eta =, stage =} -> the text
local core = require "icl.core"

local progress = {}
progress.__index = progress

local function fmt_time(s)
  if s ~= s or s == math.huge or s < 0 then return "?" end
  s = math.floor(s + 0.5)
  if s >= 3600 then return string.format("%dh%02dm", s // 3600, (s % 3600) // 60) end
  if s >= 60 then return string.format("%dm%02ds", s // 60, s % 60) end
  return string.format("%ds", s)
end
progress.fmt_time = fmt_time

local function num(v, fmt)
  if v == nil then return "-" end
  if v ~= v then return "nan" end
  if v == math.huge or v == -math.huge then return v > 0 and "inf" or "-inf" end
  return string.format(fmt, v)
end

--- The text of one progress line (pure; the tests check it).
function progress.line(f)
  return string.format("%s step %d/%d  loss %s  lr %s  %s steps/s  ETA %s%s", f.label or "train", f.step, f.total,
    num(f.loss, "%.5g"), num(f.lr, "%.3g"), f.rate and f.rate > 0 and string.format("%.2f", f.rate) or "-",
    f.eta and fmt_time(f.eta) or "?", f.stage and ("  " .. f.stage) or "")
end

function progress.new(opts)
  local self = setmetatable({}, progress)
  self.total = opts.total
  self.start = opts.start or 0
  self.out = opts.out or io.stderr
  self.every = opts.every or 10
  self.redraw = opts.redraw or 0.2
  self.label = opts.label or "train"
  if opts.tty == nil then self.tty = self.out == io.stderr and core.isatty(2) else self.tty = opts.tty end
  self.t0 = core.wall_time()
  self.last_print = -math.huge
  self.live = false
  return self
end

--- whether an update would print now (cheap: call it every step, gather the fields only when true)
function progress:due(now)
  now = now or core.wall_time()
  return now - self.last_print >= (self.tty and self.redraw or self.every)
end

--- print the line for `step`; fields = {loss=, lr=, stage=}
function progress:update(step, f, now)
  now = now or core.wall_time()
  local done, dt = step - self.start, now - self.t0
  local rate = done > 0 and dt > 0 and done / dt or nil
  local line = progress.line{label = self.label, step = step, total = self.total, loss = f.loss, lr = f.lr,
                             rate = rate, eta = rate and (self.total - step) / rate or nil, stage = f.stage}
  if self.tty then
    self.out:write("\r\27[K" .. line)
    self.live = true
  else
    self.out:write(line .. "\n")
  end
  self.out:flush()
  self.last_print = now
  self.rate = rate
  return line
end

--- a line that must not be overwritten (evaluation results, warnings)
function progress:note(text)
  if self.tty and self.live then self.out:write("\r\27[K") end
  self.out:write(text .. "\n")
  self.out:flush()
  -- on a terminal the live line comes back at the next update
  self.live = false
  if self.tty then self.last_print = -math.huge end
end

function progress:finish(text)
  if self.tty and self.live then self.out:write("\r\27[K") end
  self.live = false
  if text then self.out:write(text .. "\n") end
  self.out:flush()
end

return progress
