-- GET PATH with one API key after another: round-robin over a file of keys, one a line
-- (args: PATH KEYFILE). Each wrk thread starts at its own offset.
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("offset", #threads * 7919)
end

function init(args)
  path = args[1]
  keys = {}
  for line in io.lines(args[2]) do
    if #line > 0 then table.insert(keys, line) end
  end
  i = offset or 0
end

function request()
  i = i % #keys + 1
  return wrk.format("GET", path, {["Authorization"] = "Bearer " .. keys[i]})
end
