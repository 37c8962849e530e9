-- POST /v1/chat/completions with "stream": true. See common.lua for the environment it reads.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
stream = true
dofile(dir .. "common.lua")
