// Fused softmax + per-row statistics for one block of query rows (attnlens capture inner loop).
//
// Same contract as extraction/kernels.py::softmax_stats_torch (the reference):
//   scores        Float32[H, c, kk], contiguous, scaled and masked (-inf = not attended);
//                 overwritten in place with the probabilities.
//   row_positions Int64[c], absolute position of each query row.
//   key_offset    absolute position of key 0 of the block.
//   k             number of top weights kept per row.
//   head_sum      Float32[c, kk], keys contiguous (any row stride: a view into the capture's
//   head_max      n x n accumulators): p summed / maxed over the heads INTO them, in place.
// Returns (entropy[H,c], distance[H,c], sink[H,c], prev[H,c], topk_values[H,c,k],
//          topk_indices[H,c,k] (absolute key positions)).
//
// Work per query row, for each head, with the row in cache:
//   1. max pass: the row max m and the maxima of disjoint blocks of keys; the k-th largest
//      block maximum bounds the row's k-th largest score from below (top-k threshold);
//   2. one exp pass: e = exp(s - m) stored in place, with Z = sum e, A = sum e (s - m) and
//      D = sum e |i - j|; entropy = log Z - A / Z and distance = D / Z need no log and no
//      second exp per element;
//   3. normalise p = e / Z, accumulating into head_sum / head_max; the few keys at or
//      above the threshold go to a sorted top-k array (insertion) on their final p.
// A row with no attended key becomes all zeros with zero statistics (as the reference).
// Scores of +inf or NaN are outside the contract (the reference gives NaN there).
//
// Registered as a torch operator: torch.ops.<TORCH_EXTENSION_NAME>.softmax_stats.
// Built by extraction/kernels.py with -O3 (+ -mavx2 -mfma when the CPU has AVX2), never with
// -ffast-math or -march=native. Rows are spread over torch's own intra-op thread pool
// (at::parallel_for); flush-to-zero / denormals-are-zero are set on each worker for the
// duration of the call only.

#include <ATen/Parallel.h>
#include <ATen/core/Tensor.h>
#include <ATen/ops/empty.h>
#include <ATen/ops/empty_like.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <string>
#include <tuple>
#include <vector>

#if defined(__x86_64__) || defined(_M_X64) || defined(__i386__) || defined(_M_IX86)
#include <xmmintrin.h>
#define ATTNLENS_HAVE_MXCSR 1
#endif

#if defined(__AVX2__) && defined(__FMA__)
#include <immintrin.h>
#define ATTNLENS_AVX2 1
#endif

