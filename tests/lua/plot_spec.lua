-- icl.core.plot from Lua: valid figures become PNG files; unknown keys,
-- wrong types and bad values are Lua errors naming the place and the field.
local plot = require("icl.core").plot
local palette = require("icl.palette")

local function make_dir()
  local p = os.tmpname()
  os.remove(p)
  assert(os.execute("mkdir -p '" .. p .. "'"))
  return p
end

local dir = make_dir()

local function png_ok(path, min_bytes)
  local f = io.open(path, "rb")
  if not f then return false end
  local head = f:read(8)
  local size = f:seek("end")
  f:close()
  return head == "\137PNG\r\n\26\n" and size >= (min_bytes or 2000)
end

local function exists(path)
  local f = io.open(path, "rb")
  if f then f:close() end
  return f ~= nil
end

-- pcall(fn, opts) must fail with a message containing each of the strings.
local function fails(fn, opts, ...)
  local ok, err = pcall(fn, opts)
  assert.is_false(ok, "expected an error")
  assert.is_string(err)
  for _, s in ipairs { ... } do
    assert.is_truthy(err:find(s, 1, true), ("message %q lacks %q"):format(err, s))
  end
  return err
end

local function seq(n, f)
  local t = {}
  for i = 1, n do t[i] = f(i) end
  return t
end

local X = seq(40, function(i) return i end)
local Y = seq(40, function(i) return 10 / i end)

local function lines_opts(file)
  return {
    file = file, width = 800, height = 560,
    title = "linear_regression  d=20  N=50  fire", xlabel = "# in-context examples", ylabel = "squared error",
    xlim = { 0, 45 }, ylim = { 0, 12 }, logy = false, legend = "top right", grid = true,
    series = {
      { x = X, y = seq(40, function(i) return Y[i] end), label = "FIRE", color = { 31, 119, 180 }, style = "solid", width = 2,
        band = { lo = seq(40, function(i) return 0.8 * Y[i] end), hi = seq(40, function(i) return 1.2 * Y[i] end) } },
      { y = seq(40, function(i) return 5 + math.sin(i) end), label = "3-NN", color = "#d6616b", style = "dashed",
        marker = "circle", marker_size = 0.8 },
      { x = X, y = seq(40, function(i) return i == 20 and 0 / 0 or 2 end), label = "dotted", style = "dotted" },
    },
    vlines = { { x = 30, label = "Bound", color = { 214, 39, 40 } } },
    hlines = { { y = 9, label = "zero estimator", style = "dashed" } },
  }
end

teardown(function() os.execute("rm -rf '" .. dir .. "'") end)

