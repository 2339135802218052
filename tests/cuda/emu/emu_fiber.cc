/* Fibers of the CUDA emulator (emu_fiber.h). */
#include "emu_fiber.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

static void (*fiber_fn)();
static ucontext_t sched_uc;
static void *sched_sp;
static int fast = -1; /* decided on the first init */

#if defined(__x86_64__) && defined(__linux__)
/* emu_switch(save, to): push the callee-saved registers, keep the stack
 * pointer in *save, load `to` and pop the registers saved there; the ret
 * then continues where that stack's own emu_switch was called (or, for a
 * new fiber, in fiber_start). MXCSR and the x87 control word are also
 * callee-saved but nothing here changes them. */
extern "C" void emu_switch(void **save, void *to);
asm(".pushsection .text\n"
    ".globl emu_switch\n"
    ".type emu_switch, @function\n"
    "emu_switch:\n"
    "  pushq %rbp\n"
    "  pushq %rbx\n"
    "  pushq %r12\n"
    "  pushq %r13\n"
    "  pushq %r14\n"
    "  pushq %r15\n"
    "  movq %rsp, (%rdi)\n"
    "  movq %rsi, %rsp\n"
    "  popq %r15\n"
    "  popq %r14\n"
    "  popq %r13\n"
    "  popq %r12\n"
    "  popq %rbx\n"
    "  popq %rbp\n"
    "  ret\n"
    ".size emu_switch, .-emu_switch\n"
    ".popsection\n");

static emu_fiber *running;

extern "C" void emu_fiber_start() {
  fiber_fn();
  emu_fiber *f = running;
  for (;;) emu_switch(&f->sp, sched_sp); /* finished: the scheduler never resumes it again */
}

/* a shadow stack (x86 CET) would reject returns onto another stack */
static int shadow_stack_on() {
  unsigned long features = 0;
  if (syscall(SYS_arch_prctl, 0x5005 /* ARCH_SHSTK_STATUS */, &features) != 0) return 0;
  return (features & 1) != 0;
}
#define HAVE_FAST 1
#else
#define HAVE_FAST 0
#endif

void emu_fiber_init(emu_fiber *f, char *stack, size_t size, void (*fn)()) {
  fiber_fn = fn;
#if HAVE_FAST
  if (fast < 0) fast = !shadow_stack_on() && !getenv("ICL_EMU_UCONTEXT");
  if (fast) {
    /* the return address sits 16-byte aligned, so that fiber_start starts
     * with the stack as a call leaves it; below it six zero registers */
    uintptr_t top = ((uintptr_t)(stack + size) & ~(uintptr_t)15) - 16;
    void **p = (void **)top;
    p[0] = (void *)emu_fiber_start;
    for (int i = 1; i <= 6; i++) p[-i] = NULL;
    f->sp = (void *)(p - 6);
    return;
  }
#else
  fast = 0;
#endif
  getcontext(&f->uc);
  f->uc.uc_stack.ss_sp = stack;
  f->uc.uc_stack.ss_size = size;
  f->uc.uc_link = &sched_uc;
  makecontext(&f->uc, fn, 0);
}

void emu_fiber_resume(emu_fiber *f) {
#if HAVE_FAST
  if (fast) {
    running = f;
    emu_switch(&sched_sp, f->sp);
    return;
  }
#endif
  swapcontext(&sched_uc, &f->uc);
}

void emu_fiber_yield(emu_fiber *f) {
#if HAVE_FAST
  if (fast) {
    emu_switch(&f->sp, sched_sp);
    return;
  }
#endif
  swapcontext(&f->uc, &sched_uc);
}
