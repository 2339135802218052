local json = require "icl.json"
local U = require "spec_util"

describe("icl.json", function()
  it("encodes deterministically with sorted keys", function()
    assert.are.equal('{"a":1,"b":[true,false,null],"c":{"x":"y"},"d":[],"e":{}}',
                     json.encode({c = {x = "y"}, b = {true, false, json.null}, a = 1, d = json.array(), e = {}}))
    assert.are.equal('"\\"\\\\\\n\\u0001"', json.encode('"\\\n\1'))
    assert.are.equal("1.0", json.encode(1.0))
    assert.are.equal("0.1", json.encode(0.1))
    assert.are.equal("-0.0", json.encode(-0.0))
  end)

  it("round-trips float64 and float32 values exactly", function()
    math.randomseed(3)
    for _ = 1, 2000 do
      local x = (math.random() - 0.5) * 10 ^ math.random(-30, 30)
      local f32 = string.unpack("<f", string.pack("<f", x))
      assert.are.equal(x, json.decode(json.encode(x)))
      assert.are.equal(f32, json.decode(json.encode(f32)))
      assert.are.equal(f32, string.unpack("<f", string.pack("<f", json.decode(json.encode(f32)))))
    end
    for _, x in ipairs({5e-324, 1.7976931348623157e308, 2 ^ 53, -2 ^ 63, 1e-7}) do
      assert.are.equal(x, json.decode(json.encode(x)))
    end
    assert.are.equal(math.maxinteger, json.decode(json.encode(math.maxinteger)))
  end)

  it("round-trips nested values", function()
    local v = {step = 100, loss = 0.123456789, name = "run é", tags = {"a", "b"}, nested = {x = {1, {y = json.null}}}}
    local ok, why = U.deep_equal(v, json.decode(json.encode(v)))
    assert.is_true(ok, why)
    local ok2, why2 = U.deep_equal(v, json.decode(json.encode(v, {indent = 2})))
    assert.is_true(ok2, why2)
  end)

  it("rejects what JSON cannot hold, with a clear message", function()
    assert.truthy(U.error_of(json.encode, {a = 0 / 0}):find("NaN", 1, true) or U.error_of(json.encode, {a = 0 / 0}):find("finite"))
    assert.truthy(U.error_of(json.encode, {a = {1, math.huge}}):find("$.a[2]", 1, true))
    assert.truthy(U.error_of(json.encode, {[1] = 1, [3] = 3}):find("sparse"))
    assert.truthy(U.error_of(json.encode, {1, x = 2}):find("mixes"))
    local t = {}
    t.t = t
    assert.truthy(U.error_of(json.encode, t):find("cycle"))
    assert.truthy(U.error_of(json.encode, {f = print}):find("function"))
    assert.truthy(U.error_of(json.encode, "\255"):find("UTF%-8"))
  end)

  it("decodes strictly and says where the error is", function()
    local cases = {
      {'{"a":1,}', "line 1 column 8"}, {"[01]", "leading zero"}, {'{"a":1 "b":2}', "expected ','"},
      {"[1] x", "unexpected data"}, {'{"a":1,"a":2}', "duplicate key"}, {'"\\ud800"', "surrogate"},
      {"[NaN]", "unexpected character"}, {"[1.]", "digit expected"}, {"\n\n  [1e]", "line 3 column 5"},
      {'"a\tb"', "control character"}, {'"\255"', "UTF-8"}, {"", "end of input"}, {"// c\n1", "unexpected character"},
      {string.rep("[", 2000), "nested too deeply"},
    }
    for _, c in ipairs(cases) do
      local e = U.error_of(json.decode, c[1])
      assert.truthy(e:find(c[2], 1, true), "for " .. c[1] .. ": " .. e)
    end
    assert.are.equal("é😀", json.decode('"\\u00e9\\ud83d\\ude00"'))
    assert.are.equal(json.null, json.decode("null"))
    assert.are.equal("integer", math.type(json.decode("12")))
    assert.are.equal("float", math.type(json.decode("1e2")))
  end)
end)
