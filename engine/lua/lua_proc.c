/* Child processes for sweeps: spawn with an argv vector (never a shell
 * string), wait or poll, signal, sleep.
 *
 *   pid = icl.core.spawn(argv, {log = path, env = {NAME = "v", OTHER = false}, cwd = dir,
 *                               inherit = {lock, fd, ...}, die_with_parent = true,
 *                               new_group = true, stdin = "null" | "inherit"})
 *   st  = icl.core.waitpid(pid, {nohang = true})  -- nil while running, else {pid=, code=} or {pid=, signal=}
 *   ok, err = icl.core.kill(pid, "TERM")          -- signal name or number; negative pid: a process group
 *   icl.core.sleep(seconds)                       -- returns early when a signal arrives
 *
 * spawn: argv[1] is looked up in PATH (env.PATH when given) unless it has a
 * '/'. log: stdout and stderr are appended to that file (created 0644);
 * without it they are inherited. env: merged over this process's environment
 * (false removes a variable). inherit: descriptors (or objects with an fd()
 * method, such as icl.core.lock_file's locks) the child keeps; every other
 * descriptor above 2 is closed in the child. die_with_parent: the child gets
 * SIGTERM when this process dies, even by SIGKILL (Linux). new_group: the
 * child leads its own process group, so a terminal's Ctrl-C reaches only the
 * parent. stdin defaults to /dev/null. A program that cannot be started
 * (missing, not executable, bad cwd) raises an error here instead of
 * exiting with 127 later.
 *
 * Between fork and exec the child calls only async-signal-safe functions:
 * everything it needs (paths, argv, envp) is prepared in the parent. */
#define _GNU_SOURCE /* pipe2 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include "lua_modules.h"
#include "lua_util.h"

extern char **environ;

#define MAX_INHERIT 64

enum { STAGE_STDIO = 1, STAGE_CWD, STAGE_EXEC, STAGE_PARENT };

/* ---- helpers run in the parent ---------------------------------------------- */

/* The value of NAME in the env option table at idx, or in environ. */
static const char *env_lookup(lua_State *L, int env_idx, const char *name) {
  if (env_idx) {
    int t = lua_getfield(L, env_idx, name);
    if (t == LUA_TSTRING) {
      const char *v = lua_tostring(L, -1); /* anchored by the option table */
      lua_pop(L, 1);
      return v;
    }
    lua_pop(L, 1);
    if (t == LUA_TBOOLEAN) return NULL;
  }
  return getenv(name);
}

/* Resolve argv[1] to an executable path; the result is pushed on the stack. */
static const char *resolve_program(lua_State *L, const char *prog, int env_idx) {
  if (strchr(prog, '/')) {
    lua_pushstring(L, prog);
    return lua_tostring(L, -1);
  }
  const char *path = env_lookup(L, env_idx, "PATH");
  if (!path) path = "/usr/local/bin:/usr/bin:/bin";
  const char *p = path;
  for (;;) {
    const char *end = strchr(p, ':');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n == 0) lua_pushfstring(L, "./%s", prog);
    else lua_pushfstring(L, "%s/%s", lua_pushlstring(L, p, n), prog);
    if (n != 0) lua_remove(L, -2);
    const char *cand = lua_tostring(L, -1);
    struct stat st;
    if (stat(cand, &st) == 0 && S_ISREG(st.st_mode) && access(cand, X_OK) == 0) return cand;
    lua_pop(L, 1);
    if (!end) break;
    p = end + 1;
  }
  luaL_error(L, "spawn: %s: command not found in PATH", prog);
  return NULL;
}

/* argv table -> NULL-terminated array in a userdata pushed on the stack. The
 * strings stay alive through the argv table. */
static char **build_argv(lua_State *L, int idx) {
  lua_Integer n = luaL_len(L, idx);
  if (n < 1) luaL_error(L, "spawn: argv must be a non-empty list of strings");
  char **argv = (char **)lua_newuserdatauv(L, (size_t)(n + 1) * sizeof(char *), 0);
  for (lua_Integer i = 1; i <= n; i++) {
    if (lua_geti(L, idx, i) != LUA_TSTRING) luaL_error(L, "spawn: argv[%d] must be a string", (int)i);
    argv[i - 1] = (char *)lua_tostring(L, -1);
    lua_pop(L, 1);
  }
  argv[n] = NULL;
  return argv;
}

