-- qb/args.lua — recipe arguments as key=value pairs: `quantbench run recipe.lua model=x.gguf ctx=128`.
-- parse(list, defaults) returns a table with every default, overridden by the arguments;
-- numbers in defaults make the argument a number (an error names the bad one), booleans
-- accept 1/0/true/false/yes/no, and a key the recipe does not know is an error listing the
-- known keys (so typos do not pass silently). "help" prints the defaults and stops the recipe
-- (qb.exit, a clean exit).
local M = {}

local function keys_of(t)
  local ks = {}
  for k in pairs(t) do ks[#ks + 1] = k end
  table.sort(ks)
  return ks
end

function M.parse(list, defaults, doc)
  local out = {}
  for k, v in pairs(defaults) do out[k] = v end
  for i = 1, #(list or {}) do
    local a = list[i]
    if a == "help" or a == "--help" or a == "-h" then
      if doc then print(doc) end
      print("arguments (key=value), with their defaults:")
      for _, k in ipairs(keys_of(defaults)) do print(string.format("  %-12s %s", k, tostring(defaults[k]))) end
      qb.exit(0)
    end
    local k, v = string.match(a, "^([%w_]+)=(.*)$")
    if not k then error(string.format("argument '%s' is not key=value (try help)", a), 0) end
    local d = defaults[k]
    if d == nil then
      error(string.format("unknown argument '%s' (known: %s)", k, table.concat(keys_of(defaults), ", ")), 0)
    end
    if type(d) == "number" then
      local n = tonumber(v)
      if not n then error(string.format("argument %s=%s: a number is expected", k, v), 0) end
      out[k] = n
    elseif type(d) == "boolean" then
      if v == "1" or v == "true" or v == "yes" then out[k] = true
      elseif v == "0" or v == "false" or v == "no" then out[k] = false
      else error(string.format("argument %s=%s: true or false expected", k, v), 0) end
    else
      out[k] = v
    end
  end
  return out
end

-- The shared models folder ($QB_MODELS, default ../shared/models) joined with a relative path.
function M.models(rel)
  return (qb.getenv("QB_MODELS") or "../shared/models") .. "/" .. rel
end

-- Split "a,b,c" into a list.
function M.list(s)
  local t = {}
  for item in string.gmatch(s, "[^,]+") do t[#t + 1] = item end
  return t
end

return M
