/* Fibers for the CUDA emulator's threads (cuda_emu.cc): the scheduler resumes
 * a fiber, which runs until it yields back (at a barrier) or its function
 * returns. On x86-64 Linux the switch is a few instructions (callee-saved
 * registers and the stack pointer); glibc's swapcontext also saves the
 * signal mask with a system call per switch, which made the emulator spend
 * half its time in the kernel. swapcontext remains the fallback elsewhere,
 * and where a shadow stack is active (a plain stack switch would break it). */
#ifndef ICL_EMU_FIBER_H
#define ICL_EMU_FIBER_H

#include <stddef.h>
#include <ucontext.h>

struct emu_fiber {
  void *sp;      /* fast switch: the saved stack pointer */
  ucontext_t uc; /* fallback */
};

/* Prepare f to run fn() on the given stack (every fiber runs the same fn). */
void emu_fiber_init(emu_fiber *f, char *stack, size_t size, void (*fn)());
/* From the scheduler: run f until it yields or fn returns. */
void emu_fiber_resume(emu_fiber *f);
/* From inside f: back to the scheduler. */
void emu_fiber_yield(emu_fiber *f);

#endif