/* environ with the env option applied -> NULL-terminated array in a userdata
 * pushed on the stack; the "K=V" strings live in a table pushed below it. */
static char **build_envp(lua_State *L, int env_idx) {
  if (!env_idx) {
    lua_pushnil(L);
    lua_pushnil(L);
    return environ;
  }
  size_t n_env = 0;
  while (environ[n_env]) n_env++;
  size_t n_opt = 0;
  lua_pushnil(L);
  while (lua_next(L, env_idx)) {
    if (lua_type(L, -2) != LUA_TSTRING || (lua_type(L, -1) != LUA_TSTRING && !(lua_isboolean(L, -1) &&
                                                                                 !lua_toboolean(L, -1))))
      luaL_error(L, "spawn: env must map names to strings (or false to remove a variable)");
    if (strchr(lua_tostring(L, -2), '=')) luaL_error(L, "spawn: env name '%s' contains '='", lua_tostring(L, -2));
    n_opt++;
    lua_pop(L, 1);
  }
  lua_newtable(L); /* anchor for the K=V strings */
  int anchor = lua_gettop(L);
  char **envp = (char **)lua_newuserdatauv(L, (n_env + n_opt + 1) * sizeof(char *), 0);
  size_t k = 0;
  for (size_t i = 0; i < n_env; i++) {
    const char *eq = strchr(environ[i], '=');
    if (eq) {
      lua_pushlstring(L, environ[i], (size_t)(eq - environ[i]));
      int overridden = lua_rawget(L, env_idx) != LUA_TNIL;
      lua_pop(L, 1);
      if (overridden) continue;
    }
    envp[k++] = environ[i];
  }
  lua_pushnil(L);
  while (lua_next(L, env_idx)) {
    if (lua_type(L, -1) == LUA_TSTRING) {
      const char *s = lua_pushfstring(L, "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
      envp[k++] = (char *)s;
      lua_rawseti(L, anchor, (lua_Integer)k);
    }
    lua_pop(L, 1);
  }
  envp[k] = NULL;
  return envp;
}

static int cmp_int(const void *a, const void *b) {
  int x = *(const int *)a, y = *(const int *)b;
  return (x > y) - (x < y);
}

/* ---- the child ----------------------------------------------------------------- */

static void close_fds(int lo, int hi, int max_fd) {
  if (lo > hi) return;
#ifdef SYS_close_range
  if (syscall(SYS_close_range, (unsigned)lo, (unsigned)hi, 0u) == 0) return;
#endif
  if (hi > max_fd) hi = max_fd;
  for (int fd = lo; fd <= hi; fd++) close(fd);
}

typedef struct child_plan {
  const char *path, *cwd;
  char **argv, **envp;
  int log_fd, null_fd, err_fd;
  int keep[MAX_INHERIT + 1], n_keep; /* sorted, includes err_fd */
  int max_fd, die_with_parent, new_group;
  pid_t parent;
} child_plan;

static void child_fail(const child_plan *p, int stage) {
  int msg[2] = {stage, errno};
  ssize_t w = write(p->err_fd, msg, sizeof msg);
  (void)w;
  _exit(127);
}

static void run_child(const child_plan *p) {
#ifdef __linux__
  if (p->die_with_parent) {
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != p->parent) _exit(127); /* the parent died before prctl took effect */
  }
#endif
  if (p->new_group) setpgid(0, 0);
  if (p->null_fd >= 0 && dup2(p->null_fd, 0) < 0) child_fail(p, STAGE_STDIO);
  if (p->log_fd >= 0 && (dup2(p->log_fd, 1) < 0 || dup2(p->log_fd, 2) < 0)) child_fail(p, STAGE_STDIO);
  for (int i = 0; i < p->n_keep; i++)
    if (p->keep[i] != p->err_fd && fcntl(p->keep[i], F_SETFD, 0) < 0) child_fail(p, STAGE_STDIO);
  int lo = 3;
  for (int i = 0; i < p->n_keep; i++) {
    if (p->keep[i] < lo) continue;
    close_fds(lo, p->keep[i] - 1, p->max_fd);
    lo = p->keep[i] + 1;
  }
  close_fds(lo, INT_MAX, p->max_fd);
  if (p->cwd && chdir(p->cwd) != 0) child_fail(p, STAGE_CWD);
  execve(p->path, p->argv, p->envp);
  child_fail(p, STAGE_EXEC);
}

/* ---- spawn --------------------------------------------------------------------- */

