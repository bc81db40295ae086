-- Replays pre-built raw HTTP requests from a file (args: FILE SEPARATOR NTHREADS).
-- Thread i takes requests i, i+N, i+2N, ... so threads never send the same one.
local tid = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads - 1)
end

function init(args)
  local sep, nthreads = args[2], tonumber(args[3])
  local f = assert(io.open(args[1], "rb"))
  local data = f:read("*a")
  f:close()
  reqs = {}
  local i, pos = 0, 1
  while true do
    local s, e = string.find(data, sep, pos, true)
    if not s then break end
    if i % nthreads == tid then table.insert(reqs, string.sub(data, pos, s - 1)) end
    i = i + 1
    pos = e + 1
  end
  n = 0
end

function request()
  n = n + 1
  return reqs[(n - 1) % #reqs + 1]
end
