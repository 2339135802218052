--- Modules with explicit forward and backward.
-- C modules (Linear, RMSNorm, SiLU, SwiGLU) and Lua-defined modules follow
-- one protocol:
--   m:forward(x) -> y              (remembers what backward needs)
--   m:backward(x, gy) -> gx        (adds parameter gradients into m's grads)
--   m:parameters() -> { {name=, value=, grad=}, ... }
--   m:zero_grad(); m:numel(); m:bind(value_flat, grad_flat, offset) -> next offset
-- nn.flatten(model) moves every parameter of a model into one flat buffer
-- (with a flat gradient buffer beside it) so that one optimiser call updates
-- them all.
local core = require "icl.core"

local nn = {}
for k, v in pairs(core._nn) do nn[k] = v end

local function check_opts(fname, opts, allowed)
  if opts == nil then return {} end
  if type(opts) ~= "table" then error(fname .. ": options must be a table", 3) end
  for k in pairs(opts) do
    if not allowed[k] then
      local names = {}
      for n in pairs(allowed) do names[#names + 1] = n end
      table.sort(names)
      error(string.format("%s: unknown option '%s' (valid: %s)", fname, tostring(k), table.concat(names, ", ")), 3)
    end
  end
  return opts
end
nn._check_opts = check_opts

--- A module written in Lua.
-- spec = { name = "Decay", params = { {name="w", shape={4}, init=function(t) t:fill(1) end} },
--          forward = function(self, x) ... end, backward = function(self, x, gy) ... end }
-- Inside forward/backward, self.p[name] is the parameter tensor and
-- self.g[name] its gradient (add into it).
function nn.Module(spec)
  check_opts("nn.Module", spec, {name = true, params = true, forward = true, backward = true, init = true})
  if type(spec.forward) ~= "function" or type(spec.backward) ~= "function" then
    error("nn.Module: spec needs forward and backward functions", 2)
  end
  local m = {name = spec.name or "LuaModule", _spec = spec, p = {}, g = {}, _order = {}}
  for i, ps in ipairs(spec.params or {}) do
    if type(ps.name) ~= "string" or type(ps.shape) ~= "table" then
      error(string.format("nn.Module: params[%d] needs a name and a shape", i), 2)
    end
    m._order[i] = ps.name
    m.p[ps.name] = core.zeros(ps.shape)
    m.g[ps.name] = core.zeros(ps.shape)
    if ps.init then ps.init(m.p[ps.name]) end
  end
  return setmetatable(m, nn._LuaModule)
end

nn._LuaModule = {}
nn._LuaModule.__index = nn._LuaModule
function nn._LuaModule:forward(x) return self._spec.forward(self, x) end
function nn._LuaModule:backward(x, gy) return self._spec.backward(self, x, gy) end
function nn._LuaModule:kind() return self.name end
function nn._LuaModule:parameters()
  local out = {}
  for i, name in ipairs(self._order) do out[i] = {name = name, value = self.p[name], grad = self.g[name]} end
  return out
end
function nn._LuaModule:zero_grad()
  for _, name in ipairs(self._order) do self.g[name]:fill(0) end
end
function nn._LuaModule:numel()
  local n = 0
  for _, name in ipairs(self._order) do n = n + self.p[name]:numel() end
  return n
end
function nn._LuaModule:bind(value, grad, offset)
  offset = offset or 0
  for _, name in ipairs(self._order) do
    local p = self.p[name]
    local n = p:numel()
    local v = value:narrow(1, offset + 1, n):reshape(p:shape())
    local g = grad:narrow(1, offset + 1, n):reshape(p:shape())
    v:copy(p)
    g:fill(0)
    self.p[name], self.g[name] = v, g
    offset = offset + n
  end
  return offset
end

--- Modules applied in order.
function nn.Sequential(list)
  if type(list) ~= "table" or #list == 0 then error("nn.Sequential: expected a non-empty list of modules", 2) end
  for i, m in ipairs(list) do
    if type(m) ~= "userdata" and type(m) ~= "table" or not m.forward then
      error(string.format("nn.Sequential: element %d is not a module", i), 2)
    end
  end
  return setmetatable({modules = list, _inputs = {}}, nn._Sequential)
end

nn._Sequential = {}
nn._Sequential.__index = nn._Sequential
function nn._Sequential:kind() return "Sequential" end
function nn._Sequential:forward(x)
  for i, m in ipairs(self.modules) do
    self._inputs[i] = x
    x = m:forward(x)
  end
  return x
end
function nn._Sequential:backward(x, gy)
  if self._inputs[1] ~= x then error("Sequential.backward: input differs from the last forward", 2) end
  for i = #self.modules, 1, -1 do gy = self.modules[i]:backward(self._inputs[i], gy) end
  return gy
end
function nn._Sequential:parameters()
  local out = {}
  for i, m in ipairs(self.modules) do
    for _, p in ipairs(m:parameters()) do
      out[#out + 1] = {name = i .. "." .. p.name, value = p.value, grad = p.grad}
    end
  end
  return out
end
function nn._Sequential:zero_grad() for _, m in ipairs(self.modules) do m:zero_grad() end end
function nn._Sequential:numel()
  local n = 0
  for _, m in ipairs(self.modules) do n = n + m:numel() end
  return n
end
function nn._Sequential:bind(value, grad, offset)
  offset = offset or 0
  for _, m in ipairs(self.modules) do offset = m:bind(value, grad, offset) end
  return offset
end

--- Move a model's parameters into one flat buffer; returns value, grad.
function nn.flatten(model, opts)
  opts = check_opts("nn.flatten", opts, {device = true})
  local n = model:numel()
  local value = core.zeros({math.max(n, 1)}, {device = opts.device})
  local grad = core.zeros({math.max(n, 1)}, {device = opts.device})
  local used = model:bind(value, grad, 0)
  assert(used == n, "nn.flatten: module bound a different number of elements than it reported")
  model.flat_value, model.flat_grad = value, grad
  return value, grad
end

local function loss_module(name, fn)
  local cls = {}
  cls.__index = cls
  function cls:forward(pred, target)
    local l, g = fn(pred, target)
    self._grad = g
    return l
  end
  function cls:backward(pred, target)
    if not self._grad then error(name .. ".backward: call forward first", 2) end
    local g = self._grad
    self._grad = nil
    return g
  end
  return function() return setmetatable({}, cls) end
end

nn.MSELoss = loss_module("MSELoss", core._nn.mse_loss)
nn.BCEWithLogitsLoss = loss_module("BCEWithLogitsLoss", core._nn.bce_with_logits_loss)

return nn
