/* Lua binding of engine/io: YAML loading (with positions), safetensors, atomic writes and small
 * POSIX file helpers. Exposed as icl.core._io; lua/icl/io.lua and lua/icl/yaml.lua build the
 * public tables on top.
 *
 * YAML -> Lua: mappings become tables with string keys, sequences arrays, nulls the sentinel
 * `null` (a light userdata NULL, the same value as icl.io.null and icl.json.null), so arrays keep
 * their length. With positions on (the default) every mapping and sequence gets a metatable
 *   { __icl_pos = { [key or index] = "file:line" }, __icl_where = "file:line" }
 * that pairs(), # and next() never see; icl.yaml.pos(t, k) reads it. */
#include <stdlib.h>
#include <string.h>

#include "io/fileio.h"
#include "io/safetensors.h"
#include "io/yaml_load.h"
#include "lua_modules.h"
#include "lua_util.h"

/* Errors of this module start with the file they are about, so they are raised without the
 * "chunk:line:" prefix luaL_error would add. */
static int raise_plain(lua_State *L) {
  lua_pushstring(L, icl_last_error(icl_lua_ctx(L)));
  return lua_error(L);
}

static void check_rc(lua_State *L, int rc) {
  if (rc) raise_plain(L);
}

/* ---- YAML ------------------------------------------------------------------------------------ */

static void push_pos(lua_State *L, const char *file, int line) { lua_pushfstring(L, "%s:%d", file, line); }

/* memo_idx: table node-pointer -> Lua value, so an alias shares its anchor's table */
static void push_ynode(lua_State *L, const icl_ynode *nd, int memo_idx, int positions) {
  luaL_checkstack(L, 8, "YAML nesting");
  switch (nd->kind) {
  case ICL_Y_NULL: lua_pushlightuserdata(L, NULL); return;
  case ICL_Y_BOOL: lua_pushboolean(L, nd->b); return;
  case ICL_Y_INT: lua_pushinteger(L, (lua_Integer)nd->i); return;
  case ICL_Y_FLOAT: lua_pushnumber(L, nd->f); return;
  case ICL_Y_STR: lua_pushlstring(L, nd->str, nd->len); return;
  default: break;
  }
  if (lua_rawgetp(L, memo_idx, nd) != LUA_TNIL) return;
  lua_pop(L, 1);
  int seq = nd->kind == ICL_Y_SEQ;
  lua_createtable(L, seq ? nd->n : 0, seq ? 0 : nd->n);
  int t = lua_gettop(L);
  lua_pushvalue(L, t);
  lua_rawsetp(L, memo_idx, nd);
  int pos = 0;
  if (positions) {
    lua_createtable(L, 0, 2); /* metatable */
    lua_createtable(L, seq ? nd->n : 0, seq ? 0 : nd->n);
    pos = lua_gettop(L);
  }
  for (int i = 0; i < nd->n; i++) {
    const icl_yentry *e = &nd->e[i];
    if (seq) lua_pushinteger(L, i + 1);
    else lua_pushstring(L, e->key);
    if (positions) {
      lua_pushvalue(L, -1);
      push_pos(L, e->file, e->line);
      lua_rawset(L, pos);
    }
    push_ynode(L, e->value, memo_idx, positions);
    lua_rawset(L, t);
  }
  if (positions) {
    lua_setfield(L, -2, "__icl_pos");
    push_pos(L, nd->file, nd->line);
    lua_setfield(L, -2, "__icl_where");
    lua_setmetatable(L, t);
  }
}

static const char *const yaml_opts[] = {"positions", "includes", "name", NULL};

typedef struct yjob {
  icl_ydoc *doc;
  int positions;
} yjob;

static int convert_protected(lua_State *L) {
  yjob *j = lua_touserdata(L, 1);
  lua_newtable(L);
  push_ynode(L, j->doc->root, lua_gettop(L), j->positions);
  return 1;
}

static int finish_doc(lua_State *L, icl_ydoc *doc, int positions) {
  if (!doc) return raise_plain(L);
  yjob j = {doc, positions};
  lua_pushcfunction(L, convert_protected);
  lua_pushlightuserdata(L, &j);
  int rc = lua_pcall(L, 1, 1, 0);
  icl_yaml_free(doc);
  if (rc != LUA_OK) return lua_error(L);
  return 1;
}

static int l_yaml_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  icl_lua_check_opts(L, 2, "yaml.load", yaml_opts);
  int positions = icl_lua_opt_bool(L, 2, "positions", 1, "yaml.load");
  icl_yaml_opts o = icl_yaml_defaults();
  o.includes = icl_lua_opt_bool(L, 2, "includes", 1, "yaml.load");
  return finish_doc(L, icl_yaml_load_file(icl_lua_ctx(L), path, &o), positions);
}

