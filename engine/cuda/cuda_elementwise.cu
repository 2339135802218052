/* Unary and binary float maps over strided, pre-broadcast views: the CUDA
 * mirror of engine/cpu/cpu_elementwise.c, with the same semantics operation
 * by operation (NaN wins in max/min, comparisons give 1.0 or 0.0, sign and
 * relu of NaN are 0). Built without fast math, so expf/logf/... are the
 * accurate library versions (sin/cos: cuda_trig.cuh) and add/mul/div/sqrt
 * round as IEEE says; where
 * the CPU formula has a multiply followed by an add, __fmul_rn/__fadd_rn keep
 * nvcc from fusing them, so such ops agree with the CPU bit for bit. */
#include "cuda_map.cuh"
#include "cuda_trig.cuh"

/* ---- the operations ---------------------------------------------------------- */

__device__ __forceinline__ float bin_apply_rt(int op, float a, float b) {
  switch (op) {
  case ICL_BIN_ADD: return __fadd_rn(a, b);
  case ICL_BIN_SUB: return __fsub_rn(a, b);
  case ICL_BIN_MUL: return __fmul_rn(a, b);
  case ICL_BIN_DIV: return __fdiv_rn(a, b);
  case ICL_BIN_POW: return powf(a, b);
  case ICL_BIN_MAX: return a > b || isnan(a) ? a : b;
  case ICL_BIN_MIN: return a < b || isnan(a) ? a : b;
  case ICL_BIN_EQ: return a == b ? 1.0f : 0.0f;
  case ICL_BIN_NE: return a != b ? 1.0f : 0.0f;
  case ICL_BIN_LT: return a < b ? 1.0f : 0.0f;
  case ICL_BIN_LE: return a <= b ? 1.0f : 0.0f;
  case ICL_BIN_GT: return a > b ? 1.0f : 0.0f;
  case ICL_BIN_GE: return a >= b ? 1.0f : 0.0f;
  default: return __int_as_float(0x7fc00000); /* NaN, as the CPU gives */
  }
}

/* OP is a template constant, so the switch folds to one case */
template <int OP> __device__ __forceinline__ float bin_apply(float a, float b) { return bin_apply_rt(OP, a, b); }

template <int OP> __device__ __forceinline__ float un_apply(float x, float p0, float p1) {
  switch (OP) {
  case ICL_UN_NEG: return -x;
  case ICL_UN_ABS: return fabsf(x);
  case ICL_UN_SIGN: return (float)((x > 0) - (x < 0));
  case ICL_UN_EXP: return expf(x);
  case ICL_UN_LOG: return logf(x);
  case ICL_UN_SQRT: return __fsqrt_rn(x);
  case ICL_UN_SQUARE: return __fmul_rn(x, x);
  case ICL_UN_SIN: return icl_sinf_acc(x); /* sinf's huge-x path needs local memory */
  case ICL_UN_COS: return icl_cosf_acc(x);
  case ICL_UN_TANH: return tanhf(x);
  case ICL_UN_SIGMOID: return __fdiv_rn(1.0f, __fadd_rn(1.0f, expf(-x)));
  case ICL_UN_RELU: return x > 0 ? x : 0.0f;
  case ICL_UN_SILU: return __fdiv_rn(x, __fadd_rn(1.0f, expf(-x)));
  case ICL_UN_RECIP: return __fdiv_rn(1.0f, x);
  case ICL_UN_SOFTPLUS: return x > 20.0f ? x : log1pf(expf(x));
  case ICL_UN_CLAMP: return x < p0 ? p0 : (x > p1 ? p1 : x);
  case ICL_UN_AFFINE: return __fadd_rn(__fmul_rn(p0, x), p1);
  case ICL_UN_POWS: return powf(x, p0);
  case ICL_UN_RPOWS: return powf(p0, x);
  case ICL_UN_RSUB: return __fsub_rn(p0, x);
  case ICL_UN_RDIV: return __fdiv_rn(p0, x);
  case ICL_UN_MAXS: return x > p0 || isnan(x) ? x : p0;
  case ICL_UN_MINS: return x < p0 || isnan(x) ? x : p0;
  case ICL_UN_CMPS: return bin_apply_rt((int)p1, x, p0);
  default: return __int_as_float(0x7fc00000);
  }
}

/* ---- functors ----------------------------------------------------------------- */

