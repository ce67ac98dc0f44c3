// The LSTM recurrence on the CPU as two XLA FFI calls: the forward scan over time and the
// backward scan of lstm/kernel.py's hand-written gradient. lstm/native.py compiles this file on
// first use for the machine it runs on and falls back to the pure-JAX scan when it cannot.
//
// Why it exists: XLA:CPU runs each step of a `lax.scan` as a dozen separate kernels, saves each
// step's outputs through copies, and its matmul of these small shapes runs well below the
// machine's peak (docs/measurements.md). Here each step is one pass: a register-blocked matmul
// against weights packed once per call, with the gates, the cell update and the stores done on
// the accumulators while they are still in registers, and the outputs written in place.
//
// Layout: gates are ordered (i, f, g, o) along the last axis, as in lstm/kernel.py. All arrays
// are row-major float32: xp and acts (T, B, 4H), hs and cs (T, B, H), w (H, 4H), carries (B, H).

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <memory>
#include <vector>

#include "xla/ffi/api/ffi.h"

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

namespace ffi = xla::ffi;

namespace {

#if defined(__AVX512F__)
constexpr int VW = 16;
#elif defined(__AVX__) || defined(__aarch64__)
constexpr int VW = 8;
#else
constexpr int VW = 4;
#endif

typedef float vf __attribute__((vector_size(VW * sizeof(float))));
typedef float vfu __attribute__((vector_size(VW * sizeof(float)), aligned(4), may_alias));

inline vf load(const float* p) { return *reinterpret_cast<const vfu*>(p); }
inline void store(float* p, vf v) { *reinterpret_cast<vfu*>(p) = v; }
// x - 0 is x for every float, signed zeros included, so the compiler drops the subtraction and
// keeps a plain broadcast (x + 0 would not be, and costs an add).
inline vf splat(float x) { return x - vf{}; }

// 1 / q. A division of a full vector costs several times an FMA, and the gates take five of them
// for every four outputs, so where AVX-512 has its 14-bit reciprocal estimate, one Newton step
// brings it to float32's precision for a fraction of the cost.
inline vf reciprocal(vf q) {
#if defined(__AVX512F__)
  const vf r = reinterpret_cast<vf>(_mm512_rcp14_ps(reinterpret_cast<__m512>(q)));
  return r * (2.0f - q * r);
#else
  return 1.0f / q;
#endif
}

// Eigen's float32 tanh, the one XLA:CPU uses: a [13/6] rational function on the clamped input.
inline vf vtanh(vf x) {
  const vf lim = splat(7.90531110763549805f);
  x = x > lim ? lim : x;
  x = x < -lim ? -lim : x;
  const vf x2 = x * x;
  vf p = splat(-2.76076847742355e-16f);
  p = p * x2 + 2.00018790482477e-13f;
  p = p * x2 + -8.60467152213735e-11f;
  p = p * x2 + 5.12229709037114e-08f;
  p = p * x2 + 1.48572235717979e-05f;
  p = p * x2 + 6.37261928875436e-04f;
  p = p * x2 + 4.89352455891786e-03f;
  p = p * x;
  vf q = splat(1.19825839466702e-06f);
  q = q * x2 + 1.18534705686654e-04f;
  q = q * x2 + 2.26843463243900e-03f;
  q = q * x2 + 4.89352518554385e-03f;
  return p * reciprocal(q);
}

// sigmoid(x) = (1 + tanh(x / 2)) / 2, as lstm_gates computes it.
inline vf vsigmoid(vf x) { return vtanh(x * 0.5f) * 0.5f + 0.5f; }

inline void relax() {
#if defined(__x86_64__)
  __builtin_ia32_pause();
#endif
}

// Work shared between the calling thread and helpers from XLA's intra-op pool: `stages` rounds
// of `per_stage` independent chunks, each round reading what the one before wrote. A chunk is
// claimed for a stage by moving its counter from that stage to the next, so each runs once. Each
// thread tries the same share of the chunks first every round (its weights stay in its own
// core's cache), then any left over. A thread only waits for a round to finish, and every chunk
// of it has been claimed by a running thread, so a helper that starts late (or never, when the
// pool is busy) only means the others do more of the work.
struct Shared {
  explicit Shared(int64_t per_stage) : claimed(per_stage) {}
  std::vector<std::atomic<int64_t>> claimed;  // per chunk: the rounds it has been claimed for
  std::atomic<int64_t> done{0};                // chunks finished, over all rounds
  std::atomic<int64_t> arrived{0};             // threads that have joined
};

template <typename Work>
void run_chunks(Shared& s, int64_t stages, int64_t per_stage, int64_t threads, const Work& work) {
  const int64_t me = s.arrived.fetch_add(1, std::memory_order_relaxed);
  const int64_t first = (me % threads) * per_stage / threads;
  for (int64_t stage = s.done.load(std::memory_order_acquire) / per_stage; stage < stages; ++stage) {
    while (s.done.load(std::memory_order_acquire) < stage * per_stage) relax();
    for (int64_t i = 0; i < per_stage; ++i) {
      const int64_t chunk = (first + i) % per_stage;
      int64_t expected = stage;
      if (s.claimed[chunk].load(std::memory_order_relaxed) != stage ||
          !s.claimed[chunk].compare_exchange_strong(expected, stage + 1, std::memory_order_acq_rel))
        continue;
      work(stage, chunk);
      s.done.fetch_add(1, std::memory_order_acq_rel);
    }
  }
}

template <typename Work>
void parallel_stages(ffi::ThreadPool& pool, int64_t stages, int64_t per_stage, const Work& work) {
  auto shared = std::make_shared<Shared>(per_stage);
  const int64_t total = stages * per_stage;
  const int64_t threads = std::max<int64_t>(1, std::min<int64_t>(pool.num_threads(), per_stage));
  for (int64_t i = 1; i < threads; ++i) {
    // The helper holds the counters alive; it reaches `work` only through a chunk it claimed
    // before the last one finished, and the caller does not return before that.
    pool.Schedule([shared, stages, per_stage, threads, &work] { run_chunks(*shared, stages, per_stage, threads, work); });
  }
  run_chunks(*shared, stages, per_stage, threads, work);
  while (shared->done.load(std::memory_order_acquire) < total) relax();
}

// Forward: w (H, 4H) packed per block of VW hidden units as [block][k][gate][VW], so a chunk's
// 4 gate vectors for one k are contiguous.
void pack_forward(const float* w, int64_t H, float* out) {
  for (int64_t b = 0; b < H / VW; ++b)
    for (int64_t k = 0; k < H; ++k)
      for (int64_t g = 0; g < 4; ++g)
        for (int64_t v = 0; v < VW; ++v) *out++ = w[k * 4 * H + g * H + b * VW + v];
}

// A matmul operand of the forward: rows of `a` (a_stride apart, K long) against W, whose four
// gate vectors of a block for row k are at w + k * k_stride + g * gate_stride: packed per block
// (4 * VW, VW) in training, packed once per generation for the sampler's single steps.
struct Operand {
  const float* a;
  int64_t a_stride, K;
  const float* w;
  int64_t k_stride, gate_stride;
};

template <int R>
inline void accumulate(vf (&acc)[R][4], const Operand& op, int64_t r0) {
  const float* ap = op.a + r0 * op.a_stride;
  for (int64_t k = 0; k < op.K; ++k) {
    const float* wk = op.w + k * op.k_stride;
    const int64_t gs = op.gate_stride;
    const vf w0 = load(wk), w1 = load(wk + gs), w2 = load(wk + 2 * gs), w3 = load(wk + 3 * gs);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const vf s = splat(ap[r * op.a_stride + k]);
      acc[r][0] += s * w0;
      acc[r][1] += s * w1;
      acc[r][2] += s * w2;
      acc[r][3] += s * w3;
    }
  }
}