namespace attnlens {
namespace {

constexpr float kNegInf = -std::numeric_limits<float>::infinity();
// exp(x) for x below this is returned as exactly 0: exp(-87.33654) = 2^-126, the smallest
// normal float, so no denormal is ever produced.
constexpr float kExpLo = -87.33654f;
constexpr float kExpHi = 88.0f;
// Lower clamp of s - m before the exp pass: finite, so e * (s - m) is 0 (never NaN) for
// masked keys (s = -inf) and for keys whose exp underflows.
constexpr float kClampLo = -104.0f;
constexpr float kLog2e = 1.44269504088896341f;
// Cephes range reduction: ln 2 = kC1 + kC2, kC1 exact in few bits.
constexpr float kC1 = 0.693359375f;
constexpr float kC2 = -2.12194440e-4f;
// Cephes expf polynomial on [-ln2/2, ln2/2].
constexpr float kP0 = 1.9875691500e-4f;
constexpr float kP1 = 1.3981999507e-3f;
constexpr float kP2 = 8.3334519073e-3f;
constexpr float kP3 = 4.1665795894e-2f;
constexpr float kP4 = 1.6666665459e-1f;
constexpr float kP5 = 5.0000001201e-1f;

// Scalar expf (the fallback, same algorithm as the vector one). 0 below kExpLo and for NaN.
// Branch-free, with round-to-nearest by the 1.5 * 2^23 trick (no libm call), so gcc can
// vectorise the fallback's loops with SSE2.
constexpr float kRoundMagic = 12582912.0f;  // 1.5 * 2^23
inline float exp_scalar(float x) {
  const float xc = std::min(std::max(x, kExpLo), kExpHi);
  const float n = (xc * kLog2e + kRoundMagic) - kRoundMagic;
  float r = xc - n * kC1;
  r = r - n * kC2;
  float y = kP0;
  y = y * r + kP1;
  y = y * r + kP2;
  y = y * r + kP3;
  y = y * r + kP4;
  y = y * r + kP5;
  y = y * (r * r) + r + 1.0f;
  const int32_t bits = (static_cast<int32_t>(n) + 127) << 23;
  float scale;
  std::memcpy(&scale, &bits, sizeof(scale));
  // select by mask, not by branch or ?: (gcc does not if-convert a float multiply)
  const float v = y * scale;
  uint32_t vb;
  std::memcpy(&vb, &v, sizeof(vb));
  vb &= 0u - static_cast<uint32_t>(x >= kExpLo);
  float out;
  std::memcpy(&out, &vb, sizeof(out));
  return out;
}

#ifdef ATTNLENS_AVX2
inline __m256 exp_avx2(__m256 x) {
  const __m256 keep = _mm256_cmp_ps(x, _mm256_set1_ps(kExpLo), _CMP_GE_OQ);
  x = _mm256_min_ps(_mm256_max_ps(x, _mm256_set1_ps(kExpLo)), _mm256_set1_ps(kExpHi));
  const __m256 n = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(kLog2e)),
                                   _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
  __m256 r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kC1), x);
  r = _mm256_fnmadd_ps(n, _mm256_set1_ps(kC2), r);
  __m256 y = _mm256_set1_ps(kP0);
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP1));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP2));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP3));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP4));
  y = _mm256_fmadd_ps(y, r, _mm256_set1_ps(kP5));
  y = _mm256_fmadd_ps(y, _mm256_mul_ps(r, r), r);
  y = _mm256_add_ps(y, _mm256_set1_ps(1.0f));
  const __m256i bits =
      _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23);
  return _mm256_and_ps(_mm256_mul_ps(y, _mm256_castsi256_ps(bits)), keep);
}

inline __m256i tail_mask(int64_t rem) {  // lanes [0, rem) set, rem in [1, 7]
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int>(rem)),
                            _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

