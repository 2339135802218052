/* Per-area kernel tables of the CPU backend. Each area defines its table in
 * its own cpu file; this list is the only place that names them all. */
#ifndef ICL_AREAS_H
#define ICL_AREAS_H

#include "models/mamba_kernels.h"
#include "nn/nn_kernels.h"
#include "optim/optim_kernels.h"
#include "pe/attn_kernels.h"
#include "tasks/task_kernels.h"

#define ICL_CPU_AREA_TABLES                                                                                       \
  .nn = &icl_cpu_nn_kernels, .attn = &icl_cpu_attn_kernels, .mamba = &icl_cpu_mamba_kernels,                    \
  .task = &icl_cpu_task_kernels, .optim = &icl_cpu_optim_kernels

#endif