template <int OP> struct UnaryF {
  float *o;
  const float *x;
  float p0, p1;
  __device__ __forceinline__ void operator()(const int64_t (&off)[2]) const {
    o[off[0]] = un_apply<OP>(x[off[1]], p0, p1);
  }
  __device__ __forceinline__ void flat(int64_t i) const { o[i] = un_apply<OP>(x[i], p0, p1); }
  __device__ __forceinline__ void vec4(int64_t i) const {
    icl_v4<float> a = reinterpret_cast<const icl_v4<float> *>(x)[i];
#pragma unroll
    for (int k = 0; k < 4; k++) a.v[k] = un_apply<OP>(a.v[k], p0, p1);
    reinterpret_cast<icl_v4<float> *>(o)[i] = a;
  }
};

template <int OP> struct BinaryF {
  float *o;
  const float *a, *b;
  __device__ __forceinline__ void operator()(const int64_t (&off)[3]) const {
    o[off[0]] = bin_apply<OP>(a[off[1]], b[off[2]]);
  }
  __device__ __forceinline__ void flat(int64_t i) const { o[i] = bin_apply<OP>(a[i], b[i]); }
  __device__ __forceinline__ void vec4(int64_t i) const {
    icl_v4<float> x = reinterpret_cast<const icl_v4<float> *>(a)[i];
    icl_v4<float> y = reinterpret_cast<const icl_v4<float> *>(b)[i];
#pragma unroll
    for (int k = 0; k < 4; k++) x.v[k] = bin_apply<OP>(x.v[k], y.v[k]);
    reinterpret_cast<icl_v4<float> *>(o)[i] = x;
  }
};

/* ---- dispatch: run-time op -> template instance ------------------------------ */

template <int OP> static int run_unary(icl_ctx *ctx, icl_view *out, icl_view *in, float p0, float p1) {
  const icl_view *vs[2] = {out, in};
  UnaryF<OP> f = {(float *)out->data, (const float *)in->data, p0, p1};
  return icl_cuda_map<2>(ctx, "unary", vs, f, 1);
}

template <int OP> static int run_binary(icl_ctx *ctx, icl_view *out, icl_view *a, icl_view *b) {
  const icl_view *vs[3] = {out, a, b};
  BinaryF<OP> f = {(float *)out->data, (const float *)a->data, (const float *)b->data};
  return icl_cuda_map<3>(ctx, "binary", vs, f, 1);
}

extern "C" int icl_cuda_unary(icl_ctx *ctx, icl_unop op, icl_view out, icl_view in, float p0, float p1) {
  switch (op) {
#define U(name)                                                                                                     \
  case name: return run_unary<name>(ctx, &out, &in, p0, p1);
    U(ICL_UN_NEG) U(ICL_UN_ABS) U(ICL_UN_SIGN) U(ICL_UN_EXP) U(ICL_UN_LOG) U(ICL_UN_SQRT) U(ICL_UN_SQUARE)
    U(ICL_UN_SIN) U(ICL_UN_COS) U(ICL_UN_TANH) U(ICL_UN_SIGMOID) U(ICL_UN_RELU) U(ICL_UN_SILU) U(ICL_UN_RECIP)
    U(ICL_UN_SOFTPLUS) U(ICL_UN_CLAMP) U(ICL_UN_AFFINE) U(ICL_UN_POWS) U(ICL_UN_RPOWS) U(ICL_UN_RSUB)
    U(ICL_UN_RDIV) U(ICL_UN_MAXS) U(ICL_UN_MINS) U(ICL_UN_CMPS)
#undef U
  default: return icl_errorf(ctx, ICL_EINVAL, "cuda: unary: unknown op %d", (int)op);
  }
}

extern "C" int icl_cuda_binary(icl_ctx *ctx, icl_binop op, icl_view out, icl_view a, icl_view b) {
  switch (op) {
#define B(name)                                                                                                     \
  case name: return run_binary<name>(ctx, &out, &a, &b);
    B(ICL_BIN_ADD) B(ICL_BIN_SUB) B(ICL_BIN_MUL) B(ICL_BIN_DIV) B(ICL_BIN_POW) B(ICL_BIN_MAX) B(ICL_BIN_MIN)
    B(ICL_BIN_EQ) B(ICL_BIN_NE) B(ICL_BIN_LT) B(ICL_BIN_LE) B(ICL_BIN_GT) B(ICL_BIN_GE)
#undef B
  default: return icl_errorf(ctx, ICL_EINVAL, "cuda: binary: unknown op %d", (int)op);
  }
}
