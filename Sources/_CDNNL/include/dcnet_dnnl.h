// _CDNNL: oneDNN's bf16 matmul, loaded at run time with dlopen (libdnnl.so.2, oneDNN 2.x).
//
// Why dlopen and not a system-library target: the fp32 trainer must build and run on machines
// without oneDNN (Debian's libdnnl-dev is optional; clusters often lack it). A link-time
// dependency would make every build need the package and every run need the library, and an
// optional SwiftPM module cannot be switched on and off per machine. So this shim declares the
// few oneDNN C API types and functions it calls (matmul with strided bf16 source and weights, f32
// destination), resolves them with dlsym when bf16 is first asked for, and reports what is
// missing when it cannot. When oneDNN's own header happens to be installed, shim.c checks the
// declarations against it at compile time; the build never needs it.
//
// Every function is for one thread at a time (each rank runs its GEMMs on one thread; oneDNN
// parallelises inside a call with its own OpenMP threads).
#ifndef DCNET_DNNL_H
#define DCNET_DNNL_H

#include <stddef.h>
#include <stdint.h>

/// Loads `library` (NULL: "libdnnl.so.2") and resolves the functions the matmul needs. Returns 0,
/// or -1 with a message in `error` (the dlopen/dlsym error, or a version other than 2.x). Loading
/// again after a success returns 0 and keeps the first library.
int dcnet_dnnl_load(const char *library, char *error, size_t capacity);
/// Whether `dcnet_dnnl_load` has succeeded.
int dcnet_dnnl_is_loaded(void);
/// The loaded library's version (0.0.0 before loading).
void dcnet_dnnl_version(int *major, int *minor, int *patch);
/// oneDNN's effective CPU ISA (dnnl_cpu_isa_t: 0xe7 avx512_core_bf16, 0x3e7 avx512_core_amx, ...);
/// 0 before loading.
unsigned dcnet_dnnl_effective_isa(void);
/// Sets the OpenMP thread count oneDNN uses (omp_set_num_threads of the runtime it loaded, when
/// there is one). Returns 0, or -1 when no OpenMP runtime was found.
int dcnet_dnnl_set_threads(int threads);

/// What the CPU itself offers, from cpuid (and the OS's saved AVX-512 state), without oneDNN.
/// Bit 0: AVX512-BF16 usable. Bit 1: AMX-BF16 present.
unsigned dcnet_cpu_bf16_features(void);

/// One matmul primitive of fixed shape: C[m×n] = alpha·op(A)[m×k]·op(B)[k×n] + beta·C, row-major,
/// A and B bf16 (uint16 words), C f32, with leading dimensions as in BLAS; with batch > 1, `batch`
/// such products at element strides stride_a, stride_b, stride_c apart (one call). Created once per
/// shape and reused (the caller caches them).
typedef struct dcnet_dnnl_matmul dcnet_dnnl_matmul;

/// Returns NULL on failure, with a message in `error`.
dcnet_dnnl_matmul *dcnet_dnnl_matmul_create(
    int transpose_a, int transpose_b, int64_t batch, int64_t m, int64_t n, int64_t k, float alpha,
    int64_t lda, int64_t stride_a, int64_t ldb, int64_t stride_b, float beta, int64_t ldc,
    int64_t stride_c, char *error, size_t capacity);
/// Runs the matmul on these buffers. Returns 0, or the dnnl_status_t of the call that failed.
int dcnet_dnnl_matmul_execute(dcnet_dnnl_matmul *matmul, const uint16_t *a, const uint16_t *b, float *c);
/// The implementation oneDNN chose (for example "brg:avx512_core_bf16").
const char *dcnet_dnnl_matmul_implementation(const dcnet_dnnl_matmul *matmul);
void dcnet_dnnl_matmul_destroy(dcnet_dnnl_matmul *matmul);

#endif
