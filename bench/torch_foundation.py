"""Foundation benchmark, PyTorch side (same shapes, same thread count)."""
import json, os, statistics, time
import torch

threads = int(os.environ.get("ICL_NUM_THREADS", "2"))
torch.set_num_threads(threads)

def bench(fn, reps):
    fn(); fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter(); fn(); ts.append(time.perf_counter() - t0)
    return statistics.median(ts)

rows = 64 * 102
for name, m, k, n in [("[6528,256]x[256,1024]", rows, 256, 1024), ("[6528,1024]x[1024,256]", rows, 1024, 256),
                      ("[1024,6528]x[6528,256] (weight grad)", 1024, rows, 256)]:
    a, b = torch.randn(m, k), torch.randn(k, n)
    t = bench(lambda: a @ b, 20)
    print(json.dumps({"what": "gemm " + name, "seconds": t, "gflops": 2 * m * k * n / t / 1e9}))

class Block(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.norm = torch.nn.RMSNorm(256, eps=1e-6)
        self.gate = torch.nn.Linear(256, 1024, bias=False)
        self.up = torch.nn.Linear(256, 1024, bias=False)
        self.down = torch.nn.Linear(1024, 256, bias=False)
        self.out = torch.nn.Linear(256, 256, bias=False)
    def forward(self, x):
        h = self.norm(x)
        return self.out(self.down(torch.nn.functional.silu(self.gate(h)) * self.up(h)))

blk = Block()
x = torch.randn(64, 102, 256, requires_grad=True)
gy = torch.randn(64, 102, 256)
def step():
    blk.zero_grad(set_to_none=False)
    x.grad = None
    blk(x).backward(gy)
flops = 2 * rows * (256 * 2048 + 1024 * 256 + 256 * 256) * 3
t = bench(step, 10)
print(json.dumps({"what": "RMSNorm+SwiGLU+Linear fwd+bwd", "seconds": t, "gflops": flops / t / 1e9}))