static int opt_fd(lua_State *L, int idx) {
  if (lua_isinteger(L, idx)) return (int)lua_tointeger(L, idx);
  if (luaL_getmetafield(L, idx, "__index") == LUA_TNIL || lua_getfield(L, idx, "fd") == LUA_TNIL)
    luaL_error(L, "spawn: inherit must list descriptors or objects with an fd() method");
  lua_pushvalue(L, idx);
  lua_call(L, 1, 1);
  int fd = (int)luaL_checkinteger(L, -1);
  lua_pop(L, 2);
  return fd;
}

static int l_spawn(lua_State *L) {
  static const char *const allowed[] = {"log", "env", "cwd", "inherit", "die_with_parent", "new_group", "stdin", NULL};
  static const char *const stdin_modes[] = {"null", "inherit", NULL};
  luaL_checktype(L, 1, LUA_TTABLE);
  icl_lua_check_opts(L, 2, "spawn", allowed);
  int has_opts = lua_istable(L, 2);
  const char *log = icl_lua_opt_string(L, 2, "log", NULL, "spawn");
  const char *cwd = icl_lua_opt_string(L, 2, "cwd", NULL, "spawn");
  int die = icl_lua_opt_bool(L, 2, "die_with_parent", 0, "spawn");
  int group = icl_lua_opt_bool(L, 2, "new_group", 0, "spawn");
  int stdin_mode = icl_lua_opt_choice(L, 2, "stdin", "null", stdin_modes, "spawn");
  int env_idx = 0;
  if (has_opts && lua_getfield(L, 2, "env") != LUA_TNIL) {
    if (!lua_istable(L, -1)) luaL_error(L, "spawn: option 'env' must be a table");
    env_idx = lua_gettop(L);
  } else if (has_opts) {
    lua_pop(L, 1);
  }

  child_plan p;
  memset(&p, 0, sizeof p);
  p.log_fd = p.null_fd = p.err_fd = -1;
  p.cwd = cwd;
  p.die_with_parent = die;
  p.new_group = group;
  p.parent = getpid();
  lua_rawgeti(L, 1, 1);
  if (lua_type(L, -1) != LUA_TSTRING) luaL_error(L, "spawn: argv must be a non-empty list of strings");
  const char *prog = lua_tostring(L, -1);
  p.path = resolve_program(L, prog, env_idx);
  p.argv = build_argv(L, 1);
  p.envp = build_envp(L, env_idx);

  if (has_opts && lua_getfield(L, 2, "inherit") != LUA_TNIL) {
    if (!lua_istable(L, -1)) luaL_error(L, "spawn: option 'inherit' must be a list");
    int t = lua_gettop(L);
    lua_Integer n = luaL_len(L, t);
    if (n > MAX_INHERIT) luaL_error(L, "spawn: at most %d inherited descriptors", MAX_INHERIT);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_geti(L, t, i);
      int fd = opt_fd(L, lua_gettop(L));
      lua_pop(L, 1);
      if (fd < 3 || fcntl(fd, F_GETFD) < 0) luaL_error(L, "spawn: inherit[%d]: %d is not an open descriptor above 2",
                                                     (int)i, fd);
      p.keep[p.n_keep++] = fd;
    }
  }
  lua_pop(L, has_opts ? 1 : 0);

  struct rlimit rl;
  p.max_fd = (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur < 65536)
                 ? (int)rl.rlim_cur - 1
                 : 65535;

  /* descriptors the child needs, opened here so that errors are reported with context */
  int pipefd[2] = {-1, -1};
  if (log) {
    p.log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (p.log_fd < 0) return luaL_error(L, "spawn: cannot open log %s: %s", log, strerror(errno));
  }
  if (stdin_mode == 0 && (p.null_fd = open("/dev/null", O_RDONLY | O_CLOEXEC)) < 0) {
    int e = errno;
    if (p.log_fd >= 0) close(p.log_fd);
    return luaL_error(L, "spawn: cannot open /dev/null: %s", strerror(e));
  }
  if (pipe2(pipefd, O_CLOEXEC) != 0) {
    int e = errno;
    if (p.log_fd >= 0) close(p.log_fd);
    if (p.null_fd >= 0) close(p.null_fd);
    return luaL_error(L, "spawn: pipe: %s", strerror(e));
  }
  p.err_fd = pipefd[1];
  p.keep[p.n_keep++] = p.err_fd;
  qsort(p.keep, (size_t)p.n_keep, sizeof(int), cmp_int);

  pid_t pid = fork();
  if (pid == 0) run_child(&p);
  int fork_errno = errno;
  close(pipefd[1]);
  if (p.log_fd >= 0) close(p.log_fd);
  if (p.null_fd >= 0) close(p.null_fd);
  if (pid < 0) {
    close(pipefd[0]);
    return luaL_error(L, "spawn: fork: %s", strerror(fork_errno));
  }
  int msg[2];
  ssize_t got;
  do got = read(pipefd[0], msg, sizeof msg);
  while (got < 0 && errno == EINTR);
  close(pipefd[0]);
  if (got == (ssize_t)sizeof msg) {
    int st;
    while (waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    const char *what = msg[0] == STAGE_CWD ? "cannot change to directory" : msg[0] == STAGE_EXEC ? "cannot execute"
                                                                                                  : "cannot set up";
    const char *obj = msg[0] == STAGE_CWD ? cwd : msg[0] == STAGE_EXEC ? p.path : "stdio";
    return luaL_error(L, "spawn: %s %s: %s", what, obj, strerror(msg[1]));
  }
  lua_pushinteger(L, (lua_Integer)pid);
  return 1;
}