describe("plot", function()
  it("lists its devices, pngcairo among them", function()
    local found = false
    for _, d in ipairs(plot.devices()) do found = found or d == "pngcairo" end
    assert.is_true(found)
  end)

  describe("lines", function()
    it("writes a PNG and returns its name", function()
      local file = dir .. "/lines.png"
      assert.are.equal(file, plot.lines(lines_opts(file)))
      assert.is_true(png_ok(file, 10000))
      assert.is_false(exists(dir .. "/lines.tmp.png"))
    end)

    it("takes every legend place, false, a log axis and the defaults", function()
      for i, where in ipairs { "best", "top left", "bottom right", "bottom left", "outside", "none", false, true } do
        local o = lines_opts(dir .. "/legend" .. i .. ".png")
        o.legend = where
        plot.lines(o)
        assert.is_true(png_ok(o.file))
      end
      local o = lines_opts(dir .. "/log.png")
      o.logy, o.ylim = true, { 0.1, 20 }
      plot.lines(o)
      assert.is_true(png_ok(o.file))
      plot.lines { file = dir .. "/minimal.png", series = { { y = { 1, 3, 2 } } } }
      assert.is_true(png_ok(dir .. "/minimal.png"))
    end)

    it("rejects unknown keys, naming the key and the valid ones", function()
      local o = lines_opts(dir .. "/bad.png")
      o.colour = "red"
      fails(plot.lines, o, "plot.lines: unknown key 'colour'", "valid: file, width, height")
      o = lines_opts(dir .. "/bad.png")
      o.series[2].colour = { 1, 2, 3 }
      fails(plot.lines, o, "plot.lines: series 2: unknown key 'colour'", "color")
      o = lines_opts(dir .. "/bad.png")
      o.series[1].band.mid = {}
      fails(plot.lines, o, "series 1 ('FIRE'): band: unknown key 'mid'", "lo, hi, alpha")
      o = lines_opts(dir .. "/bad.png")
      o.vlines[1].y = 3
      fails(plot.lines, o, "vline 1: unknown key 'y'")
      o = lines_opts(dir .. "/bad.png")
      o.hlines[1][1] = 3
      fails(plot.lines, o, "hline 1: unexpected number key")
      assert.is_false(exists(dir .. "/bad.png"))
    end)

    it("names the field of a wrong type", function()
      local cases = {
        { "file", 42, "'file' must be a string, got number" },
        { "width", "wide", "'width' must be an integer, got string" },
        { "width", 1.5, "'width' must be an integer" },
        { "logy", "yes", "'logy' must be a boolean, got string" },
        { "title", {}, "'title' must be a string, got table" },
        { "xlim", 5, "'xlim' must be a table {lo, hi}, got number" },
        { "xlim", { 1 }, "'xlim' must have two entries" },
        { "legend", "middle", "'legend' must be one of best, top right" },
        { "series", "all", "'series' must be a table (a list), got string" },
        { "vlines", 1, "'vlines' must be a table (a list), got number" },
      }
      for _, c in ipairs(cases) do
        local o = lines_opts(dir .. "/bad.png")
        o[c[1]] = c[2]
        fails(plot.lines, o, "plot.lines: " .. c[3])
      end
      local o = lines_opts(dir .. "/bad.png")
      o.series[1].y[3] = "x"
      fails(plot.lines, o, "series 1 ('FIRE'): y[3] must be a number, got string")
      o = lines_opts(dir .. "/bad.png")
      o.series[2].color = { 1, 2 }
      fails(plot.lines, o, "series 2 ('3-NN'): 'color' must be {r, g, b}")
      o.series[2].color = "#12345g"
      fails(plot.lines, o, "'color' = '#12345g' is not a colour")
      o.series[2].color = { 0, 0, 256 }
      fails(plot.lines, o, "'color'[3] must be an integer in 0..255")
      o = lines_opts(dir .. "/bad.png")
      o.series[3].style = "wavy"
      fails(plot.lines, o, "series 3 ('dotted'): 'style' must be one of solid, dashed, dotted, dashdot, got 'wavy'")
      o = lines_opts(dir .. "/bad.png")
      o.series[1].marker = 1
      fails(plot.lines, o, "'marker' must be one of none, circle")
      o = lines_opts(dir .. "/bad.png")
      o.vlines[1].x = "50"
      fails(plot.lines, o, "vline 1: 'x' must be a number")
      fails(plot.lines, 7, "plot.lines: expected a table, got number")
      fails(plot.lines, nil, "plot.lines: expected a table, got nil")
    end)

    it("reports bad values with the engine's message", function()
      local o = lines_opts(dir .. "/bad.png")
      o.series[1].x = seq(39, function(i) return i end)
      local err = fails(plot.lines, o)
      assert.are.equal("plot.lines: series 1 ('FIRE'): x has 39 points, y has 40", err)
      local function with(f, ...)
        local p = lines_opts(dir .. "/bad.png")
        f(p)
        fails(plot.lines, p, ...)
      end
      with(function(p) p.series[2].y[5] = math.huge end, "series 2 ('3-NN'): y[5] = inf")
      with(function(p) p.series[1].y = seq(40, function() return 0 / 0 end) end, "every point is a gap")
      with(function(p) p.series[1].band.hi = { 1 } end, "band: lo has 40 points and hi 1, but y has 40")
      with(function(p) p.series[1].band.lo = nil end, "band: needs both 'lo' and 'hi'")
      with(function(p) p.series = {} end, "'series' must list at least one series")
      with(function(p) p.series[1].x, p.series[1].y, p.series[1].band = {}, {}, nil end, "needs at least one point")
      with(function(p) p.xlim = { 5, 1 } end, "xlim = {5, 1} must be increasing")
      with(function(p) p.logy = true end, "must be positive with logy")
      with(function(p) p.width = 20 end, "width must be between 64 and 8192 pixels, got 20")
      with(function(p) p.file = dir .. "/nope/x.png" end, "does not exist")
      with(function(p) p.file = dir .. "/x.svg" end, "must end in .png")
      with(function(p) p.file = nil end, "'file' is required")
      with(function(p) p.title = "bad \255 byte" end, "title is not valid UTF-8")
      assert.is_false(exists(dir .. "/bad.png"))
    end)
  end)

  describe("heatmap", function()
    local function z(rows, cols)
      return seq(rows, function(i) return seq(cols, function(j) return j <= i and 1 / i or 0 / 0 end) end)
    end

    it("writes a PNG, with NaN cells blank and an optional colour bar", function()
      local file = dir .. "/heat.png"
      assert.are.equal(file, plot.heatmap { file = file, z = z(16, 16), title = "attention", xlabel = "key",
        ylabel = "query", zlabel = "weight", zlim = { 0, 1 }, colorbar = true })
      assert.is_true(png_ok(file, 5000))
      plot.heatmap { file = dir .. "/heat2.png", z = { { 1, 2, 3 } }, colorbar = false, width = 300, height = 200 }
      assert.is_true(png_ok(dir .. "/heat2.png", 500))
    end)

    it("rejects bad input", function()
      local f = dir .. "/badheat.png"
      fails(plot.heatmap, { file = f, z = z(2, 2), zmax = 1 }, "plot.heatmap: unknown key 'zmax'")
      fails(plot.heatmap, { file = f, z = { { 1, 2 }, { 3 } } }, "plot.heatmap: z[2] has 1 values, z[1] has 2")
      fails(plot.heatmap, { file = f, z = { { 1, "a" } } }, "z[1][2] must be a number, got string")
      fails(plot.heatmap, { file = f, z = 3 }, "'z' must be a table of rows, got number")
      fails(plot.heatmap, { file = f, z = {} }, "'z' has no rows")
      fails(plot.heatmap, { file = f, z = { { 1, -math.huge } } }, "z[1][2] = -inf")
      fails(plot.heatmap, { file = f, z = z(2, 2), zlim = { 1, 0 } }, "zlim = {1, 0} must be increasing")
      fails(plot.heatmap, { file = f, z = z(2, 2), colorbar = 1 }, "'colorbar' must be a boolean")
      assert.is_false(exists(f))
    end)
  end)

  describe("grid", function()
    local function panels(n)
      return seq(n, function(h)
        return { title = "head " .. h, series = { { y = seq(30, function(i) return math.exp(-i / (3 * h)) end) } },
                 vlines = { { x = 15, style = "dashed", color = "#d62728" } }, legend = false, ylim = { 0, 1 } }
      end)
    end

    it("writes a 2x4 grid and a partly filled default layout", function()
      local file = dir .. "/grid.png"
      assert.are.equal(file, plot.grid { file = file, rows = 2, cols = 4, width = 1400, height = 700,
        title = "per head", xlabel = "query position", ylabel = "weight", panels = panels(8) })
      assert.is_true(png_ok(file, 20000))
      plot.grid { file = dir .. "/grid5.png", panels = panels(5) } -- 4 across, 2 rows
      assert.is_true(png_ok(dir .. "/grid5.png", 10000))
    end)

    it("rejects bad input, naming the panel", function()
      local f = dir .. "/badgrid.png"
      fails(plot.grid, { file = f, panels = panels(2), layout = "2x1" }, "plot.grid: unknown key 'layout'")
      local p = panels(3)
      p[2].colour = 1
      fails(plot.grid, { file = f, panels = p }, "plot.grid: panel 2: unknown key 'colour'")
      p = panels(3)
      p[3].series[1].y[2] = math.huge
      fails(plot.grid, { file = f, panels = p }, "plot.grid: panel 3 ('head 3'): series 1: y[2] = inf")
      fails(plot.grid, { file = f, rows = 1, cols = 2, panels = panels(3) }, "3 panels do not fit in 1 x 2")
      fails(plot.grid, { file = f, panels = {} }, "'panels' has 0 entries")
      fails(plot.grid, { file = f, panels = panels(2), rows = "two" }, "'rows' must be an integer")
      assert.is_false(exists(f))
    end)
  end)
end)