inline double hsum_to_double(__m256 v) {
  __m256d a = _mm256_add_pd(_mm256_cvtps_pd(_mm256_castps256_ps128(v)),
                            _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
  __m128d s = _mm_add_pd(_mm256_castpd256_pd128(a), _mm256_extractf128_pd(a, 1));
  s = _mm_add_sd(s, _mm_unpackhi_pd(s, s));
  return _mm_cvtsd_f64(s);
}
#endif

// Sets FTZ/DAZ on the current thread for its lifetime, then restores the previous MXCSR.
struct FlushDenormalGuard {
#ifdef ATTNLENS_HAVE_MXCSR
  unsigned int saved;
  FlushDenormalGuard() : saved(_mm_getcsr()) { _mm_setcsr(saved | 0x8040u); }
  ~FlushDenormalGuard() { _mm_setcsr(saved); }
#endif
};

// The k largest probabilities of a row, kept sorted (descending) by insertion.
struct TopK {
  int64_t k = 0;
  int64_t n = 0;
  float* val = nullptr;
  int64_t* idx = nullptr;

  void push(float v, int64_t j) {
    int64_t pos;
    if (n < k) {
      pos = n++;
    } else if (v > val[k - 1]) {
      pos = k - 1;
    } else {
      return;
    }
    while (pos > 0 && val[pos - 1] < v) {  // strict: equal values keep the lower index first
      val[pos] = val[pos - 1];
      idx[pos] = idx[pos - 1];
      --pos;
    }
    val[pos] = v;
    idx[pos] = j;
  }
};

// Top-k blocks. A row is cut into disjoint blocks of keys and their maxima are kept; if T is
// the k-th largest block maximum, k blocks hold a key >= T, so every top-k key is >= T and
// only the keys at or above it (typically k + 1 or 2) reach the insertion sort, with no
// per-key branch. AVX2: the 32 lanes of 4 max accumulators, per chunk of the row (more chunks
// for a larger k); scalar build: consecutive runs of keys. Plus one block for a short tail.
struct BlockPlan {
  int64_t chunk;     // AVX2: keys per chunk (a multiple of 32); scalar: keys per block
  int64_t capacity;  // most blocks a row can have
};

inline BlockPlan plan_blocks(int64_t kk, int64_t k) {
  const int64_t want = std::max<int64_t>(32, 2 * k);  // about 2k blocks: few candidates
#ifdef ATTNLENS_AVX2
  const int64_t chunks = std::max<int64_t>(1, std::min((want + 31) / 32, kk / 32));
  const int64_t chunk = std::max<int64_t>(32, ((kk + chunks - 1) / chunks + 31) / 32 * 32);
  return {chunk, 32 * ((kk + chunk - 1) / chunk) + 1};
#else
  const int64_t chunk = std::max<int64_t>(1, (kk + want - 1) / want);
  return {chunk, (kk + chunk - 1) / chunk + 1};
#endif
}

// Pass 1: the row maximum, and the block maxima into blk (count in nblk).
inline float max_pass(const float* s, int64_t kk, const BlockPlan& plan, float* blk, int64_t& nblk) {
  int64_t j = 0;
  nblk = 0;
  float m = kNegInf;
#ifdef ATTNLENS_AVX2
  __m256 vmax = _mm256_set1_ps(kNegInf);
  while (j + 32 <= kk) {
    const int64_t stop = std::min(kk, j + plan.chunk);
    __m256 m0 = _mm256_set1_ps(kNegInf);
    __m256 m1 = m0, m2 = m0, m3 = m0;
    for (; j + 32 <= stop; j += 32) {
      m0 = _mm256_max_ps(m0, _mm256_loadu_ps(s + j));
      m1 = _mm256_max_ps(m1, _mm256_loadu_ps(s + j + 8));
      m2 = _mm256_max_ps(m2, _mm256_loadu_ps(s + j + 16));
      m3 = _mm256_max_ps(m3, _mm256_loadu_ps(s + j + 24));
    }
    _mm256_storeu_ps(blk + nblk, m0);
    _mm256_storeu_ps(blk + nblk + 8, m1);
    _mm256_storeu_ps(blk + nblk + 16, m2);
    _mm256_storeu_ps(blk + nblk + 24, m3);
    nblk += 32;
    vmax = _mm256_max_ps(vmax, _mm256_max_ps(_mm256_max_ps(m0, m1), _mm256_max_ps(m2, m3)));
  }
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, vmax);
  for (int l = 0; l < 8; ++l) m = std::max(m, lanes[l]);
  if (j < kk) {
    float t = kNegInf;
    for (; j < kk; ++j) t = std::max(t, s[j]);
    blk[nblk++] = t;
    m = std::max(m, t);
  }
#else
  for (; j < kk; j += plan.chunk) {
    const int64_t stop = std::min(kk, j + plan.chunk);
    float t = kNegInf;
    for (int64_t q = j; q < stop; ++q) t = std::max(t, s[q]);
    blk[nblk++] = t;
    m = std::max(m, t);
  }
#endif
  return m;
}

// The k-th largest block maximum (-inf when fewer than k blocks).
inline float kth_block_max(float* blk, int64_t nblk, int64_t k) {
  if (k <= 0 || k > nblk) return kNegInf;
  std::nth_element(blk, blk + (k - 1), blk + nblk, [](float x, float y) { return x > y; });
  return blk[k - 1];
}

struct Sums {
  double z = 0.0;  // sum e
  double a = 0.0;  // sum e (s - m)
  double d = 0.0;  // sum e |i - j|
};

