/* Per-area kernel tables of the CPU backend. Each area defines its table in
 * its own cpu file; this list is the only place that names them all. */
#ifndef ICL_AREAS_H
#define ICL_AREAS_H

#define ICL_CPU_AREA_TABLES .nn = NULL, .attn = NULL, .mamba = NULL, .task = NULL, .optim = NULL

#endif
