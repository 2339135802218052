-- The curriculum in closed form (spec §5).
local icl = require "icl"

local YAML = [[
# T configs/hyperparams/curriculum/dim-20_pts-50.yaml (shape)
dims:
  start: 5
  end: 20
  increment: 1
  interval: 2000
points:
  start: 11
  end: 51
  increment: 2
  interval: 2000
]]

describe("curriculum", function()
  it("follows var(s) = min(start + inc * floor(s / interval), end)", function()
    local c = icl.curriculum.new(icl.curriculum.parse_yaml(YAML))
    assert.same({n_dims_truncated = 5, n_points = 11}, c:at(0))
    assert.same({n_dims_truncated = 5, n_points = 11}, c:at(1999))
    assert.same({n_dims_truncated = 6, n_points = 13}, c:at(2000))
    assert.same({n_dims_truncated = 19, n_points = 39}, c:at(29999))
    assert.same({n_dims_truncated = 20, n_points = 41}, c:at(30000)) -- dims end at 30 000
    assert.same({n_dims_truncated = 20, n_points = 49}, c:at(39999))
    assert.same({n_dims_truncated = 20, n_points = 51}, c:at(40000)) -- points end at 40 000
    assert.same({n_dims_truncated = 20, n_points = 51}, c:at(50000))
    assert.equals(40000, c:done_at())
    assert.equals("dims 7/20, points 15/51", c:describe(4000))
  end)

  it("matches replaying the original's update() after every step", function()
    local c = icl.curriculum.new{dims = {start = 2, ["end"] = 5, inc = 1, interval = 7},
                                 points = {start = 5, ["end"] = 21, increment = 3, interval = 4}}
    local d, p = 2, 5
    for s = 0, 200 do
      assert.equals(d, c:dims(s))
      assert.equals(p, c:points(s))
      -- update(): step_count += 1; every interval steps var += inc; var = min(var, end)
      if (s + 1) % 7 == 0 then d = d + 1 end
      if (s + 1) % 4 == 0 then p = p + 3 end
      d, p = math.min(d, 5), math.min(p, 21)
    end
  end)

  it("accepts a curriculum: wrapper and rejects malformed schedules", function()
    local c = icl.curriculum.new{curriculum = {dims = {start = 20, ["end"] = 20, inc = 0, interval = 1},
                                               points = {start = 40, ["end"] = 40, inc = 5, interval = 2000}}}
    assert.equals("dims 20/20, points 40/40", c:describe(123456))
    assert.has_error(function() icl.curriculum.new{dims = {start = 5, ["end"] = 20, inc = 1}, points = {}} end)
    assert.has_error(function()
      icl.curriculum.new{dims = {start = 5, ["end"] = 2, inc = 1, interval = 1},
                         points = {start = 1, ["end"] = 1, inc = 0, interval = 1}}
    end)
    local ok, err = pcall(icl.curriculum.new, {dims = {start = 1, ["end"] = 2, step = 1, interval = 1}})
    assert.is_false(ok)
    assert.matches("unknown key dims.step", err, 1, true)
    assert.has_error(function() c:at(-1) end)
  end)
end)
