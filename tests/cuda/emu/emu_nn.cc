/* cuda_nn.cu built for the CUDA emulator (cuda_emu.h) */
#include "emu/cuda_emu.h"

#include "cuda/cuda_nn.cu"