static int l_yaml_parse(lua_State *L) {
  size_t n;
  const char *text = luaL_checklstring(L, 1, &n);
  icl_lua_check_opts(L, 2, "yaml.parse", yaml_opts);
  int positions = icl_lua_opt_bool(L, 2, "positions", 1, "yaml.parse");
  const char *name = icl_lua_opt_string(L, 2, "name", "<string>", "yaml.parse");
  icl_yaml_opts o = icl_yaml_defaults();
  o.includes = icl_lua_opt_bool(L, 2, "includes", 1, "yaml.parse");
  return finish_doc(L, icl_yaml_load_string(icl_lua_ctx(L), text, n, name, &o), positions);
}

/* ---- safetensors ----------------------------------------------------------------------------- */

static int l_save(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  if (!lua_isnoneornil(L, 3)) luaL_checktype(L, 3, LUA_TTABLE);
  lua_settop(L, 3); /* index 3 stays the metadata (or nil) below the scratch userdata */
  int n = 0, nm = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    lua_pop(L, 1);
    n++;
  }
  if (!lua_isnoneornil(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      lua_pop(L, 1);
      nm++;
    }
  }
  /* arrays live in userdata so that a Lua error cannot leak them */
  const char **names = lua_newuserdatauv(L, sizeof *names * (size_t)(n + 1), 0);
  const icl_tensor **ts = lua_newuserdatauv(L, sizeof *ts * (size_t)(n + 1), 0);
  const char **mk = lua_newuserdatauv(L, sizeof *mk * (size_t)(nm + 1), 0);
  const char **mv = lua_newuserdatauv(L, sizeof *mv * (size_t)(nm + 1), 0);
  int i = 0;
  lua_pushnil(L);
  while (lua_next(L, 2)) {
    if (lua_type(L, -2) != LUA_TSTRING)
      return luaL_error(L, "io.save: tensor names must be strings, got %s", luaL_typename(L, -2));
    if (!icl_lua_is_tensor(L, -1))
      return luaL_error(L, "io.save: '%s' is a %s, not a tensor", lua_tostring(L, -2), luaL_typename(L, -1));
    if (i >= n) return luaL_error(L, "io.save: the tensor table changed while saving");
    names[i] = lua_tostring(L, -2); /* the key stays alive in the table */
    ts[i] = icl_lua_check_tensor(L, -1);
    i++;
    lua_pop(L, 1);
  }
  n = i;
  i = 0;
  if (!lua_isnoneornil(L, 3)) {
    lua_pushnil(L);
    while (lua_next(L, 3)) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "io.save: metadata must map strings to strings (key '%s' holds a %s)",
                          lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : luaL_typename(L, -2),
                          luaL_typename(L, -1));
      if (i >= nm) return luaL_error(L, "io.save: the metadata table changed while saving");
      mk[i] = lua_tostring(L, -2);
      mv[i] = lua_tostring(L, -1);
      i++;
      lua_pop(L, 1);
    }
    nm = i;
  }
  check_rc(L, icl_safetensors_save(icl_lua_ctx(L), path, n, names, ts, nm, mk, mv));
  return 0;
}

static void push_meta(lua_State *L, const icl_st_file *f) {
  lua_createtable(L, 0, f->nmeta);
  for (int i = 0; i < f->nmeta; i++) {
    if (!strncmp(f->mkeys[i], "icl.checksum", 12) || !strcmp(f->mkeys[i], "icl.index_checksum")) continue;
    lua_pushstring(L, f->mvals[i]);
    lua_setfield(L, -2, f->mkeys[i]);
  }
}

static void push_info(lua_State *L, const icl_st_file *f) {
  lua_createtable(L, 0, 2);
  lua_pushboolean(L, f->checksummed);
  lua_setfield(L, -2, "checksummed");
  lua_createtable(L, 0, f->n);
  for (int i = 0; i < f->n; i++) {
    const icl_st_tensor *t = &f->tensors[i];
    lua_createtable(L, 0, 3);
    lua_pushstring(L, t->dtype == ICL_I32 ? "I32" : "F32");
    lua_setfield(L, -2, "dtype");
    icl_lua_push_shape(L, t->ndim, t->shape);
    lua_setfield(L, -2, "shape");
    lua_setfield(L, -2, t->name);
  }
  lua_setfield(L, -2, "tensors");
}

typedef struct stbox {
  icl_st_file *f;
} stbox;

static int stbox_gc(lua_State *L) {
  stbox *b = luaL_checkudata(L, 1, "icl.StFile");
  if (b->f) icl_safetensors_free(icl_lua_ctx(L), b->f);
  b->f = NULL;
  return 0;
}

