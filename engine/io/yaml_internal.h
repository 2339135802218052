/* Shared between yaml_load.c and yaml_scalar.c only. */
#ifndef ICL_YAML_INTERNAL_H
#define ICL_YAML_INTERNAL_H

#include "yaml_load.h"

int icl_y_parse_int(const char *s, size_t n, int64_t *out, double *f);
int icl_y_parse_float(const char *s, size_t n, double *out);
int icl_y_parse_bool(const char *s, size_t n, int *out);
int icl_y_is_null(const char *s, size_t n);
void icl_y_type_plain(icl_ynode *nd, const char *s, size_t n);
char *icl_y_norm_path(const char *p); /* malloc'd */

#endif