// R rows of one block: gates = xp_t [+ x @ W_ih] + h_prev @ W_hh, then the cell, all on the
// accumulators. xp_t's rows are xp_stride apart (0: one bias row for every row). `input` is the
// sampler's layer input, folded into the step (its `a` null otherwise). acts_t may be null (the
// sampler keeps no gates).
template <int R>
inline void forward_tile(int64_t H, int64_t r0, int64_t j0, const Operand& recurrent, const Operand& input,
                         const float* xp_t, int64_t xp_stride, const float* c_prev, float* acts_t, float* c_t,
                         float* h_t) {
  const int64_t G = 4 * H;
  vf acc[R][4];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
    for (int g = 0; g < 4; ++g) acc[r][g] = load(xp_t + (r0 + r) * xp_stride + g * H + j0);
  if (input.a != nullptr) accumulate<R>(acc, input, r0);
  accumulate<R>(acc, recurrent, r0);
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
    const int64_t row = r0 + r;
    const vf i = vsigmoid(acc[r][0]), f = vsigmoid(acc[r][1]), g = vtanh(acc[r][2]), o = vsigmoid(acc[r][3]);
    const vf c = f * load(c_prev + row * H + j0) + i * g;
    if (acts_t != nullptr) {
      store(acts_t + row * G + j0, i);
      store(acts_t + row * G + H + j0, f);
      store(acts_t + row * G + 2 * H + j0, g);
      store(acts_t + row * G + 3 * H + j0, o);
    }
    store(c_t + row * H + j0, c);
    store(h_t + row * H + j0, o * vtanh(c));
  }
}