/* ---- wait, kill, sleep ----------------------------------------------------------- */

static int l_waitpid(lua_State *L) {
  static const char *const allowed[] = {"nohang", NULL};
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  icl_lua_check_opts(L, 2, "waitpid", allowed);
  int nohang = icl_lua_opt_bool(L, 2, "nohang", 0, "waitpid");
  int st = 0;
  pid_t r = waitpid(pid, &st, nohang ? WNOHANG : 0);
  if (r == 0 || (r < 0 && errno == EINTR)) return 0; /* still running, or a signal interrupted the wait */
  if (r < 0) return luaL_error(L, "waitpid(%d): %s", (int)pid, strerror(errno));
  lua_createtable(L, 0, 2);
  lua_pushinteger(L, r);
  lua_setfield(L, -2, "pid");
  if (WIFEXITED(st)) {
    lua_pushinteger(L, WEXITSTATUS(st));
    lua_setfield(L, -2, "code");
  } else if (WIFSIGNALED(st)) {
    lua_pushinteger(L, WTERMSIG(st));
    lua_setfield(L, -2, "signal");
  }
  return 1;
}

static const struct {
  const char *name;
  int sig;
} signals[] = {{"TERM", SIGTERM}, {"KILL", SIGKILL}, {"INT", SIGINT},   {"HUP", SIGHUP},
               {"USR1", SIGUSR1}, {"USR2", SIGUSR2}, {"STOP", SIGSTOP}, {"CONT", SIGCONT}};

static int l_kill(lua_State *L) {
  pid_t pid = (pid_t)luaL_checkinteger(L, 1);
  int sig = SIGTERM;
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *name = lua_tostring(L, 2);
    if (strncmp(name, "SIG", 3) == 0) name += 3;
    sig = -1;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++)
      if (strcmp(name, signals[i].name) == 0) sig = signals[i].sig;
    if (sig < 0) return luaL_error(L, "kill: unknown signal '%s'", lua_tostring(L, 2));
  } else if (!lua_isnoneornil(L, 2)) {
    sig = (int)luaL_checkinteger(L, 2);
  }
  if (pid == 0 || pid == -1) return luaL_error(L, "kill: refusing pid %d (this group / every process)", (int)pid);
  if (kill(pid, sig) != 0) {
    lua_pushnil(L);
    lua_pushstring(L, strerror(errno));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int l_sleep(lua_State *L) {
  double s = luaL_checknumber(L, 1);
  if (s > 0) {
    struct timespec ts = {(time_t)s, (long)((s - (double)(time_t)s) * 1e9)};
    nanosleep(&ts, NULL); /* an interrupted sleep returns early so a pending Lua hook (Ctrl-C) runs */
  }
  return 0;
}

void icl_lua_open_proc(lua_State *L, int module_idx) {
  static const luaL_Reg fns[] = {
      {"spawn", l_spawn}, {"waitpid", l_waitpid}, {"kill", l_kill}, {"sleep", l_sleep}, {NULL, NULL}};
  module_idx = lua_absindex(L, module_idx);
  lua_pushvalue(L, module_idx);
  luaL_setfuncs(L, fns, 0);
  lua_pop(L, 1);
}