// Pass 2: e = exp(s - m) in place, with the sums. base = row position - key_offset, so the
// gap of local key j is |base - j| (exact in float below 2^24).
inline Sums exp_pass(float* s, int64_t kk, float m, float base) {
  Sums out;
  int64_t j = 0;
#ifdef ATTNLENS_AVX2
  const __m256 vm = _mm256_set1_ps(m);
  const __m256 lo = _mm256_set1_ps(kClampLo);
  const __m256 vbase = _mm256_set1_ps(base);
  const __m256 absmask = _mm256_castsi256_ps(_mm256_set1_epi32(0x7fffffff));
  const __m256 eight = _mm256_set1_ps(8.0f);
  __m256 jf = _mm256_setr_ps(0.f, 1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f);
  // Float partial sums over blocks of 128 keys, accumulated in double across blocks.
  while (j + 8 <= kk) {
    __m256 z = _mm256_setzero_ps(), a = _mm256_setzero_ps(), d = _mm256_setzero_ps();
    const int64_t stop = std::min(kk, j + 128);
    for (; j + 8 <= stop; j += 8) {
      const __m256 x = _mm256_max_ps(_mm256_sub_ps(_mm256_loadu_ps(s + j), vm), lo);
      const __m256 e = exp_avx2(x);
      _mm256_storeu_ps(s + j, e);
      z = _mm256_add_ps(z, e);
      a = _mm256_fmadd_ps(e, x, a);
      d = _mm256_fmadd_ps(e, _mm256_and_ps(_mm256_sub_ps(vbase, jf), absmask), d);
      jf = _mm256_add_ps(jf, eight);
    }
    out.z += hsum_to_double(z);
    out.a += hsum_to_double(a);
    out.d += hsum_to_double(d);
  }
  if (j < kk) {  // masked tail: the same vector exp, so every key gets the same numerics
    const __m256i mask = tail_mask(kk - j);
    __m256 x = _mm256_max_ps(_mm256_sub_ps(_mm256_maskload_ps(s + j, mask), vm), lo);
    x = _mm256_blendv_ps(lo, x, _mm256_castsi256_ps(mask));  // lanes past the row: e = 0
    const __m256 e = exp_avx2(x);
    _mm256_maskstore_ps(s + j, mask, e);
    out.z += hsum_to_double(e);
    out.a += hsum_to_double(_mm256_mul_ps(e, x));
    out.d += hsum_to_double(_mm256_mul_ps(e, _mm256_and_ps(_mm256_sub_ps(vbase, jf), absmask)));
  }
#else
  // 8 independent partial sums (float reductions are not reassociated without -ffast-math,
  // so this is what lets gcc vectorise the loop), flushed to double every 128 keys.
  constexpr int kW = 8;
  while (j < kk) {
    float z[kW] = {}, a[kW] = {}, d[kW] = {};
    const int64_t stop = std::min(kk, j + 128);
    for (; j + kW <= stop; j += kW) {
      for (int l = 0; l < kW; ++l) {
        const float x = std::max(s[j + l] - m, kClampLo);  // -inf - m gives kClampLo
        const float e = exp_scalar(x);
        s[j + l] = e;
        z[l] += e;
        a[l] += e * x;
        d[l] += e * std::fabs(base - static_cast<float>(j + l));
      }
    }
    for (; j < stop; ++j) {
      const float x = std::max(s[j] - m, kClampLo);
      const float e = exp_scalar(x);
      s[j] = e;
      z[0] += e;
      a[0] += e * x;
      d[0] += e * std::fabs(base - static_cast<float>(j));
    }
    for (int l = 0; l < kW; ++l) {
      out.z += z[l];
      out.a += a[l];
      out.d += d[l];
    }
  }
#endif
  return out;
}

// The probability the kernel gives a key of raw score v: the very operations of passes 2 and
// 3 (bit-identical), so the threshold compares exactly with the stored probabilities.
inline float prob_of(float v, float m, float inv) {
#ifdef ATTNLENS_AVX2
  const __m256 x = _mm256_max_ps(_mm256_sub_ps(_mm256_set1_ps(v), _mm256_set1_ps(m)), _mm256_set1_ps(kClampLo));
  return _mm256_cvtss_f32(_mm256_mul_ps(exp_avx2(x), _mm256_set1_ps(inv)));
#else
  return exp_scalar(std::max(v - m, kClampLo)) * inv;
#endif
}

