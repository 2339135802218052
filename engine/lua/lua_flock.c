/* Advisory whole-file locks (flock(2)) for claiming work across processes.
 *
 *   local lock, why = icl.core.lock_file(path)   -- lock object, or nil, "busy"
 *   lock:write(text)                             -- replace the file's content (who holds it)
 *   lock:fd()                                    -- descriptor, for spawn{inherit = {lock}}
 *   lock:release()                               -- close this process's descriptor
 *
 * A sweep claims a run directory with lock_file() before it starts a trainer
 * there. The lock belongs to the open file, not to the process: a child
 * spawned with {inherit = {lock}} holds it too, so the claim lasts while
 * either is alive and the kernel drops it when the last holder exits. There
 * are no stale locks to clean up after a crash. release() therefore only
 * closes this process's descriptor (flock's LOCK_UN would unlock the child's
 * copy as well). */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "lua_modules.h"
#include "lua_util.h"

#define ICL_LOCK_MT "icl.FileLock"

typedef struct lock_ud {
  int fd; /* -1 once released */
} lock_ud;

static lock_ud *check_lock(lua_State *L) { return (lock_ud *)luaL_checkudata(L, 1, ICL_LOCK_MT); }

static int l_lock_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  lock_ud *u = (lock_ud *)lua_newuserdatauv(L, sizeof *u, 0);
  u->fd = -1;
  luaL_setmetatable(L, ICL_LOCK_MT);
  int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) return luaL_error(L, "lock_file: cannot open %s: %s", path, strerror(errno));
  u->fd = fd; /* from here on __gc closes it, whatever happens */
  int rc;
  do rc = flock(fd, LOCK_EX | LOCK_NB);
  while (rc != 0 && errno == EINTR);
  if (rc != 0) {
    int e = errno;
    close(fd);
    u->fd = -1;
    if (e == EWOULDBLOCK) {
      lua_pushnil(L);
      lua_pushliteral(L, "busy");
      return 2;
    }
    return luaL_error(L, "lock_file: cannot lock %s: %s", path, strerror(e));
  }
  return 1;
}

static int live_fd(lua_State *L, lock_ud *u, const char *fname) {
  if (u->fd < 0) luaL_error(L, "%s: the lock was released", fname);
  return u->fd;
}

static int l_write(lua_State *L) {
  lock_ud *u = check_lock(L);
  size_t len;
  const char *s = luaL_checklstring(L, 2, &len);
  int fd = live_fd(L, u, "lock:write");
  if (ftruncate(fd, 0) != 0) return luaL_error(L, "lock:write: %s", strerror(errno));
  size_t off = 0;
  while (off < len) {
    ssize_t n = pwrite(fd, s + off, len - off, (off_t)off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return luaL_error(L, "lock:write: %s", n < 0 ? strerror(errno) : "short write");
    off += (size_t)n;
  }
  return 0;
}

static int l_fd(lua_State *L) {
  lock_ud *u = check_lock(L);
  lua_pushinteger(L, live_fd(L, u, "lock:fd"));
  return 1;
}

static int l_release(lua_State *L) {
  lock_ud *u = check_lock(L);
  if (u->fd >= 0) close(u->fd);
  u->fd = -1;
  return 0;
}

static int l_tostring(lua_State *L) {
  lock_ud *u = check_lock(L);
  if (u->fd >= 0) lua_pushfstring(L, "icl.FileLock(fd %d)", u->fd);
  else lua_pushliteral(L, "icl.FileLock(released)");
  return 1;
}

void icl_lua_open_flock(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  if (luaL_newmetatable(L, ICL_LOCK_MT)) {
    static const luaL_Reg methods[] = {{"write", l_write}, {"fd", l_fd}, {"release", l_release}, {NULL, NULL}};
    lua_newtable(L);
    luaL_setfuncs(L, methods, 0);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, l_release);
    lua_setfield(L, -2, "__close");
    lua_pushcfunction(L, l_tostring);
    lua_setfield(L, -2, "__tostring");
  }
  lua_pop(L, 1);
  lua_pushcfunction(L, l_lock_file);
  lua_setfield(L, module_idx, "lock_file");
}
