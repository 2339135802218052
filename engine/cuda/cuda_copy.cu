/* Fill and strided copy with dtype conversion (float32 <-> int32), the
 * CUDA mirror of engine/cpu/cpu_elementwise.c's fill and copy. */
#include "cuda_map.cuh"

template <typename T> struct FillF {
  T *o;
  T v;
  __device__ __forceinline__ void operator()(const int64_t (&off)[1]) const { o[off[0]] = v; }
  __device__ __forceinline__ void flat(int64_t i) const { o[i] = v; }
  __device__ __forceinline__ void vec4(int64_t i) const {
    icl_v4<T> q;
#pragma unroll
    for (int k = 0; k < 4; k++) q.v[k] = v;
    reinterpret_cast<icl_v4<T> *>(o)[i] = q;
  }
};

/* float -> int truncates toward zero, as C does (and the CPU backend); int ->
 * float rounds to nearest. Out-of-range floats and NaN are undefined in C;
 * the device saturates them. */
template <typename TO, typename TI> __device__ __forceinline__ TO convert(TI x) { return (TO)x; }

template <typename TO, typename TI> struct CopyF {
  TO *o;
  const TI *x;
  __device__ __forceinline__ void operator()(const int64_t (&off)[2]) const {
    o[off[0]] = convert<TO, TI>(x[off[1]]);
  }
  __device__ __forceinline__ void flat(int64_t i) const { o[i] = convert<TO, TI>(x[i]); }
  __device__ __forceinline__ void vec4(int64_t i) const {
    icl_v4<TI> a = reinterpret_cast<const icl_v4<TI> *>(x)[i];
    icl_v4<TO> q;
#pragma unroll
    for (int k = 0; k < 4; k++) q.v[k] = convert<TO, TI>(a.v[k]);
    reinterpret_cast<icl_v4<TO> *>(o)[i] = q;
  }
};

extern "C" int icl_cuda_fill(icl_ctx *ctx, icl_view out, icl_dtype dt, double value) {
  const icl_view *vs[1] = {&out};
  if (dt == ICL_F32) {
    FillF<float> f = {(float *)out.data, (float)value};
    return icl_cuda_map<1>(ctx, "fill", vs, f, 1);
  }
  FillF<int32_t> f = {(int32_t *)out.data, (int32_t)value};
  return icl_cuda_map<1>(ctx, "fill", vs, f, 1);
}

/* 1 when both views are one contiguous run of the same layout */
static int same_flat_run(const icl_view *out, const icl_view *in) {
  const icl_view *vs[2] = {out, in};
  icl_dwalk<2> w = icl_dwalk_make<2>(vs);
  return icl_dwalk_flat(w);
}

extern "C" int icl_cuda_copy(icl_ctx *ctx, icl_view out, icl_dtype odt, icl_view in, icl_dtype idt) {
  int64_t n = icl_view_numel(&out);
  if (n == 0) return ICL_OK;
  if (odt == idt && same_flat_run(&out, &in)) {
    /* the copy engine beats a kernel for a plain block move */
    ICL_CU(ctx, "copy", cudaMemcpyAsync(out.data, in.data, (size_t)n * icl_dtype_size(odt), cudaMemcpyDeviceToDevice,
                                        ctx->cuda->stream));
    return ICL_OK;
  }
  const icl_view *vs[2] = {&out, &in};
  if (odt == ICL_F32 && idt == ICL_F32) {
    CopyF<float, float> f = {(float *)out.data, (const float *)in.data};
    return icl_cuda_map<2>(ctx, "copy", vs, f, 1);
  }
  if (odt == ICL_I32 && idt == ICL_I32) {
    CopyF<int32_t, int32_t> f = {(int32_t *)out.data, (const int32_t *)in.data};
    return icl_cuda_map<2>(ctx, "copy", vs, f, 1);
  }
  if (odt == ICL_F32) {
    CopyF<float, int32_t> f = {(float *)out.data, (const int32_t *)in.data};
    return icl_cuda_map<2>(ctx, "copy", vs, f, 1);
  }
  CopyF<int32_t, float> f = {(int32_t *)out.data, (const float *)in.data};
  return icl_cuda_map<2>(ctx, "copy", vs, f, 1);
}
