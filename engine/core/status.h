/* Status codes returned by every fallible engine function.
 * The library never exits or aborts: a failing call returns one of these and
 * leaves a human-readable message in its context (see context.h). */
#ifndef ICL_STATUS_H
#define ICL_STATUS_H

typedef enum icl_status {
  ICL_OK = 0,
  ICL_EINVAL,   /* bad argument value */
  ICL_ESHAPE,   /* shape or dimension mismatch */
  ICL_ERANGE,   /* index out of range */
  ICL_ENOMEM,   /* allocation failed */
  ICL_EIO,      /* file system error */
  ICL_EFORMAT,  /* malformed or corrupt input file */
  ICL_EDEVICE,  /* device unavailable or device error */
  ICL_ENOTIMPL, /* operation not available on this device/dtype */
  ICL_ENUMERIC, /* NaN or Inf where a finite value is required */
  ICL_ECALLBACK /* a user callback (e.g. Lua) raised an error */
} icl_status;

const char *icl_status_name(int status);

#endif
