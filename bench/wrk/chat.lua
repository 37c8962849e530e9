-- POST /v1/chat/completions, non-streamed. See common.lua for the environment it reads.
local dir = debug.getinfo(1, "S").source:match("^@(.*/)") or "./"
stream = false
dofile(dir .. "common.lua")