constexpr int kRows = 6;  // rows a tile: 6 x 4 accumulators leave registers for the weights

template <template <int> class Tile, typename... Args>
inline void over_rows(int64_t B, Args... args) {
  int64_t r0 = 0;
  for (; r0 + kRows <= B; r0 += kRows) Tile<kRows>::run(r0, args...);
  switch (B - r0) {
    case 5: Tile<5>::run(r0, args...); break;
    case 4: Tile<4>::run(r0, args...); break;
    case 3: Tile<3>::run(r0, args...); break;
    case 2: Tile<2>::run(r0, args...); break;
    case 1: Tile<1>::run(r0, args...); break;
    default: break;
  }
}

template <int R>
struct ForwardTile {
  static void run(int64_t r0, int64_t H, int64_t j0, const Operand& recurrent, const Operand& input,
                  const float* xp_t, int64_t xp_stride, const float* c_prev, float* acts_t, float* c_t, float* h_t) {
    forward_tile<R>(H, r0, j0, recurrent, input, xp_t, xp_stride, c_prev, acts_t, c_t, h_t);
  }
};

ffi::Error LstmForward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> xp, ffi::Buffer<ffi::F32> w,
                       ffi::Buffer<ffi::F32> c0, ffi::Buffer<ffi::F32> h0, ffi::ResultBuffer<ffi::F32> hs,
                       ffi::ResultBuffer<ffi::F32> cs, ffi::ResultBuffer<ffi::F32> acts) {
  const auto dims = xp.dimensions();
  if (dims.size() != 3 || dims[2] % (4 * VW) != 0)
    return ffi::Error::InvalidArgument("dann_lstm_forward: xp must be (T, B, 4H) with H a multiple of the vector width");
  const int64_t T = dims[0], B = dims[1], H = dims[2] / 4;
  if (T == 0 || B == 0) return ffi::Error::Success();
  std::vector<float> packed(static_cast<size_t>(H) * 4 * H);
  pack_forward(w.typed_data(), H, packed.data());
  const float* wp = packed.data();
  const float *x = xp.typed_data(), *c_init = c0.typed_data(), *h_init = h0.typed_data();
  float *h_out = hs->typed_data(), *c_out = cs->typed_data(), *a_out = acts->typed_data();
  const int64_t BH = B * H, BG = B * 4 * H;
  auto work = [&](int64_t t, int64_t block) {
    const float* h_prev = t == 0 ? h_init : h_out + (t - 1) * BH;
    const float* c_prev = t == 0 ? c_init : c_out + (t - 1) * BH;
    const Operand recurrent{h_prev, H, H, wp + block * H * 4 * VW, 4 * VW, VW};
    over_rows<ForwardTile>(B, H, block * VW, recurrent, Operand{}, x + t * BG, 4 * H, c_prev, a_out + t * BG,
                           c_out + t * BH, h_out + t * BH);
  };
  parallel_stages(pool, T, H / VW, work);
  return ffi::Error::Success();
}

// The sampler's weights, packed once before its loop (lstm/native.py `pack`): (H / kPack, K, 4,
// kPack), the gate vectors of a block of kPack hidden units for one input row side by side, so a
// block's weights are one contiguous stream. Read as stored, (K, 4H), each row's four gate vectors
// are a page's width apart, a stride the prefetcher does not follow, and a one-row step waits on
// them (docs/measurements.md). kPack is the widest vector any build takes, so the layout does not
// depend on the machine.
constexpr int64_t kPack = 16;
static_assert(kPack % VW == 0, "a packed block holds whole vectors");

