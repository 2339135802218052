/* YAML configuration files through libyaml, into a small typed tree.
 *
 * What it adds to plain YAML (see docs/config.md, "YAML dialect"):
 *  - scalars are typed YAML 1.1-ish: null (~, null, empty), bools (true/false only), ints (decimal,
 *    0x, 0o), floats (with or without a dot: 3.0e-4, 1e-05, .inf, .nan), else strings; quoted and
 *    block scalars stay strings; the tags !!str !!int !!float !!bool !!null force a type;
 *  - `!include path` on a scalar is replaced by the root of that file, path relative to the
 *    including file's directory; nested includes work and cycles are an error;
 *  - merge keys (`<<: map` or `<<: [maps]`, also with `<<: !include file`): the merged maps'
 *    entries are added unless the mapping has them itself;
 *  - duplicate keys are an error; every node and every mapping entry knows its file and line.
 * Anchors and aliases work (an alias shares the anchored node: the tree is a DAG). Errors name
 * the file, the line and the key path: "a.yaml:5: patch: !include 'p.yaml': cannot open ...". */
#ifndef ICL_YAML_LOAD_H
#define ICL_YAML_LOAD_H

#include <stddef.h>
#include <stdint.h>

#include "core/context.h"

typedef enum icl_ykind { ICL_Y_NULL, ICL_Y_BOOL, ICL_Y_INT, ICL_Y_FLOAT, ICL_Y_STR, ICL_Y_SEQ, ICL_Y_MAP } icl_ykind;

typedef struct icl_ynode icl_ynode;

/* One sequence item or mapping entry. For a mapping entry, key/file/line say where the key was
 * written (for entries merged in with `<<`, in the merged file). */
typedef struct icl_yentry {
  const char *key; /* NUL-terminated; NULL in sequences */
  const char *file;
  int line;
  icl_ynode *value;
} icl_yentry;

struct icl_ynode {
  icl_ykind kind;
  const char *file; /* display path of the file the node was written in */
  int line, col;    /* 1-based */
  int b;            /* ICL_Y_BOOL */
  int64_t i;        /* ICL_Y_INT */
  double f;         /* ICL_Y_FLOAT */
  const char *str;  /* ICL_Y_STR (NUL-terminated; may contain NULs, see len) */
  size_t len;
  int n, cap; /* ICL_Y_SEQ / ICL_Y_MAP: entries */
  icl_yentry *e;
};

typedef struct icl_yaml_opts {
  int includes;        /* 1: honour !include (default); 0: it is an error */
  int max_depth;       /* nesting limit over all included files (default 256) */
  int max_includes;    /* include nesting limit (default 32) */
  int64_t max_nodes;   /* total node limit (default 50 million) */
} icl_yaml_opts;

typedef struct icl_ydoc {
  icl_ynode *root; /* a NULL-kind node for an empty file */
  void *priv;
} icl_ydoc;

icl_yaml_opts icl_yaml_defaults(void);
/* path: the file to read; it is also the display name in positions and errors. */
icl_ydoc *icl_yaml_load_file(icl_ctx *ctx, const char *path, const icl_yaml_opts *opts);
/* name: display name; includes resolve against dirname(name) ("." when name has no slash). */
icl_ydoc *icl_yaml_load_string(icl_ctx *ctx, const char *text, size_t len, const char *name,
                               const icl_yaml_opts *opts);
void icl_yaml_free(icl_ydoc *doc);

/* The value of key in a mapping node (NULL if absent or not a mapping). */
const icl_ynode *icl_ynode_get(const icl_ynode *map, const char *key);
const char *icl_ykind_name(icl_ykind k);

#endif