describe("palette", function()
  local names = { "nope", "rope", "pi", "dynamic_ntk", "yarn", "dynamic_yarn", "alibi", "fire", "mamba",
                  "least_squares", "averaging", "nn_1", "nn_3", "null", "lasso", "zero_estimator" }

  it("gives every known name its own fixed colour", function()
    local seen = {}
    for _, n in ipairs(names) do
      local c = palette.color(n)
      assert.are.equal(3, #c)
      local k = table.concat(c, ",")
      assert.is_nil(seen[k], n .. " shares a colour with " .. tostring(seen[k]))
      seen[k] = n
      assert.are.same(c, palette.color(n))
    end
    assert.are.same({ 31, 119, 180 }, palette.color("fire"))
    assert.are.same(palette.color("least_squares"), palette.color("Least Squares"))
    assert.are.same(palette.color("nn_3"), palette.color("3-NN"))
  end)

  it("styles baselines dashed and models solid", function()
    for _, n in ipairs { "least_squares", "averaging", "nn_1", "nn_3", "null", "lasso", "zero_estimator" } do
      assert.are.equal("dashed", palette.style(n))
    end
    for _, n in ipairs { "nope", "rope", "fire", "mamba", "alibi" } do
      assert.are.equal("solid", palette.style(n))
    end
    assert.are.equal("3-NN", palette.label("nn_3"))
    assert.are.equal("my_model", palette.label("my_model"))
  end)

  it("hashes unknown names to a deterministic colour", function()
    local c = palette.color("some_new_encoding")
    assert.are.same(c, palette.color("some_new_encoding"))
    for i = 1, 3 do assert.is_true(math.type(c[i]) == "integer" and c[i] >= 0 and c[i] <= 255) end
    assert.are_not.same(c, palette.color("another_encoding"))
    assert.are.equal("solid", palette.style("some_new_encoding"))
  end)

  it("fills a series table for plot.lines", function()
    local s = palette.series("rope", { y = { 1, 2 } })
    assert.are.same(palette.color("rope"), s.color)
    assert.are.equal("RoPE", s.label)
    local file = dir .. "/palette.png"
    plot.lines { file = file, series = { s, palette.series("least_squares", { y = { 2, 1 } }) } }
    assert.is_true(png_ok(file))
  end)
end)

describe("experiments/plot_demo.lua", function()
  it("writes its four figures", function()
    local src = os.getenv("ICL_SOURCE_DIR") or "."
    local out = dir .. "/demo"
    local ok = os.execute(("lua5.4 '%s/experiments/plot_demo.lua' '%s' > /dev/null"):format(src, out))
    assert.is_true(ok)
    for _, f in ipairs { "error_vs_examples.png", "error_vs_examples_log.png", "attention_heatmap.png",
                         "heads_grid.png" } do
      assert.is_true(png_ok(out .. "/" .. f, 10000), f)
    end
  end)
end)