// The packed weight of the hidden units from j0 on, for a chunk's Operand.
inline Operand packed_operand(const float* a, int64_t K, const float* w, int64_t j0) {
  return Operand{a, K, K, w + (j0 / kPack) * K * 4 * kPack + j0 % kPack, 4 * kPack, kPack};
}

// The hidden size of a packed weight (H / kPack, K, 4, kPack) with K rows, 0 if it is not one.
inline int64_t packed_hidden(ffi::Span<const int64_t> dims, int64_t K) {
  if (dims.size() != 4 || dims[1] != K || dims[2] != 4 || dims[3] != kPack) return 0;
  return dims[0] * kPack;
}

// One step of the cell, for the sampler: xp (B, 4H) with the bias added, w packed, c and h (B, H)
// -> the new c and h.
ffi::Error LstmCell(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> xp, ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> c,
                    ffi::Buffer<ffi::F32> h, ffi::ResultBuffer<ffi::F32> c_new, ffi::ResultBuffer<ffi::F32> h_new) {
  const auto dims = xp.dimensions();
  const int64_t H = dims.size() == 2 ? dims[1] / 4 : 0;
  if (H == 0 || dims[1] != 4 * H || packed_hidden(w.dimensions(), H) != H)
    return ffi::Error::InvalidArgument("dann_lstm_cell: xp must be (B, 4H) and w packed (H / 16, H, 4, 16)");
  const int64_t B = dims[0];
  if (B == 0) return ffi::Error::Success();
  const float *x = xp.typed_data(), *wp = w.typed_data(), *c_prev = c.typed_data(), *h_prev = h.typed_data();
  float *c_out = c_new->typed_data(), *h_out = h_new->typed_data();
  auto work = [&](int64_t, int64_t block) {
    const int64_t j0 = block * VW;
    over_rows<ForwardTile>(B, H, j0, packed_operand(h_prev, H, wp, j0), Operand{}, x, 4 * H, c_prev, nullptr, c_out,
                           h_out);
  };
  parallel_stages(pool, 1, H / VW, work);
  return ffi::Error::Success();
}

// The same step for a layer after the first, its input projection folded in: gates = b +
// x @ w_ih + h @ w_hh, with x (B, H_in), b (4H), w_ih and w_hh packed.
ffi::Error LstmCellInput(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> x, ffi::Buffer<ffi::F32> w_ih,
                         ffi::Buffer<ffi::F32> b, ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> c,
                         ffi::Buffer<ffi::F32> h, ffi::ResultBuffer<ffi::F32> c_new, ffi::ResultBuffer<ffi::F32> h_new) {
  const auto x_dims = x.dimensions(), c_dims = c.dimensions();
  const int64_t H_in = x_dims.size() == 2 ? x_dims[1] : 0, H = c_dims.size() == 2 ? c_dims[1] : 0;
  if (H_in == 0 || H == 0 || packed_hidden(w_ih.dimensions(), H_in) != H || packed_hidden(w.dimensions(), H) != H ||
      static_cast<int64_t>(b.element_count()) != 4 * H)
    return ffi::Error::InvalidArgument(
        "dann_lstm_cell_input: x (B, H_in), c (B, H), w_ih and w packed (H / 16, H_in or H, 4, 16), b (4H) do not match");
  const int64_t B = x_dims[0];
  if (B == 0) return ffi::Error::Success();
  const float *xi = x.typed_data(), *wi = w_ih.typed_data(), *bias = b.typed_data(), *wp = w.typed_data();
  const float *c_prev = c.typed_data(), *h_prev = h.typed_data();
  float *c_out = c_new->typed_data(), *h_out = h_new->typed_data();
  auto work = [&](int64_t, int64_t block) {
    const int64_t j0 = block * VW;
    over_rows<ForwardTile>(B, H, j0, packed_operand(h_prev, H, wp, j0), packed_operand(xi, H_in, wi, j0), bias, 0,
                           c_prev, nullptr, c_out, h_out);
  };
  parallel_stages(pool, 1, H / VW, work);
  return ffi::Error::Success();
}

// Backward: the recurrent product d_gates (B, 4H) @ W^T (4H, H), W^T packed per group of NV
// blocks of hidden units as [group][k][NV * VW].
constexpr int NV = 2;

