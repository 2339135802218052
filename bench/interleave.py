"""Time icl and PyTorch training steps in alternating short bursts, both
processes alive at once, so that whatever else this machine runs meanwhile
lands on both sides alike.

    python3 bench/interleave.py [size] [pe] [bursts] [steps] [warmup]

Starts bench/llama_step.lua and bench/torch_llama_step.py in their "serve"
mode (each builds its model and runs its warm-up steps), then asks each in
turn for `steps` timed steps, `bursts` times, the order swapped every
alternation (icl first, then PyTorch first, ...) with a short pause between
bursts so that one side's idle threads have gone to sleep before the other
starts. Prints, in the format of the two step scripts (llama_table.lua reads
them), each side's median over all its timed steps:

    icl <size> <pe> <steps/s> <ms/step> loss=<last loss> mean=<mean ms/step>
    torch <size> <pe> ...

and the spread of the ratio between neighbouring bursts (PyTorch's median
step over icl's, per alternation):

    bursts <size> <pe> ratio median=<r> min=<r> max=<r> n=<bursts>

Environment as for the step scripts (LUA_PATH, LUA_CPATH, ICL_NUM_THREADS,
OMP_NUM_THREADS; bench/llama_cpu.sh sets them).
"""
import os
import statistics
import subprocess
import sys
import time

size = sys.argv[1] if len(sys.argv) > 1 else "toy"
pe = sys.argv[2] if len(sys.argv) > 2 else "rope"
bursts = int(sys.argv[3]) if len(sys.argv) > 3 else 12
steps = int(sys.argv[4]) if len(sys.argv) > 4 else 5
warmup = int(sys.argv[5]) if len(sys.argv) > 5 else 3
here = os.path.dirname(os.path.abspath(__file__))
PAUSE = 0.05  # seconds between bursts: OpenMP workers spin well under this before sleeping


def start(cmd):
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
    line = p.stdout.readline().strip()
    if line != "ready":
        p.kill()
        sys.exit(f"interleave: {cmd[0]} {cmd[1]} did not start (printed {line!r}; see its error above)")
    return p


def burst(p, name):
    p.stdin.write(f"{steps}\n")
    p.stdin.flush()
    fields = p.stdout.readline().split()
    if len(fields) != steps + 1 or not fields[-1].startswith("loss="):
        sys.exit(f"interleave: unexpected reply from {name}: {' '.join(fields)!r}")
    return [float(x) for x in fields[:-1]], fields[-1]


def report(name, times, loss):
    med = statistics.median(times)
    print(f"{name} {size} {pe} {1000 / med:.4f} {med:.1f} {loss} mean={sum(times) / len(times):.1f}", flush=True)


args = [size, pe, "1", str(warmup), "serve"]
procs = {
    "icl": start(["lua5.4", os.path.join(here, "llama_step.lua")] + args),
    "torch": start([sys.executable, os.path.join(here, "torch_llama_step.py")] + args),
}
times = {"icl": [], "torch": []}
losses = {}
ratios = []
for i in range(bursts):
    order = ("icl", "torch") if i % 2 == 0 else ("torch", "icl")
    med = {}
    for name in order:
        time.sleep(PAUSE)
        t, losses[name] = burst(procs[name], name)
        times[name] += t
        med[name] = statistics.median(t)
    ratios.append(med["torch"] / med["icl"])
for p in procs.values():
    p.stdin.close()
    p.wait()
report("icl", times["icl"], losses["icl"])
report("torch", times["torch"], losses["torch"])
print(f"bursts {size} {pe} ratio median={statistics.median(ratios):.2f} min={min(ratios):.2f} "
      f"max={max(ratios):.2f} n={len(ratios)}", flush=True)
