-- Sends METHOD PATH with a body template where {n} becomes a unique counter
-- (args: METHOD PATH TEMPLATE [HEADER ...]); unique across threads and runs.
local tid = 0
local threads = {}

function setup(thread)
  table.insert(threads, thread)
  thread:set("tid", #threads)
end

function init(args)
  method, path, template = args[1], args[2], args[3]
  headers = {["Content-Type"] = "application/json"}
  for i = 4, #args do
    local k, v = string.match(args[i], "^([^:]+):%s*(.*)$")
    headers[k] = v
  end
  prefix = string.format("%d%04d", os.time(), tid)
  n = 0
end

function request()
  n = n + 1
  local body = string.gsub(template, "{n}", prefix .. "-" .. n)
  return wrk.format(method, path, headers, body)
end