void pack_backward(const float* w, int64_t H, int64_t width, float* out) {
  for (int64_t b = 0; b < H / width; ++b)
    for (int64_t k = 0; k < 4 * H; ++k)
      for (int64_t v = 0; v < width; ++v) *out++ = w[(b * width + v) * 4 * H + k];
}

// R rows of a group of N vectors of hidden units at step t: d_h from the step after it (the
// product, or d_h_last at the last step), then the gate gradients of step t, written to
// d_xp_t, and the cell gradient carried in place in d_c. With last_only, only the product is
// taken: it is d_h0, the gradient of the initial h.
template <int R, int N>
inline void backward_tile(int64_t H, int64_t r0, int64_t j0, const float* wp, const float* d_next,
                          const float* d_h_last, const float* d_hs_t, const float* c_t, const float* c_prev,
                          const float* acts_t, const float* d_c_last, float* d_c, float* d_xp_t, float* d_h0) {
  const int64_t G = 4 * H;
  vf acc[R][N];
  if (d_next != nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n) acc[r][n] = vf{};
    const float* ap = d_next + r0 * G;
    for (int64_t k = 0; k < G; ++k) {
      vf wv[N];
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n) wv[n] = load(wp + k * N * VW + n * VW);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        const vf a = splat(ap[r * G + k]);
#pragma GCC unroll 4
        for (int n = 0; n < N; ++n) acc[r][n] += a * wv[n];
      }
    }
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n) acc[r][n] = load(d_h_last + (r0 + r) * H + j0 + n * VW);
  }
  if (d_h0 != nullptr) {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r)
#pragma GCC unroll 4
      for (int n = 0; n < N; ++n) store(d_h0 + (r0 + r) * H + j0 + n * VW, acc[r][n]);
    return;
  }
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) {
#pragma GCC unroll 4
    for (int n = 0; n < N; ++n) {
      const int64_t row = r0 + r, j = j0 + n * VW;
      const float* act = acts_t + row * G + j;
      const vf i = load(act), f = load(act + H), g = load(act + 2 * H), o = load(act + 3 * H);
      const vf dh = acc[r][n] + load(d_hs_t + row * H + j);
      const vf tc = vtanh(load(c_t + row * H + j));
      const vf dc_in = load((d_c_last != nullptr ? d_c_last : d_c) + row * H + j);
      const vf dc = dc_in + dh * o * (1.0f - tc * tc);
      float* dx = d_xp_t + row * G + j;
      store(dx, dc * g * i * (1.0f - i));
      store(dx + H, dc * load(c_prev + row * H + j) * f * (1.0f - f));
      store(dx + 2 * H, dc * i * (1.0f - g * g));
      store(dx + 3 * H, dh * tc * o * (1.0f - o));
      store(d_c + row * H + j, dc * f);
    }
  }
}

template <int N>
struct BackwardTiles {
  template <int R>
  struct Tile {
    static void run(int64_t r0, int64_t H, int64_t j0, const float* wp, const float* d_next, const float* d_h_last,
                    const float* d_hs_t, const float* c_t, const float* c_prev, const float* acts_t,
                    const float* d_c_last, float* d_c, float* d_xp_t, float* d_h0) {
      backward_tile<R, N>(H, r0, j0, wp, d_next, d_h_last, d_hs_t, c_t, c_prev, acts_t, d_c_last, d_c, d_xp_t, d_h0);
    }
  };
};

template <int N>
void backward_scan(ffi::ThreadPool& pool, int64_t T, int64_t B, int64_t H, const float* w, const float* d_hs,
                   const float* cs, const float* acts, const float* c0, const float* d_c_last,
                   const float* d_h_last, float* d_xp, float* d_c0, float* d_h0) {
  const int64_t width = N * VW;
  std::vector<float> packed(static_cast<size_t>(H) * 4 * H);
  pack_backward(w, H, width, packed.data());
  const float* wp = packed.data();
  const int64_t BH = B * H, BG = B * 4 * H;
  // d_c lives in d_c0 while the scan runs: each group reads and writes only its own columns.
  float* d_c = d_c0;
  auto work = [&](int64_t stage, int64_t group) {
    const int64_t j0 = group * width;
    const float* gw = wp + group * 4 * H * width;
    if (stage == T) {  // d_h0 = d_xp[0] @ W^T; d_c0 already holds the carried cell gradient
      over_rows<BackwardTiles<N>::template Tile>(B, H, j0, gw, d_xp, nullptr, nullptr, nullptr, nullptr, nullptr,
                                                 nullptr, d_c, nullptr, d_h0);
      return;
    }
    const int64_t t = T - 1 - stage;
    over_rows<BackwardTiles<N>::template Tile>(
        B, H, j0, gw, stage == 0 ? nullptr : d_xp + (t + 1) * BG, d_h_last, d_hs + t * BH, cs + t * BH,
        t == 0 ? c0 : cs + (t - 1) * BH, acts + t * BG, stage == 0 ? d_c_last : nullptr, d_c, d_xp + t * BG,
        nullptr);
  };
  parallel_stages(pool, T + 1, H / width, work);
}