static stbox *new_box(lua_State *L) {
  stbox *b = lua_newuserdatauv(L, sizeof *b, 0);
  b->f = NULL;
  if (luaL_newmetatable(L, "icl.StFile")) {
    lua_pushcfunction(L, stbox_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_setmetatable(L, -2);
  return b;
}

static const char *const load_opts[] = {"device", "require_checksum", NULL};

/* load(path, {device=, require_checksum=}) -> tensors, metadata, info */
static int l_load(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  icl_lua_check_opts(L, 2, "io.load", load_opts);
  icl_device dev = icl_lua_opt_device(L, 2, "io.load");
  int req = icl_lua_opt_bool(L, 2, "require_checksum", 0, "io.load");
  stbox *b = new_box(L); /* frees the file if a Lua error interrupts below */
  b->f = icl_safetensors_load(icl_lua_ctx(L), path, dev, req ? ICL_ST_REQUIRE_CHECKSUM : 0);
  if (!b->f) return raise_plain(L);
  lua_createtable(L, 0, b->f->n);
  for (int i = 0; i < b->f->n; i++) {
    icl_tensor *t = b->f->tensors[i].t;
    b->f->tensors[i].t = NULL;
    icl_lua_push_tensor(L, t);
    lua_setfield(L, -2, b->f->tensors[i].name);
  }
  push_meta(L, b->f);
  push_info(L, b->f);
  return 3;
}

/* read_metadata(path) -> metadata, info (tensors: name -> {dtype, shape}) */
static int l_read_metadata(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  stbox *b = new_box(L);
  b->f = icl_safetensors_load(icl_lua_ctx(L), path, ICL_CPU, ICL_ST_HEADER_ONLY);
  if (!b->f) return raise_plain(L);
  push_meta(L, b->f);
  push_info(L, b->f);
  return 2;
}

/* ---- files ----------------------------------------------------------------------------------- */

static int l_write_file_atomic(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  size_t n;
  const char *s = luaL_checklstring(L, 2, &n);
  check_rc(L, icl_write_file_atomic(icl_lua_ctx(L), path, s, n));
  return 0;
}

static int l_read_file(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  char *data;
  size_t n;
  check_rc(L, icl_read_file(icl_lua_ctx(L), path, &data, &n));
  lua_pushlstring(L, data, n); /* may raise on OOM: data would leak, acceptable for that case */
  free(data);
  return 1;
}

static int l_file_exists(lua_State *L) {
  int dir = 0;
  int ok = icl_path_exists(luaL_checkstring(L, 1), &dir);
  lua_pushboolean(L, ok);
  if (ok) lua_pushstring(L, dir ? "directory" : "file");
  else lua_pushnil(L);
  return 2;
}

static int l_mkdir_p(lua_State *L) {
  check_rc(L, icl_mkdir_p(icl_lua_ctx(L), luaL_checkstring(L, 1)));
  return 0;
}

static int l_list_dir(lua_State *L) {
  char **names;
  int n;
  check_rc(L, icl_list_dir(icl_lua_ctx(L), luaL_checkstring(L, 1), &names, &n));
  lua_createtable(L, n, 0);
  for (int i = 0; i < n; i++) {
    lua_pushstring(L, names[i]);
    lua_rawseti(L, -2, i + 1);
  }
  icl_free_names(names, n);
  return 1;
}

static int l_remove(lua_State *L) {
  check_rc(L, icl_remove(icl_lua_ctx(L), luaL_checkstring(L, 1)));
  return 0;
}

static int l_rename(lua_State *L) {
  check_rc(L, icl_rename(icl_lua_ctx(L), luaL_checkstring(L, 1), luaL_checkstring(L, 2)));
  return 0;
}

static const luaL_Reg io_fns[] = {{"yaml_load", l_yaml_load},
                                  {"yaml_parse", l_yaml_parse},
                                  {"save", l_save},
                                  {"load", l_load},
                                  {"read_metadata", l_read_metadata},
                                  {"write_file_atomic", l_write_file_atomic},
                                  {"read_file", l_read_file},
                                  {"file_exists", l_file_exists},
                                  {"mkdir_p", l_mkdir_p},
                                  {"list_dir", l_list_dir},
                                  {"remove", l_remove},
                                  {"rename", l_rename},
                                  {NULL, NULL}};

void icl_lua_open_io(lua_State *L, int module_idx) {
  module_idx = lua_absindex(L, module_idx);
  lua_newtable(L);
  luaL_setfuncs(L, io_fns, 0);
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, module_idx, "_io");
}
