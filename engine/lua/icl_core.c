/* luaopen_icl_core: the C half of the `icl` Lua module. lua/icl/init.lua
 * requires it and adds the Lua half (config, training, analyses). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lua_util.h"
#include "core/backend.h"
#include "lua_modules.h"

static int l_set_num_threads(lua_State *L) {
  icl_set_num_threads(icl_lua_ctx(L), (int)luaL_checkinteger(L, 1));
  return 0;
}

static int l_num_threads(lua_State *L) {
  lua_pushinteger(L, icl_lua_ctx(L)->num_threads);
  return 1;
}

static int l_cuda_available(lua_State *L) {
  lua_pushboolean(L, icl_cuda_available(icl_lua_ctx(L)));
  return 1;
}

static int l_cuda_compiled(lua_State *L) {
  lua_pushboolean(L, icl_cuda_compiled());
  return 1;
}

/* nil when a CUDA device can be used, else why not (the backend's reason:
 * no device, a driver too old, a build without CUDA), for error messages */
static int l_cuda_why(lua_State *L) {
  icl_ctx *ctx = icl_lua_ctx(L);
  if (icl_cuda_available(ctx)) {
    lua_pushnil(L);
    return 1;
  }
  int code = ctx->errcode; /* a question, not a request: the caller's error stays */
  char msg[ICL_ERRMSG_MAX];
  memcpy(msg, ctx->errmsg, sizeof msg);
  if (icl_backend_get(ctx, ICL_CUDA))
    lua_pushstring(L, "the device started only on the second try");
  else
    lua_pushstring(L, ctx->errmsg[0] ? ctx->errmsg : "unknown reason");
  ctx->errcode = code;
  memcpy(ctx->errmsg, msg, sizeof msg);
  return 1;
}

static int l_set_default_device(lua_State *L) {
  static const char *const devs[] = {"cpu", "cuda", NULL};
  int d = luaL_checkoption(L, 1, NULL, devs);
  if (d == 1 && !icl_backend_get(icl_lua_ctx(L), ICL_CUDA)) return icl_lua_raise(L);
  icl_lua_set_default_device(L, d == 1 ? ICL_CUDA : ICL_CPU);
  return 0;
}

static int l_default_device(lua_State *L) {
  lua_pushstring(L, icl_device_name(icl_lua_default_device(L)));
  return 1;
}

static int l_seed(lua_State *L) {
  icl_ctx *ctx = icl_lua_ctx(L);
  ctx->rng_seed = (uint64_t)luaL_checkinteger(L, 1);
  ctx->rng_stream = 0;
  return 0;
}

static int l_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)icl_lua_ctx(L)->cpu_bytes);
  return 1;
}

static int l_strict_fp32(lua_State *L) {
  icl_lua_ctx(L)->strict_fp32 = lua_toboolean(L, 1);
  return 0;
}

/* monotonic wall clock in seconds, for benchmarks and progress lines */
static int l_wall_time(lua_State *L) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  lua_pushnumber(L, (lua_Number)ts.tv_sec + 1e-9 * (lua_Number)ts.tv_nsec);
  return 1;
}

/* isatty(fd): progress lines redraw in place only on a terminal */
static int l_isatty(lua_State *L) {
  lua_pushboolean(L, isatty((int)luaL_optinteger(L, 1, 1)));
  return 1;
}

static int l_getpid(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)getpid());
  return 1;
}

/* pid_alive(pid): a stale run lock is one whose process is gone */
static int l_pid_alive(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  lua_pushboolean(L, pid > 0 && (kill(pid, 0) == 0 || errno == EPERM));
  return 1;
}

static int l_hostname(lua_State *L) {
  char buf[256] = "";
  gethostname(buf, sizeof buf - 1);
  lua_pushstring(L, buf);
  return 1;
}

static const luaL_Reg fns[] = {{"wall_time", l_wall_time}, {"pid_alive", l_pid_alive}, {"hostname", l_hostname}, {"isatty", l_isatty}, {"getpid", l_getpid},{"set_num_threads", l_set_num_threads},
                               {"num_threads", l_num_threads},
                               {"cuda_available", l_cuda_available},
                               {"cuda_compiled", l_cuda_compiled},
                               {"cuda_why", l_cuda_why},
                               {"set_default_device", l_set_default_device},
                               {"default_device", l_default_device},
                               {"manual_seed", l_seed},
                               {"cpu_bytes", l_memory},
                               {"set_strict_fp32", l_strict_fp32},
                               {NULL, NULL}};

int luaopen_icl_core(lua_State *L);
int luaopen_icl_core(lua_State *L) {
  icl_lua_ctx(L); /* create the context before any tensor exists */
  lua_newtable(L);
  luaL_setfuncs(L, fns, 0);
  icl_lua_open_tensor(L, -1);
  icl_lua_open_extensions(L, -1);
  return 1;
}