// Pass 3: p = e * (1/Z) in place, added into head_sum and maxed into head_max (the caller's
// accumulators, so no c x kk temporary is written and read again); keys with p >= pth go to the top-k (pth >= FLT_MIN, so p = 0 never does: with FTZ a
// probability is 0 or normal). The hot loop only notes, branch-free, the lane masks of the
// pairs of vectors that hold a candidate (typically about k); those keys are pushed after it.
#ifdef ATTNLENS_AVX2
inline __m256 normalise8(float* s, float* hs, float* hm, int64_t j, __m256 vinv) {
  const __m256 p = _mm256_mul_ps(_mm256_loadu_ps(s + j), vinv);
  _mm256_storeu_ps(s + j, p);
  _mm256_storeu_ps(hs + j, _mm256_add_ps(_mm256_loadu_ps(hs + j), p));
  _mm256_storeu_ps(hm + j, _mm256_max_ps(_mm256_loadu_ps(hm + j), p));
  return p;
}
#endif

template <bool kTopK>
inline void normalise_pass(float* s, int64_t kk, float inv, float* hs, float* hm, float pth, TopK& tk,
                           uint64_t* hits) {
  int64_t j = 0;
#ifdef ATTNLENS_AVX2
  int64_t nhits = 0;
  const __m256 vinv = _mm256_set1_ps(inv);
  const __m256 vth = _mm256_set1_ps(pth);
  for (; j + 16 <= kk; j += 16) {
    const __m256 p0 = normalise8(s, hs, hm, j, vinv);
    const __m256 p1 = normalise8(s, hs, hm, j + 8, vinv);
    if (kTopK) {
      const uint64_t mask = static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(p0, vth, _CMP_GE_OQ))) |
                            (static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(p1, vth, _CMP_GE_OQ))) << 8);
      hits[nhits] = (static_cast<uint64_t>(j) << 16) | mask;
      nhits += mask != 0;
    }
  }
  for (; j + 8 <= kk; j += 8) {
    const __m256 p = normalise8(s, hs, hm, j, vinv);
    if (kTopK) {
      const uint64_t mask = static_cast<uint64_t>(_mm256_movemask_ps(_mm256_cmp_ps(p, vth, _CMP_GE_OQ)));
      hits[nhits] = (static_cast<uint64_t>(j) << 16) | mask;
      nhits += mask != 0;
    }
  }
  if (kTopK) {
    for (int64_t q = 0; q < nhits; ++q) {
      const int64_t base = static_cast<int64_t>(hits[q] >> 16);
      unsigned mask = static_cast<unsigned>(hits[q] & 0xffffu);
      while (mask) {
        const int b = __builtin_ctz(mask);
        tk.push(s[base + b], base + b);
        mask &= mask - 1;
      }
    }
  }
#else
  (void)hits;
#endif
  for (; j < kk; ++j) {
    const float p = s[j] * inv;
    s[j] = p;
    hs[j] += p;
    hm[j] = std::max(hm[j], p);
    if (kTopK && p >= pth) tk.push(p, j);
  }
}

inline void normalise_pass(float* s, int64_t kk, float inv, float* hs, float* hm, float pth, TopK& tk,
                           uint64_t* hits) {
  if (tk.k > 0)
    normalise_pass<true>(s, kk, inv, hs, hm, pth, tk, hits);
  else
    normalise_pass<false>(s, kk, inv, hs, hm, pth, tk, hits);
}

