-- tap.lua — a small assertion helper for Lua tests run by `quantbench run`: each check prints a
-- TAP line "ok N - name" or "not ok N - name" with the reason on "#" lines, and a failing check
-- does not stop the script. done() prints the count and raises when something failed, so the
-- runner exits non-zero.
local T = { n = 0, failed = 0 }

local function report(pass, name, why)
  T.n = T.n + 1
  if pass then
    print(string.format("ok %d - %s", T.n, name))
  else
    T.failed = T.failed + 1
    print(string.format("not ok %d - %s", T.n, name))
    if why then print("#   " .. tostring(why):gsub("\n", "\n#   ")) end
  end
  return pass
end

function T.ok(v, name, why) return report(v and true or false, name, why) end

function T.eq(a, b, name)
  return report(a == b, name, string.format("got %s, expected %s", tostring(a), tostring(b)))
end

-- |a - b| <= tol·|b| (relative)
function T.near(a, b, rel, name)
  local pass = type(a) == "number" and math.abs(a - b) <= rel * math.abs(b)
  return report(pass, name, string.format("got %s, expected %s within %g%%", tostring(a), tostring(b), rel * 100))
end

function T.lt(a, b, name)
  return report(type(a) == "number" and a < b, name, string.format("%s is not below %s", tostring(a), tostring(b)))
end

-- fn must raise an error whose message matches the Lua pattern pat
function T.raises(fn, pat, name)
  local okk, err = pcall(fn)
  if okk then return report(false, name, "no error raised") end
  return report(string.find(tostring(err), pat) ~= nil, name, "error was: " .. tostring(err))
end

-- run fn as a group of checks; an error inside counts as one failure instead of stopping the file
function T.section(name, fn)
  local okk, err = pcall(fn)
  if not okk then report(false, name .. " (raised)", err) end
end

function T.done()
  print(string.format("# %d checks, %d failed", T.n, T.failed))
  if T.failed > 0 then error(string.format("%d of %d checks failed", T.failed, T.n), 0) end
end

return T
