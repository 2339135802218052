-- Fixed colours, line styles and display labels per method, so that a
-- positional encoding or a baseline looks the same in every figure.
--
--   local palette = require("icl.palette")
--   palette.color("fire")         --> {31, 119, 180}   (a fresh table)
--   palette.style("least_squares") --> "dashed"        (baselines dashed, models solid)
--   palette.label("nn_3")         --> "3-NN"
--   palette.series("rope", {x = x, y = y})  -- fills color, style and label if absent
--
-- Names are matched case-insensitively, with spaces and dashes read as "_"
-- ("Least Squares", "least-squares" and "least_squares" are one name).
-- Unknown names get a colour derived from a hash of the name: always the
-- same, but not guaranteed distinct from the fixed ones.
local M = {}

-- Models: saturated colours, solid lines.
local MODELS = {
  fire = { 31, 119, 180 }, -- blue
  rope = { 255, 127, 14 }, -- orange
  nope = { 44, 160, 44 }, -- green
  alibi = { 148, 103, 189 }, -- purple
  pi = { 140, 86, 75 }, -- brown
  dynamic_ntk = { 227, 119, 194 }, -- pink
  yarn = { 23, 190, 207 }, -- cyan
  dynamic_yarn = { 188, 189, 34 }, -- olive
  mamba = { 57, 59, 121 }, -- indigo
}

-- Baselines and reference lines: darker or greyer colours, dashed lines.
local BASELINES = {
  least_squares = { 0, 0, 0 }, -- black
  averaging = { 140, 109, 49 }, -- dark gold
  nn_1 = { 132, 60, 57 }, -- dark red
  nn_3 = { 214, 97, 107 }, -- salmon
  null = { 99, 121, 57 }, -- dark olive
  lasso = { 123, 65, 115 }, -- plum
  zero_estimator = { 110, 110, 110 }, -- grey
  bound = { 214, 39, 40 }, -- red (a vertical line, e.g. the training length)
}

local LABELS = {
  fire = "FIRE", rope = "RoPE", nope = "NoPE", alibi = "ALiBi", pi = "PI",
  dynamic_ntk = "Dynamic NTK", yarn = "YaRN", dynamic_yarn = "Dynamic YaRN", mamba = "Mamba",
  least_squares = "Least Squares", averaging = "Averaging", nn_1 = "1-NN", nn_3 = "3-NN",
  null = "Null", lasso = "Lasso", zero_estimator = "Zero estimator", bound = "Bound",
}

local ALIASES = { ["1_nn"] = "nn_1", ["3_nn"] = "nn_3", ["1nn"] = "nn_1", ["3nn"] = "nn_3", zero = "zero_estimator" }

local function key(name)
  assert(type(name) == "string", "palette: name must be a string, got " .. type(name))
  local k = name:lower():gsub("[%s%-]+", "_")
  return ALIASES[k] or k
end

-- FNV-1a over the bytes of the name, kept to 32 bits.
local function hash(s)
  local h = 2166136261
  for i = 1, #s do
    h = ((h ~ s:byte(i)) * 16777619) & 0xffffffff
  end
  return h
end

-- A mid-dark, fairly saturated colour from a hash: readable on white.
local function hashed_color(k)
  local h = hash(k)
  local hue = (h % 360) / 60
  local s = 0.55 + ((h >> 9) % 4) * 0.1
  local v = 0.6 + ((h >> 13) % 3) * 0.1
  local c = v * s
  local x = c * (1 - math.abs(hue % 2 - 1))
  local m = v - c
  local i = math.floor(hue)
  local r, g, b
  if i == 0 then r, g, b = c, x, 0
  elseif i == 1 then r, g, b = x, c, 0
  elseif i == 2 then r, g, b = 0, c, x
  elseif i == 3 then r, g, b = 0, x, c
  elseif i == 4 then r, g, b = x, 0, c
  else r, g, b = c, 0, x end
  local function byte(f) return math.floor((f + m) * 255 + 0.5) end
  return { byte(r), byte(g), byte(b) }
end

function M.color(name)
  local k = key(name)
  local c = MODELS[k] or BASELINES[k] or hashed_color(k)
  return { c[1], c[2], c[3] }
end

function M.is_baseline(name)
  return BASELINES[key(name)] ~= nil
end

function M.style(name)
  local k = key(name)
  if k == "bound" then return "solid" end
  return BASELINES[k] and "dashed" or "solid"
end

function M.label(name)
  return LABELS[key(name)] or name
end

-- Fills color, style and label of a series table where they are not set.
function M.series(name, t)
  t = t or {}
  if t.color == nil then t.color = M.color(name) end
  if t.style == nil then t.style = M.style(name) end
  if t.label == nil then t.label = M.label(name) end
  return t
end

-- Every name with a fixed colour, sorted.
function M.names()
  local out = {}
  for k in pairs(MODELS) do out[#out + 1] = k end
  for k in pairs(BASELINES) do out[#out + 1] = k end
  table.sort(out)
  return out
end

return M
