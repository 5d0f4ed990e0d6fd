-- wrk script of ./scripts/bench-server.sh: one operation against one server, chosen by
-- environment variables (wrk passes no arguments to a script's threads):
--   BENCH_TARGET  ours | pg | emulator  (cloudbase-auth serve on SQLite, on PostgreSQL behind
--                 nginx, or the Firebase Auth Emulator)
--   BENCH_OP      signin | refresh | me
--   BENCH_POOL    directory of the token pool: one file per sign-in thread
--                 (pool-<thread>.tsv, lines "refresh_token<TAB>access_token")
--   BENCH_ENV     env id (ours) / BENCH_KEY API key (emulator)
--   BENCH_RECYCLE 1: a refresh reply's new refresh token joins the queue (each token is
--                 still presented exactly once; rotation hands out a fresh one)
--
-- signin  writes every reply's tokens to this thread's pool file (the pool the refresh
--         and me runs draw from).
-- refresh presents every pooled refresh token at most once. If a thread's queue runs dry
--         it counts that in "exhausted" and the script reports it, so a figure measured
--         on reused tokens is never printed as valid.
-- me      cycles through the pooled access tokens (reads may repeat).

local target = os.getenv("BENCH_TARGET") or "ours"
local op = os.getenv("BENCH_OP") or "signin"
local pool_dir = os.getenv("BENCH_POOL") or "."
local env_id = os.getenv("BENCH_ENV") or "bench-env"
local api_key = os.getenv("BENCH_KEY") or "fake-api-key"
local recycle = os.getenv("BENCH_RECYCLE") == "1"

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state).
local queue, head, tail = {}, 1, 0
local access, access_n, access_i = {}, 0, 0
local out, out_lines = nil, 0
-- Globals: done() reads them with thread:get.
exhausted, bad_replies = 0, 0

local function push(token)
  tail = tail + 1
  queue[tail] = token
end

local function pop()
  if head > tail then
    return nil
  end
  local token = queue[head]
  queue[head] = nil
  head = head + 1
  return token
end

-- Loads the pool files whose index is this thread's id modulo the thread count, so the
-- threads of one run share no token.
local function load_pool(nthreads)
  local file = 0
  -- Bounded: at most 64 pool files.
  while file < 64 do
    local f = io.open(string.format("%s/pool-%d.tsv", pool_dir, file), "r")
    if not f then
      break
    end
    if file % nthreads == id then
      for line in f:lines() do
        local r, a = line:match("^([^\t]+)\t([^\t]+)$")
        if r then
          push(r)
          access_n = access_n + 1
          access[access_n] = a
        end
      end
    end
    f:close()
    file = file + 1
  end
end

function init(args)
  local nthreads = tonumber(os.getenv("BENCH_THREADS") or "2")
  if op == "signin" then
    out = io.open(string.format("%s/pool-%d.tsv", pool_dir, id), "a")
    out:setvbuf("full", 65536)
  else
    load_pool(nthreads)
  end
  wrk.headers["Content-Type"] = (op == "refresh" and target == "emulator")
    and "application/x-www-form-urlencoded" or "application/json"
end

local function signin_request()
  if target ~= "emulator" then
    return wrk.format("POST", "/auth/v1/signin/anonymously?client_id=" .. env_id, nil, "{}")
  end
  return wrk.format("POST", "/identitytoolkit.googleapis.com/v1/accounts:signUp?key=" .. api_key,
    nil, '{"returnSecureToken":true}')
end

local function refresh_request(token)
  if target ~= "emulator" then
    local body = '{"client_id":"' .. env_id .. '","grant_type":"refresh_token","refresh_token":"'
      .. token .. '"}'
    return wrk.format("POST", "/auth/v1/token?client_id=" .. env_id, nil, body)
  end
  return wrk.format("POST", "/securetoken.googleapis.com/v1/token?key=" .. api_key, nil,
    "grant_type=refresh_token&refresh_token=" .. token)
end

local function me_request(token)
  if target ~= "emulator" then
    return wrk.format("GET", "/auth/v1/user/me", { ["Authorization"] = "Bearer " .. token }, nil)
  end
  return wrk.format("POST", "/identitytoolkit.googleapis.com/v1/accounts:lookup?key=" .. api_key,
    nil, '{"idToken":"' .. token .. '"}')
end

function request()
  if op == "signin" then
    return signin_request()
  elseif op == "refresh" then
    local token = pop()
    if not token then
      exhausted = exhausted + 1
      token = "exhausted"
    end
    return refresh_request(token)
  else
    access_i = access_i % access_n + 1
    return me_request(access[access_i])
  end
end

local function field(body, a, b)
  return body:match('"' .. a .. '"%s*:%s*"([^"]+)"') or body:match('"' .. b .. '"%s*:%s*"([^"]+)"')
end

function response(status, headers, body)
  if status ~= 200 then
    bad_replies = bad_replies + 1
    return
  end
  if op == "signin" then
    local r = field(body, "refresh_token", "refreshToken")
    local a = field(body, "access_token", "idToken")
    if r and a then
      out:write(r, "\t", a, "\n")
      out_lines = out_lines + 1
      -- Whole lines reach the file every 256 sign-ins; the last few may stay buffered.
      if out_lines % 256 == 0 then
        out:flush()
      end
    end
  elseif op == "refresh" and recycle then
    local r = field(body, "refresh_token", "refreshToken")
    if r then
      push(r)
    end
  end
end

function done(summary, latency, requests)
  local dry, bad = 0, 0
  for _, t in ipairs(threads) do
    dry = dry + (t:get("exhausted") or 0)
    bad = bad + (t:get("bad_replies") or 0)
  end
  io.write(string.format("BENCH_EXHAUSTED %d\n", dry))
  io.write(string.format("BENCH_NON200 %d\n", bad))
end
