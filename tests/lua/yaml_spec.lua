local yaml = require "icl.yaml"
local U = require "spec_util"

describe("icl.yaml", function()
  local dir
  before_each(function() dir = U.tmpdir() end)
  after_each(function() U.rmrf(dir) end)

  it("types scalars YAML 1.1-style and keeps quoted scalars strings", function()
    local v = yaml.parse("a: 3.0e-4\nb: !!float 1e-05\nc: 1e-05\nd: 42\ne: true\nf: ~\ng:\nh: '12'\ni: [inf, .inf]\nj: yes\nk: 0.\n")
    assert.are.equal(3.0e-4, v.a)
    assert.are.equal("float", math.type(v.b))
    assert.are.equal(1e-05, v.b)
    assert.are.equal(1e-05, v.c)
    assert.are.equal("integer", math.type(v.d))
    assert.is_true(v.e)
    assert.are.equal(yaml.null, v.f)
    assert.are.equal(yaml.null, v.g)
    assert.are.equal("12", v.h)
    assert.are.equal("inf", v.i[1])
    assert.are.equal(math.huge, v.i[2])
    assert.are.equal("yes", v.j)
    assert.are.equal(0.0, v.k)
  end)

  it("records file:line for every key, hidden from pairs", function()
    U.write(dir .. "/part.yaml", "# comment\nx: 1\ny:\n  z: 2\n")
    U.write(dir .. "/top.yaml", "a: 1\nb: !include part.yaml\nc: [1, 2]\n")
    local v = yaml.load(dir .. "/top.yaml")
    assert.are.equal(dir .. "/top.yaml:2", yaml.pos(v, "b"))
    assert.are.equal(dir .. "/part.yaml:2", yaml.pos(v.b, "x"))
    assert.are.equal(dir .. "/part.yaml:4", yaml.pos(v.b.y, "z"))
    assert.are.equal(dir .. "/top.yaml:3", yaml.pos(v.c, 2))
    local n = 0
    for _ in pairs(v) do n = n + 1 end
    assert.are.equal(3, n)
    assert.are.equal(2, #v.c)
    local plain = yaml.load(dir .. "/top.yaml", {positions = false})
    assert.is_nil(getmetatable(plain))
  end)

  it("resolves nested relative includes and merge keys", function()
    local icl_io = require("icl").io
    icl_io.mkdir_p(dir .. "/a/b")
    U.write(dir .. "/a/b/leaf.yaml", "[1, 2, 3]\n")
    U.write(dir .. "/a/mid.yaml", "leaf: !include b/leaf.yaml\nk: 1\n")
    U.write(dir .. "/top.yaml", "m:\n  <<: !include a/mid.yaml\n  k: 2\n")
    local v = yaml.load(dir .. "/top.yaml")
    assert.are.same({1, 2, 3}, {v.m.leaf[1], v.m.leaf[2], v.m.leaf[3]})
    assert.are.equal(2, v.m.k)
    assert.are.equal(dir .. "/a/mid.yaml:1", yaml.pos(v.m, "leaf"))
  end)

  it("names file, line and key in its errors", function()
    U.write(dir .. "/dup.yaml", "a:\n  b: 1\n  b: 2\n")
    local e = U.error_of(yaml.load, dir .. "/dup.yaml")
    assert.truthy(e:find(dir .. "/dup.yaml:3", 1, true) and e:find("a.b", 1, true) and e:find("duplicate key"))
    U.write(dir .. "/syn.yaml", "a: 1\nb: [1, 2\nc: 3\n")
    e = U.error_of(yaml.load, dir .. "/syn.yaml")
    assert.truthy(e:find(dir .. "/syn.yaml:3", 1, true) and e:find("syntax error"))
    U.write(dir .. "/inc.yaml", "x:\n  y: !include nowhere.yaml\n")
    e = U.error_of(yaml.load, dir .. "/inc.yaml")
    assert.truthy(e:find(dir .. "/inc.yaml:2", 1, true) and e:find("x.y", 1, true) and e:find("nowhere.yaml", 1, true))
    U.write(dir .. "/c1.yaml", "a: !include c2.yaml\n")
    U.write(dir .. "/c2.yaml", "b: !include c1.yaml\n")
    e = U.error_of(yaml.load, dir .. "/c1.yaml")
    assert.truthy(e:find("cycle") and e:find("c2.yaml:1", 1, true))
    e = U.error_of(yaml.load, dir .. "/missing.yaml")
    assert.truthy(e:find("missing.yaml", 1, true))
    e = U.error_of(yaml.load, dir)
    assert.truthy(e:find("directory"))
  end)

  it("never crashes on binary, truncated or huge input", function()
    math.randomseed(7)
    for t = 1, 200 do
      local bytes = {}
      for i = 1, math.random(0, 300) do bytes[i] = string.char(math.random(0, 255)) end
      U.write(dir .. "/g.yaml", table.concat(bytes))
      pcall(yaml.load, dir .. "/g.yaml")
    end
    local text = U.read(U.source_dir .. "/configs/hyperparams/training_args.yaml")
    for n = 0, #text, 7 do
      U.write(dir .. "/t.yaml", text:sub(1, n))
      pcall(yaml.load, dir .. "/t.yaml")
    end
    local parts = {}
    for i = 1, 200000 do parts[i] = "k" .. i .. ": [" .. i .. ", x, 1.5]" end
    U.write(dir .. "/huge.yaml", table.concat(parts, "\n"))
    local v = yaml.load(dir .. "/huge.yaml")
    assert.are.equal(1.5, v.k200000[3])
    U.write(dir .. "/deep.yaml", string.rep("[", 50000))
    assert.truthy(U.error_of(yaml.load, dir .. "/deep.yaml"):find("nesting"))
  end)

  it("dumps values that load back equal", function()
    local v = {a = 1, b = {1, 2.5, "x y", true}, c = {d = 3e-4, e = "true", f = {{g = 1}, {g = "2"}}, h = "inf"},
               s = "a: b # c", t = 1e-05, u = "", w = {}, x = -0.0, y = math.huge, z = "multi\nline\t\"q\""}
    local back = yaml.parse(yaml.dump(v), {positions = false})
    local ok, why = U.deep_equal(v, back)
    assert.is_true(ok, why)
  end)
end)
