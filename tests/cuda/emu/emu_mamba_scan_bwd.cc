/* cuda_mamba_scan_bwd.cu built for the CUDA emulator (cuda_emu.h) */
#include "emu/cuda_emu.h"

#include "cuda/cuda_mamba_scan_bwd.cu"