ffi::Error LstmBackward(ffi::ThreadPool pool, ffi::Buffer<ffi::F32> w, ffi::Buffer<ffi::F32> c0,
                        ffi::Buffer<ffi::F32> cs, ffi::Buffer<ffi::F32> acts,
                        ffi::Buffer<ffi::F32> d_hs, ffi::Buffer<ffi::F32> d_c_last, ffi::Buffer<ffi::F32> d_h_last,
                        ffi::ResultBuffer<ffi::F32> d_xp, ffi::ResultBuffer<ffi::F32> d_c0,
                        ffi::ResultBuffer<ffi::F32> d_h0) {
  const auto dims = acts.dimensions();
  if (dims.size() != 3 || dims[2] % (4 * VW) != 0)
    return ffi::Error::InvalidArgument("dann_lstm_backward: acts must be (T, B, 4H) with H a multiple of the vector width");
  const int64_t T = dims[0], B = dims[1], H = dims[2] / 4;
  if (B == 0) return ffi::Error::Success();
  if (T == 0) {
    std::copy(d_c_last.typed_data(), d_c_last.typed_data() + B * H, d_c0->typed_data());
    std::copy(d_h_last.typed_data(), d_h_last.typed_data() + B * H, d_h0->typed_data());
    return ffi::Error::Success();
  }
  // Two blocks of hidden units a chunk where they pair up, else one.
  const auto scan = (H / VW) % NV == 0 ? backward_scan<NV> : backward_scan<1>;
  scan(pool, T, B, H, w.typed_data(), d_hs.typed_data(), cs.typed_data(), acts.typed_data(), c0.typed_data(),
       d_c_last.typed_data(), d_h_last.typed_data(), d_xp->typed_data(), d_c0->typed_data(), d_h0->typed_data());
  return ffi::Error::Success();
}

}  // namespace

XLA_FFI_DEFINE_HANDLER_SYMBOL(DannLstmForward, LstmForward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xp
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h0
                                  .Ret<ffi::Buffer<ffi::F32>>()  // hs
                                  .Ret<ffi::Buffer<ffi::F32>>()  // cs
                                  .Ret<ffi::Buffer<ffi::F32>>());  // acts

XLA_FFI_DEFINE_HANDLER_SYMBOL(DannLstmCell, LstmCell,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // xp
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h
                                  .Ret<ffi::Buffer<ffi::F32>>()  // c_new
                                  .Ret<ffi::Buffer<ffi::F32>>());  // h_new

XLA_FFI_DEFINE_HANDLER_SYMBOL(DannLstmCellInput, LstmCellInput,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // x
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w_ih
                                  .Arg<ffi::Buffer<ffi::F32>>()  // b
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c
                                  .Arg<ffi::Buffer<ffi::F32>>()  // h
                                  .Ret<ffi::Buffer<ffi::F32>>()  // c_new
                                  .Ret<ffi::Buffer<ffi::F32>>());  // h_new

XLA_FFI_DEFINE_HANDLER_SYMBOL(DannLstmBackward, LstmBackward,
                              ffi::Ffi::Bind()
                                  .Ctx<ffi::ThreadPool>()
                                  .Arg<ffi::Buffer<ffi::F32>>()  // w
                                  .Arg<ffi::Buffer<ffi::F32>>()  // c0
                                  .Arg<ffi::Buffer<ffi::F32>>()  // cs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // acts
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_hs
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_c_last
                                  .Arg<ffi::Buffer<ffi::F32>>()  // d_h_last
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d_xp
                                  .Ret<ffi::Buffer<ffi::F32>>()  // d_c0
                                  .Ret<ffi::Buffer<ffi::F32>>());  // d_h0