inline void check_accumulator(const at::Tensor& t, const char* name, int64_t c, int64_t kk) {
  TORCH_CHECK(t.device().is_cpu() && t.scalar_type() == at::kFloat && t.dim() == 2 && t.size(0) == c &&
                  t.size(1) == kk && (t.stride(1) == 1 || kk == 1),
              "softmax_stats: ", name, " must be a float32 CPU [c, kk] tensor with contiguous keys");
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor, at::Tensor>
softmax_stats(const at::Tensor& scores, const at::Tensor& row_positions, int64_t key_offset, int64_t k,
              const at::Tensor& head_sum, const at::Tensor& head_max) {
  TORCH_CHECK(scores.device().is_cpu(), "softmax_stats: scores must be on the CPU");
  TORCH_CHECK(scores.scalar_type() == at::kFloat, "softmax_stats: scores must be float32");
  TORCH_CHECK(scores.dim() == 3, "softmax_stats: scores must be [H, c, kk]");
  TORCH_CHECK(scores.is_contiguous(), "softmax_stats: scores must be contiguous");
  TORCH_CHECK(k >= 0, "softmax_stats: k must be >= 0");
  const int64_t heads = scores.size(0), c = scores.size(1), kk = scores.size(2);
  TORCH_CHECK(kk > 0, "softmax_stats: the block has no keys");
  TORCH_CHECK(row_positions.device().is_cpu() && row_positions.scalar_type() == at::kLong &&
                  row_positions.dim() == 1 && row_positions.size(0) == c,
              "softmax_stats: row_positions must be int64 [c] on the CPU");
  const at::Tensor rows = row_positions.contiguous();
  check_accumulator(head_sum, "head_sum", c, kk);
  check_accumulator(head_max, "head_max", c, kk);

  const auto fopt = scores.options();
  at::Tensor entropy = at::empty({heads, c}, fopt);
  at::Tensor distance = at::empty({heads, c}, fopt);
  at::Tensor sink = at::empty({heads, c}, fopt);
  at::Tensor prev = at::empty({heads, c}, fopt);
  at::Tensor topk_values = at::empty({heads, c, k}, fopt);
  at::Tensor topk_indices = at::empty({heads, c, k}, fopt.dtype(at::kLong));
  if (heads == 0 || c == 0) return {entropy, distance, sink, prev, topk_values, topk_indices};

  float* const sp = scores.data_ptr<float>();
  const int64_t* const pos = rows.data_ptr<int64_t>();
  float* const ent_p = entropy.data_ptr<float>();
  float* const dist_p = distance.data_ptr<float>();
  float* const sink_p = sink.data_ptr<float>();
  float* const prev_p = prev.data_ptr<float>();
  float* const tv_p = topk_values.data_ptr<float>();
  int64_t* const ti_p = topk_indices.data_ptr<int64_t>();
  float* const hs_p = head_sum.data_ptr<float>();
  float* const hm_p = head_max.data_ptr<float>();
  const int64_t hs_row = head_sum.stride(0), hm_row = head_max.stride(0);
  const int64_t k_eff = std::min(k, kk);
  // About 32k scores per task at least, so tiny blocks do not pay for waking the pool.
  const int64_t grain = std::max<int64_t>(1, (32768 + heads * kk - 1) / (heads * kk));

  const BlockPlan plan = plan_blocks(kk, k_eff);

  at::parallel_for(0, c, grain, [&](int64_t begin, int64_t end) {
    FlushDenormalGuard ftz;
    std::vector<float> cand_val(static_cast<size_t>(std::max<int64_t>(k_eff, 1)));
    std::vector<int64_t> cand_idx(static_cast<size_t>(std::max<int64_t>(k_eff, 1)));
    std::vector<float> blk(static_cast<size_t>(plan.capacity + 8));
    std::vector<uint64_t> hits(static_cast<size_t>(kk / 8 + 1));
    for (int64_t i = begin; i < end; ++i) {
      const int64_t rel = pos[i] - key_offset;  // the row's position relative to key 0
      const int64_t prev_local = rel - 1;
      float* const hs = hs_p + i * hs_row;
      float* const hm = hm_p + i * hm_row;
      for (int64_t h = 0; h < heads; ++h) {
        float* const s = sp + (h * c + i) * kk;
        const int64_t o = h * c + i;
        TopK tk;
        tk.k = k_eff;
        tk.val = cand_val.data();
        tk.idx = cand_idx.data();
        int64_t nblk = 0;
        const float m = max_pass(s, kk, plan, blk.data(), nblk);
        if (!std::isfinite(m)) {  // no attended key (all -inf): zeros everywhere, nothing to add
          std::memset(s, 0, sizeof(float) * kk);
          ent_p[o] = 0.f;
          dist_p[o] = 0.f;
        } else {
          const float t = kth_block_max(blk.data(), nblk, k_eff);
          const Sums sums = exp_pass(s, kk, m, static_cast<float>(rel));
          // sums.z >= 1: the max itself contributes exp(0) = 1.
          const float inv = static_cast<float>(1.0 / sums.z);
          // Lowered by 1e-6 (relative): the vector exp (max error 1e-7) may be non-monotonic
          // by an ulp, and a key scoring >= t must never fall below the threshold. 0 when
          // t = -inf (or its p underflows): then every p > 0 is a candidate.
          const float pth = std::max(prob_of(t, m, inv) * (1.0f - 1e-6f), std::numeric_limits<float>::min());
          normalise_pass(s, kk, inv, hs, hm, pth, tk, hits.data());
          const double ent = std::log(sums.z) - sums.a / sums.z;
          ent_p[o] = static_cast<float>(std::max(ent, 0.0));
          dist_p[o] = static_cast<float>(sums.d / sums.z);
        }
        sink_p[o] = key_offset == 0 ? s[0] : 0.f;
        prev_p[o] = (prev_local >= 0 && prev_local < kk) ? s[prev_local] : 0.f;

        float* const tv = tv_p + o * k;
        int64_t* const ti = ti_p + o * k;
        int64_t t = 0;
        for (; t < tk.n; ++t) {
          tv[t] = tk.val[t];
          ti[t] = tk.idx[t] + key_offset;
        }
        // Fewer keys with p > 0 than k: zero weights on the lowest-index keys not yet chosen.
        for (int64_t j = 0; t < k_eff && j < kk; ++j) {
          bool chosen = false;
          for (int64_t q = 0; q < tk.n; ++q) chosen = chosen || (tk.idx[q] == j);
          if (!chosen) {
            tv[t] = s[j];
            ti[t] = j + key_offset;
            ++t;
          }
        }
        // Fewer keys than k: pad with zero weights pointing at key_offset (as the reference).
        for (; t < k; ++t) {
          tv[t] = 0.f;
          ti[t] = key_offset;
        }
      }
    }
  });
  return {entropy, distance, sink, prev, topk_values, topk_indices};
}

// The kernel's exp on a float32 tensor (for tests of its accuracy).
at::Tensor exp_op(const at::Tensor& x) {
  TORCH_CHECK(x.device().is_cpu() && x.scalar_type() == at::kFloat, "exp: float32 CPU tensor expected");
  const at::Tensor in = x.contiguous();
  at::Tensor out = at::empty_like(in);
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const int64_t n = in.numel();
  FlushDenormalGuard ftz;
  int64_t j = 0;
#ifdef ATTNLENS_AVX2
  for (; j + 8 <= n; j += 8) _mm256_storeu_ps(dst + j, exp_avx2(_mm256_loadu_ps(src + j)));
#endif
  for (; j < n; ++j) dst[j] = exp_scalar(src[j]);
  return out;
}

std::string simd() {
#ifdef ATTNLENS_AVX2
  return "avx2";
#else
  return "scalar";
#endif
}

}  // namespace
}  // namespace attnlens

// The operator namespace is the extension's name (an indirection so the macro expands).
#define ATTNLENS_LIBRARY(ns, m) TORCH_LIBRARY(ns, m)
#define ATTNLENS_LIBRARY_IMPL(ns, k, m) TORCH_LIBRARY_IMPL(ns, k, m)

ATTNLENS_LIBRARY(TORCH_EXTENSION_NAME, m) {
  m.def(
      "softmax_stats(Tensor(a!) scores, Tensor row_positions, int key_offset, int k, Tensor(b!) head_sum, "
      "Tensor(c!) head_max) -> (Tensor, Tensor, Tensor, Tensor, Tensor, Tensor)");
  m.def("exp(Tensor x) -> Tensor");
  m.def("simd() -> str", &attnlens::simd);
}

ATTNLENS_LIBRARY_IMPL(TORCH_EXTENSION_NAME, CPU, m) {
  m.impl("softmax_stats", &attnlens::softmax_stats);
  m.impl("exp", &attnlens::exp_op);
}
